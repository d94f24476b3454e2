"""``ssl-ser cv JOB.yaml --folds speaker|session|K|FOLD_LIST [--parallel N] [--debug]``: cross-validation."""

from __future__ import annotations

import argparse

HELP = ("cross-validate a job: leave-one-speaker-out, leave-one-session-out, K speaker-grouped "
        "folds or a published fold list, each fold its own (resumable) training run; mean ± std "
        "and pooled UA/WA")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="job config (YAML); its data.train shard sets are split into folds")
    parser.add_argument("--folds", required=True, metavar="speaker|session|K|FOLD_LIST",
                        help="speaker: leave one speaker out; session: leave one session (the split "
                             "field, IEMOCAP) out; K: K folds grouped by speaker; FOLD_LIST: a YAML "
                             "file listing each fold's test speakers or utterance keys, or a shipped "
                             "one by name (ravdess_emobox: EmoBox's 6 RAVDESS folds)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a job field, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--debug", action="store_true",
                        help="run the folds one after another in this process (debug caps apply)")
    parser.add_argument("--parallel", type=int, default=1,
                        help="Ray: folds trained at the same time (default 1)")
    parser.add_argument("--cpus-per-fold", type=float, default=1.0, help="Ray: CPUs per fold (default 1)")
    parser.add_argument("--gpus-per-fold", type=float, default=None,
                        help="Ray: GPUs per fold, fractions allowed (default: 1 if scaling.use_gpu, else 0)")
    parser.add_argument("--valid-speakers", type=int, default=1,
                        help="training speakers held out per fold for validation / best checkpoint "
                             "(default 1; 0: test the final epoch)")
    parser.add_argument("--out", default=None,
                        help="cross-validation directory (default: STORAGE_PATH/NAME-cv-PROTOCOL)")
    parser.add_argument("--only", default=None, metavar="I,J,...",
                        help="run only these fold indices (the summary covers every finished fold)")
    parser.add_argument("--plan", action="store_true", help="show the folds and stop")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.cv import prepare, run_cv
    from ssl_ser.cv_report import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        format_cv,
        summarise,
    )

    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.folds import CvError, parse_protocol
    from ssl_ser.job_loader import load_job

    protocol = parse_protocol(args.folds)
    job = load_job(args.job, args.overrides)
    if args.plan:
        plan = prepare(job, protocol, cv_dir=args.out, valid_speakers=args.valid_speakers)
        for fold in plan.folds:
            print(f"{fold.name}: test {', '.join(fold.held_out)} ({len(fold.test)} group(s)); valid "
                  f"{', '.join(fold.valid_speakers) or '-'}; train {len(fold.train)} group(s)")
        print(format_cv(summarise(plan)))
        return 0
    try:
        only = None if args.only is None else [int(x) for x in args.only.split(",") if x.strip()]
    except ValueError:
        raise CvError(f"--only takes comma-separated fold indices, got {args.only!r}") from None
    gpus = args.gpus_per_fold if args.gpus_per_fold is not None else (1.0 if job.scaling.use_gpu else 0.0)
    run_cv(job, protocol, debug=args.debug, parallel=args.parallel, cpus_per_fold=args.cpus_per_fold,
           gpus_per_fold=gpus, valid_speakers=args.valid_speakers, cv_dir=args.out, only=only)
    return 0
