"""The out-of-domain unlabelled pool: URDU and FSDD with every label removed.

    python bench/recipes/ravdess_semi/local/ood.py manifests/urdu.jsonl manifests/fsdd.jsonl \
        --per-speaker 100 --out manifests/ood.jsonl

Every URDU utterance, and from FSDD ``--per-speaker`` utterances per speaker, picked by a
seeded hash of the key (FSDD's 3000 digits of ~0.4 s would otherwise outnumber RAVDESS's
unlabelled pool 4 to 1, and each costs a whole crop once batched with 4-s RAVDESS crops).
Rows become ``labelled: false`` with no emotion or attributes and no hidden emotion (URDU's
four classes are not RAVDESS's eight: the purity logs score RAVDESS's hidden rows only).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
from collections import defaultdict

from ssl_ser.data.manifest import read_manifest, write_manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("urdu")
    parser.add_argument("fsdd")
    parser.add_argument("--per-speaker", type=int, default=100, help="FSDD utterances kept per speaker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    by_speaker = defaultdict(list)
    for row in read_manifest(args.fsdd):
        by_speaker[row.speaker].append(row)
    fsdd = []
    for rows in by_speaker.values():
        rows.sort(key=lambda r: hashlib.sha256(f"{args.seed}/{r.key}".encode()).hexdigest())
        fsdd += rows[: args.per_speaker]
    urdu = read_manifest(args.urdu)
    out = [dataclasses.replace(r, labelled=False, emotion=None, arousal=None, valence=None, dominance=None,
                               extra={k: v for k, v in (r.extra or {}).items() if k != "hidden_emotion"})
           for r in [*urdu, *fsdd]]
    write_manifest(out, args.out)
    print(f"{args.out}: {len(urdu)} URDU + {len(fsdd)} FSDD utterances, unlabelled", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
