"""Hide most labels of a manifest: the labelled/unlabelled split of this recipe (README.md).

    python bench/recipes/ravdess_deepemocluster/local/hide_labels.py IN.jsonl OUT_PREFIX --keep 0.25

Writes ``OUT_PREFIX.labelled.jsonl`` (the rows that keep their labels) and
``OUT_PREFIX.unlabelled.jsonl`` (every other row with ``labelled=false`` and its emotion and
arousal/valence/dominance set to null: the audio stays, the labels are gone). Within each
(speaker, emotion) group, ``ceil(keep x size)`` rows keep their labels, picked by a hash of
the key: deterministic, stratified, and independent of the manifest's order.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
from collections import defaultdict

from ssl_ser.data.manifest import Utterance, read_manifest, write_manifest


def split(rows: list[Utterance], keep: float) -> tuple[list[Utterance], list[Utterance]]:
    groups: dict[tuple[str | None, str | None], list[Utterance]] = defaultdict(list)
    for row in rows:
        if row.labelled:
            groups[(row.speaker, row.emotion)].append(row)
    kept: set[str] = set()
    for members in groups.values():
        members.sort(key=lambda r: hashlib.sha1(r.key.encode()).hexdigest())
        kept.update(r.key for r in members[:math.ceil(keep * len(members))])
    labelled = [r for r in rows if r.key in kept]
    hidden = [dataclasses.replace(r, labelled=False, emotion=None, arousal=None, valence=None, dominance=None)
              for r in rows if r.key not in kept]
    return labelled, hidden


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("prefix")
    parser.add_argument("--keep", type=float, default=0.25, help="labelled fraction per (speaker, emotion)")
    args = parser.parse_args()
    if not 0 < args.keep <= 1:
        parser.error("--keep must lie in (0, 1]")
    labelled, hidden = split(read_manifest(args.manifest), args.keep)
    write_manifest(labelled, f"{args.prefix}.labelled.jsonl")
    write_manifest(hidden, f"{args.prefix}.unlabelled.jsonl")
    print(f"{len(labelled)} rows keep their labels, {len(hidden)} are unlabelled")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
