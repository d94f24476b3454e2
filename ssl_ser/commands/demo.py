"""``ssl-ser demo``: generate a synthetic corpus and run the pipeline on it."""

from __future__ import annotations

import argparse

HELP = ("the main job on a generated corpus (no download): DeepEmoCluster on labelled + unlabelled "
        "shards with 2 Ray Train workers vs supervised on the labelled part, scored on held-out speakers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="output directory (default ./demo_out)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="corpus setting, e.g. --set seed=3 --set speakers=10 (see "
                             "ssl_ser.data.synthetic.SyntheticConfig)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes for generation and sharding (default: every CPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--job-set", dest="job_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a field of the demo job, e.g. "
                        "--job-set train.epochs=3 (repeatable)")
    parser.add_argument("--no-train", action="store_true", help="stop after building the shards")
    parser.add_argument("--debug", action="store_true",
                        help="train in one process instead of on local Ray Train with 2 workers")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import os

    from ssl_ser.config import load
    from ssl_ser.data.shard_index import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        format_index,
        read_index,
    )

    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.data.synthetic import SyntheticConfig
    from ssl_ser.demo import run_demo

    cfg = load(SyntheticConfig, overrides=args.overrides)
    workers = args.workers or os.cpu_count() or 1
    paths = run_demo(args.out, cfg, workers=workers, progress=not args.quiet,
                     train_model=not args.no_train, job_overrides=args.job_overrides, ray=not args.debug)
    if args.no_train:
        for part, shard_dir in paths.shards.items():
            print(f"\n== {part} ==")
            print(format_index(read_index(shard_dir)), end="")
    return 0
