"""``ssl-ser predict RUN_OR_CKPT AUDIO_OR_DIR... [--out preds.jsonl] [--embeddings]``: a thin layer
over :class:`ssl_ser.recognizer.Recognizer`."""

from __future__ import annotations

import argparse

HELP = ("score audio files (any rate and channel count) with a trained model: per-file class "
        "probabilities as JSON lines; exit status 1 if some file could not be scored")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run directory (its best checkpoint) or a checkpoint directory")
    parser.add_argument("inputs", nargs="+", metavar="AUDIO_OR_DIR",
                        help="audio files, or directories searched recursively for audio files")
    parser.add_argument("--out", "-o", help="JSON-lines file to write (default: standard output)")
    parser.add_argument("--embeddings", action="store_true", help="add each file's embedding")
    parser.add_argument("--window", type=float, default=None,
                        help="score files longer than this many seconds in windows (default: the "
                             "job's data.eval_max_seconds; 0: always the whole file at once)")
    parser.add_argument("--hop", type=float, default=None, help="seconds between windows (default: --window)")
    parser.add_argument("--per-window", action="store_true", help="add each window's scores")
    parser.add_argument("--which", choices=("best", "latest"), default="best")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows scored at once (default 8)")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import json
    import sys

    from ssl_ser.files import writable_file
    from ssl_ser.predict import find_audio
    from ssl_ser.recognizer import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        Recognizer,
        Refusal,
    )

    if args.out:
        writable_file(args.out)  # before loading the model and scoring, not after
    window = "job" if args.window is None else (args.window or None)
    recognizer = Recognizer.from_run(args.run, which=args.which, device=args.device, window=window, hop=args.hop)
    paths = find_audio(args.inputs)
    if not paths:
        print("ssl-ser predict: no audio files found in " + ", ".join(args.inputs), file=sys.stderr)
        return 1
    out = open(args.out, "w") if args.out else sys.stdout
    scored = failed = 0
    try:
        for result in recognizer.predict_files(paths, per_window=args.per_window, embedding=args.embeddings,
                                               batch_size=args.batch_size):
            out.write(json.dumps(result.to_dict()) + "\n")
            out.flush()
            if isinstance(result, Refusal):
                failed += 1
                print(f"ssl-ser predict: {result.path}: {result.reason}: {result.detail}", file=sys.stderr)
            else:
                scored += 1
    finally:
        if out is not sys.stdout:
            out.close()
    where = f" to {args.out}" if args.out else ""
    print(f"ssl-ser predict: scored {scored} file(s){where}"
          + (f"; {failed} could not be scored (rows with an 'error' field)" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
