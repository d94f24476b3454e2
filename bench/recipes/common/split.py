"""Split a manifest by speaker (the recipes' speaker-independent splits).

    python bench/recipes/common/split.py IN.jsonl OUT_PREFIX --part train=01-16 --part valid=17-20 ...

Each ``--part NAME=SPEAKERS`` writes ``OUT_PREFIX.NAME.jsonl`` with the rows whose speaker is
in SPEAKERS: a comma list, with ``A-B`` ranges of zero-padded numbers (RAVDESS actors);
``lastN``, the last N speakers in string order; or ``rest``, every speaker not named by
another part. ``--holdout NAME=FRACTION`` moves that
share of each speaker's rows of part NAME (every n-th row, by key, deterministic) into
``OUT_PREFIX.NAME_heldout.jsonl``: utterances of *seen* speakers for speaker accuracy.
"""

from __future__ import annotations

import argparse
import sys

from ssl_ser.data.manifest import read_manifest, write_manifest


def speakers_of(spec: str, speakers: list[str]) -> set[str] | None:
    """The speakers a part names; None for ``rest``. ``speakers``: every speaker, sorted."""
    if spec == "rest":
        return None
    if spec.startswith("last") and spec[4:].isdigit():
        return set(speakers[-int(spec[4:]):])
    out: set[str] = set()
    for item in spec.split(","):
        if "-" in item and all(p.isdigit() for p in item.split("-")):
            lo, hi = item.split("-")
            out.update(str(n).zfill(len(lo)) for n in range(int(lo), int(hi) + 1))
        elif item:
            out.add(item)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("prefix")
    parser.add_argument("--part", action="append", default=[], metavar="NAME=SPEAKERS")
    parser.add_argument("--holdout", action="append", default=[], metavar="NAME=FRACTION")
    args = parser.parse_args()
    rows = read_manifest(args.manifest)
    all_speakers = sorted({str(r.speaker) for r in rows})
    parts = {name: speakers_of(spec, all_speakers) for name, spec in (p.split("=", 1) for p in args.part)}
    named = set().union(*(s for s in parts.values() if s is not None))
    out: dict[str, list] = {name: [] for name in parts}
    for row in rows:
        for name, speakers in parts.items():
            if (speakers is None and row.speaker not in named) or (speakers and row.speaker in speakers):
                out[name].append(row)
    for item in args.holdout:
        name, fraction = item.split("=", 1)
        every = max(2, round(1 / float(fraction)))
        kept, held = [], []
        by_speaker: dict[str, list] = {}
        for row in sorted(out[name], key=lambda r: r.key):
            by_speaker.setdefault(str(row.speaker), []).append(row)
        for speaker_rows in by_speaker.values():
            for i, row in enumerate(speaker_rows):
                (held if i % every == every - 1 else kept).append(row)
        out[name], out[f"{name}_heldout"] = kept, held
    for name, part in out.items():
        path = f"{args.prefix}.{name}.jsonl"
        write_manifest(part, path)
        print(f"{path}: {len(part)} rows, {len({r.speaker for r in part})} speakers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
