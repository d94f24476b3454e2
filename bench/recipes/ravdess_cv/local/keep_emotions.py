"""Keep the rows of a manifest whose emotion is one of those named.

    python bench/recipes/ravdess_cv/local/keep_emotions.py IN.jsonl OUT.jsonl angry happy neutral sad
"""

from __future__ import annotations

import argparse
import sys

from ssl_ser.data.manifest import read_manifest, write_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("out")
    parser.add_argument("emotions", nargs="+")
    args = parser.parse_args(argv)
    rows = [r for r in read_manifest(args.manifest) if r.emotion in args.emotions]
    print(write_manifest(rows, args.out), "rows with emotion", ", ".join(args.emotions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
