"""``ssl-ser submit JOB.yaml --address http://HEAD:8265 [--set k=v ...]``: run a job on a Ray cluster."""

from __future__ import annotations

import argparse

HELP = "submit a training job to a Ray cluster (Ray Jobs API); prints the job id"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="job config (YAML) inside the working directory, e.g. jobs/demo.yaml")
    parser.add_argument("--address", help="the head node's dashboard, e.g. http://HEAD:8265 "
                                           "(default: $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run's latest checkpoint (fails if there is none)")
    parser.add_argument("--force", action="store_true",
                        help="resume even if the model or data config changed")
    parser.add_argument("--no-check-data", dest="check_data", action="store_false",
                        help="do not check here that the shard sets exist (they may live only "
                             "on the cluster)")
    parser.add_argument("--working-dir", help="directory uploaded as the job's working directory "
                                              "(default: this ssl-ser checkout)")
    parser.add_argument("--exclude", dest="excludes", action="append", default=[], metavar="PATTERN",
                        help="also leave these files out of the upload (gitignore syntax; repeatable)")
    parser.add_argument("--env", dest="env_vars", action="append", default=[], metavar="KEY=VALUE",
                        help="environment variable for the job (repeatable)")
    parser.add_argument("--pip", action="append", default=[], metavar="REQUIREMENT",
                        help="extra pip requirement installed for this job (repeatable; slow, the "
                             "cluster image should hold the dependencies)")
    parser.add_argument("--submission-id", help="job id to use instead of a generated one")
    parser.add_argument("--follow", action="store_true",
                        help="stream the job's logs until it ends; exit 1 unless it succeeded")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import logging

    from ssl_ser.train.submit import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        SubmitError,
        connect,
        follow_logs,
        submit,
    )

    if not logging.getLogger().handlers:  # warnings about paths the cluster cannot see
        logging.basicConfig(level=logging.INFO, format="ssl-ser submit: %(message)s")
    env_vars = {}
    for item in args.env_vars:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SubmitError(f"--env {item!r} is not of the form KEY=VALUE")
        env_vars[key.strip()] = value
    job_id = submit(args.job, args.address, args.overrides, working_dir=args.working_dir,
                    resume=args.resume, force=args.force, check_data=args.check_data,
                    submission_id=args.submission_id, excludes=args.excludes,
                    env_vars=env_vars, pip=args.pip)
    if not args.follow:
        return 0
    status = follow_logs(connect(args.address), job_id, lambda chunk: print(chunk, end="", flush=True))
    print(f"[ssl-ser] job {job_id} {status}")
    return 0 if status == "SUCCEEDED" else 1
