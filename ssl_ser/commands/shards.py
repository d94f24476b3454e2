"""``ssl-ser shards build|info|noisy ...``: build, inspect and make noisy copies of shard sets.

Each subcommand is one ``@subcommand(name, help)`` function taking the parsed arguments, with
an ``arguments(parser)`` function beside it; adding one is adding that pair.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass

from ssl_ser.augment import noisy_copy

HELP = "build WebDataset shard sets from a manifest and inspect them"


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]
               ) -> Callable[[Callable[[argparse.Namespace], int | None]],
                             Callable[[argparse.Namespace], int | None]]:
    def register(run: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], int | None]:
        SUBCOMMANDS[name] = Subcommand(help, arguments, run)
        return run

    return register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="shards_command", metavar="SUBCOMMAND", required=True)
    for name, spec in SUBCOMMANDS.items():
        cmd = sub.add_parser(name, help=spec.help, description=spec.help)
        spec.add_arguments(cmd)
        cmd.set_defaults(_shards_run=spec.run)


def run(args: argparse.Namespace) -> int | None:
    return args._shards_run(args)


def parse_size(text: str) -> int:
    """Bytes from ``500M``, ``1G``, ``1.5GB``, ``65536``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 1G, 65536)")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[match[2].lower()]
    return int(float(match[1]) * scale)


# --- build --------------------------------------------------------------------------------

# the defaults of ssl_ser.data.shards, repeated so that `--help` does not import torch
MAX_COUNT, MAX_SIZE, MIN_SECONDS = 5000, "512M", 0.1


def _build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="manifest (.jsonl) written by `ssl-ser prepare`")
    parser.add_argument("out_dir", help="directory for shard-NNNNNN.tar, index.json, rejects.jsonl")
    parser.add_argument("--max-count", type=int, default=MAX_COUNT,
                        help=f"samples per shard at most (default {MAX_COUNT})")
    parser.add_argument("--max-size", type=parse_size, default=MAX_SIZE,
                        help=f"bytes per shard at most, e.g. 512M, 1G (default {MAX_SIZE})")
    parser.add_argument("--workers", type=int, default=None,
                        help="encoding processes (default: every CPU)")
    parser.add_argument("--min-seconds", type=float, default=MIN_SECONDS,
                        help=f"reject shorter utterances (default {MIN_SECONDS})")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first bad row instead of recording it in rejects.jsonl")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a complete shard set already in OUT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


@subcommand("build", "decode, check and resample a manifest's audio into WebDataset shards",
            _build_arguments)
def _build(args: argparse.Namespace) -> int:
    from ssl_ser.data.shard_index import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        format_index,
        read_index,
    )

    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.data.shards import build_shards

    report = build_shards(args.manifest, args.out_dir, max_count=args.max_count,
                          max_size=args.max_size, workers=args.workers,
                          min_seconds=args.min_seconds, strict=args.strict,
                          overwrite=args.overwrite, progress=not args.quiet)
    print(report.summary())
    if report.rejected:
        print(f"rejected rows are listed in {report.out_dir / 'rejects.jsonl'}")
    print()
    print(format_index(read_index(report.out_dir)), end="")
    return 0


# --- info ---------------------------------------------------------------------------------

def _info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shard_dir", help="shard set directory (or its index.json)")
    parser.add_argument("--verify", action="store_true",
                        help="also check every shard's size and sha256 against the index")
    parser.add_argument("--json", action="store_true", help="print index.json as it is")


@subcommand("info", "summarise a shard set from its index.json", _info_arguments)
def _info(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import json

    from ssl_ser.data.shard_index import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        format_index,
        read_index,
        verify_shards,
    )

    index = read_index(args.shard_dir)
    print(json.dumps(index.raw, indent=2) if args.json else format_index(index), end="\n" if args.json else "")
    if args.verify:
        problems = verify_shards(args.shard_dir)
        for problem in problems:
            print(f"verify: {problem}")
        print(f"verify: {len(index.raw['shards']) - len(problems)} of {len(index.raw['shards'])} "
              f"shard(s) intact")
        return 1 if problems else 0
    return 0


# --- noisy: defined beside its library function (light to import: torch loads in `run`) ---

subcommand("noisy", noisy_copy.HELP, noisy_copy.add_arguments)(noisy_copy.run)
