"""Per-fold manifests of the EmoBox RAVDESS folds with most training labels hidden.

    python bench/recipes/common/hidden_folds.py manifests/ravdess.jsonl manifests/fold --keep 0.2 \
        [--valid-from runs/JOB-cv-ravdess_emobox/folds.json]

For fold i (1-6, ``ssl_ser/resources/folds/ravdess_emobox.yaml``): its 4 test actors
(``PREFIX<i>.test.jsonl``), validation actors (``.valid.jsonl``) and the remaining training
actors split by :func:`ssl_ser.data.hide_labels.hide_labels` into ``.labelled.jsonl`` (a
stratified ``--keep`` share) and ``.unlabelled.jsonl`` (the rest, each hidden emotion kept in
``extra.hidden_emotion``). The validation actors are ``--valid-speakers`` drawn (seeded) from
the other 20, or, with ``--valid-from``, those an ``ssl-ser cv`` plan used for the same fold,
so that runs on the hidden-label folds compare with that cv run fold by fold.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from ssl_ser.data.hide_labels import hide_labels
from ssl_ser.data.manifest import read_manifest, write_manifest
from ssl_ser.folds import load_fold_list


def cv_validation(path: str, count: int) -> list[set[str]]:
    """Per fold, the validation groups (``corpus-speaker``) of an ``ssl-ser cv`` plan."""
    try:
        with open(path, encoding="utf-8") as f:
            folds = json.load(f)["folds"]
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"{path}: not an `ssl-ser cv` folds.json ({type(err).__name__}: {err})") from None
    if len(folds) != count:
        raise SystemExit(f"{path}: {len(folds)} folds, the fold list has {count}")
    return [set(fold["valid"]) for fold in folds]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("prefix")
    parser.add_argument("--folds", default="ravdess_emobox")
    parser.add_argument("--keep", type=float, default=0.2, help="labelled share of each fold's training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--valid-speakers", type=int, default=2)
    parser.add_argument("--valid-from", help="an `ssl-ser cv` plan's folds.json: take its validation actors")
    args = parser.parse_args()
    rows = read_manifest(args.manifest)
    folds = load_fold_list(args.folds).folds
    planned = cv_validation(args.valid_from, len(folds)) if args.valid_from else None
    speakers = sorted({str(r.speaker) for r in rows})
    corpus = rows[0].corpus  # one corpus: cv names its groups corpus-speaker
    splits = []  # every fold checked before any manifest is written
    for i, test in enumerate(folds, start=1):
        rest = [s for s in speakers if s not in test]
        if planned is not None:
            valid = sorted(s for s in rest if f"{corpus}-{s}" in planned[i - 1])
            if len(valid) != len(planned[i - 1]):
                raise SystemExit(f"{args.valid_from}: fold {i}'s validation groups {sorted(planned[i - 1])} "
                                 f"are not all training actors of {args.manifest}")
        else:
            valid = sorted(random.Random(f"{args.seed}/{i}").sample(rest, args.valid_speakers))
        splits.append((test, valid))
    for i, (test, valid) in enumerate(splits, start=1):
        train = [r for r in rows if r.speaker not in test and r.speaker not in valid]
        labelled, unlabelled = hide_labels(train, args.keep, seed=args.seed)
        parts = {"labelled": labelled, "unlabelled": unlabelled,
                 "valid": [r for r in rows if r.speaker in valid], "test": [r for r in rows if r.speaker in test]}
        for name, part in parts.items():
            write_manifest(part, f"{args.prefix}{i}.{name}.jsonl")
        print(f"fold {i}: test {','.join(test)}, valid {','.join(valid)}: "
              + ", ".join(f"{name} {len(part)}" for name, part in parts.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
