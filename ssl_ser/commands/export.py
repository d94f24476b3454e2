"""``ssl-ser export RUN_OR_CKPT --format torchscript|onnx --out FILE``"""

from __future__ import annotations

import argparse

HELP = ("export a trained model (front-end included: waveform in, scores out) as TorchScript or "
        "ONNX, checked against PyTorch on random audio")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run directory (its best checkpoint) or a checkpoint directory")
    parser.add_argument("--format", required=True, choices=("torchscript", "onnx"))
    parser.add_argument("--out", "-o", required=True, help="file to write (a FILE.json describing it is added)")
    parser.add_argument("--which", choices=("best", "latest"), default="best")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of the random example audio (default 3 s, or 1.5 segments)")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.export import export_predictor
    from ssl_ser.files import writable_file
    from ssl_ser.inference import Predictor

    writable_file(args.out)  # before the export's work, not after it
    predictor, meta = Predictor.from_checkpoint(args.run, device="cpu", which=args.which)
    report = export_predictor(predictor, args.out, args.format, example_seconds=args.seconds,
                              check=not args.no_check, meta=meta)
    print(report.summary())
    return 0
