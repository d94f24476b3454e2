"""ssl-ser train JOB.yaml [--set key=value ...] [--debug] [--resume] [--force]"""

from __future__ import annotations

import argparse

HELP = "train a model from a job config (Ray Train, or one process with --debug)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="job config (YAML), e.g. jobs/demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--debug", action="store_true",
                        help="one process, no cluster: small data caps, deterministic, progress bar")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run's latest checkpoint (fails if there is none); "
                             "rerunning an existing run resumes it anyway")
    parser.add_argument("--force", action="store_true",
                        help="resume even if the model or data config changed")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.job import run_dir
    from ssl_ser.job_loader import load_job
    from ssl_ser.train.runner import run_training

    job = load_job(args.job, args.overrides)
    metrics = run_training(job, debug=args.debug, resume=args.resume, force=args.force)
    where = run_dir(job) or f"{job.storage_path}/{job.name}"
    print(f"[ssl-ser] run finished: {where}")
    if metrics:
        shown = {k: v for k, v in metrics.items() if k.startswith("valid_") and isinstance(v, float)}
        if shown:
            print("[ssl-ser] final " + " ".join(f"{k}={v:.4f}" for k, v in sorted(shown.items())))
    return 0
