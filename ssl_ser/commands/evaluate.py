"""``ssl-ser evaluate RUN_OR_CKPT SHARDS... [--out DIR]``: score a trained model on shard sets."""

from __future__ import annotations

import argparse

HELP = "evaluate a run or checkpoint on shard sets: UA, WA, F1, per-class recall, confusion, CCC"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run directory (its best checkpoint) or a checkpoint directory")
    parser.add_argument("shards", nargs="+", help="shard sets to evaluate (directories, globs, URLs)")
    parser.add_argument("--out", help="write metrics.json, predictions.jsonl and confusion.png here")
    parser.add_argument("--which", choices=("best", "latest"), default="best",
                        help="which checkpoint of a run directory (default: best)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the job's data.batch_size")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes (default 0)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="score what can be read when shards are missing or broken, and record "
                             "the shortfall in metrics.json (default: that is an error)")
    parser.add_argument("--embeddings", action="store_true", help="add embeddings to predictions.jsonl")
    parser.add_argument("--no-fit-speakers", action="store_true",
                        help="speaker normalisation: use the pooled training statistics for speakers "
                             "the checkpoint has none for, instead of fitting theirs on this audio")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import torch

    from ssl_ser.evaluate import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        evaluate,
        report_text,
        write_results,
    )

    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.files import writable_dir

    if args.out:  # before the work: a bad --out must not cost a whole evaluation
        writable_dir(args.out, "--out")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    result = evaluate(args.run, args.shards, which=args.which, device=device, batch_size=args.batch_size,
                      num_workers=args.workers, embeddings=args.embeddings,
                      fit_new_speakers=not args.no_fit_speakers, allow_missing=args.allow_missing)
    print(report_text(result))
    if args.out:
        paths = write_results(result, args.out)
        print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0
