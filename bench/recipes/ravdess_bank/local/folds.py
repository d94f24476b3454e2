"""Per-fold manifests of the EmoBox RAVDESS folds with most training labels hidden.

    python bench/recipes/ravdess_bank/local/folds.py manifests/ravdess.jsonl manifests/fold --keep 0.2

For fold i (1-6, ``ssl_ser/resources/folds/ravdess_emobox.yaml``): its 4 test actors
(``PREFIX<i>.test.jsonl``), ``--valid-speakers`` actors drawn (seeded) from the other 20 for
validation (``.valid.jsonl``), and the remaining training actors split by
:func:`ssl_ser.data.hide_labels.hide_labels` into ``.labelled.jsonl`` (a stratified ``--keep``
share) and ``.unlabelled.jsonl`` (the rest, each hidden emotion kept in ``extra.hidden_emotion``).
"""

from __future__ import annotations

import argparse
import random
import sys

from ssl_ser.data.hide_labels import hide_labels
from ssl_ser.data.manifest import read_manifest, write_manifest
from ssl_ser.folds import load_fold_list


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("prefix")
    parser.add_argument("--folds", default="ravdess_emobox")
    parser.add_argument("--keep", type=float, default=0.2, help="labelled share of each fold's training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--valid-speakers", type=int, default=2)
    args = parser.parse_args()
    rows = read_manifest(args.manifest)
    folds = load_fold_list(args.folds).folds
    speakers = sorted({str(r.speaker) for r in rows})
    for i, test in enumerate(folds, start=1):
        rest = [s for s in speakers if s not in test]
        valid = sorted(random.Random(f"{args.seed}/{i}").sample(rest, args.valid_speakers))
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
