"""Write one cv fold's training job with its validation speakers and without its test speakers,
for choosing settings on validation speakers only (the ablation).

    python fold_job.py JOB.yaml PROTOCOL FOLD VALID_SPEAKERS OUT.yaml [--cv-dir DIR]

The fold, its per-speaker shard sets and its validation speakers are exactly those of
``ssl-ser cv JOB.yaml --folds PROTOCOL --valid-speakers VALID_SPEAKERS`` (same seeded draw), so
a lever chosen here is then tested by that command on the same split.
"""

from __future__ import annotations

import argparse

from ssl_ser.config import dump_yaml, to_dict
from ssl_ser.cv import fold_job, prepare
from ssl_ser.folds import parse_protocol
from ssl_ser.job_loader import job_from_dict, load_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job")
    parser.add_argument("protocol")
    parser.add_argument("fold", type=int, help="0-based fold index (EmoBox fold 1 is 0)")
    parser.add_argument("valid_speakers", type=int)
    parser.add_argument("out")
    parser.add_argument("--cv-dir", default=None, help="where the per-speaker shard sets go (default: cv's)")
    args = parser.parse_args()
    job = load_job(args.job)
    plan = prepare(job, parse_protocol(args.protocol), cv_dir=args.cv_dir, valid_speakers=args.valid_speakers)
    fold = plan.folds[args.fold]
    data = to_dict(fold_job(job, plan, fold))
    data["name"] = f"{job.name}-fold{args.fold}-valid"
    data["storage_path"] = job.storage_path
    data["data"]["test"] = []  # the test speakers stay unseen while settings are chosen
    dump_yaml(job_from_dict(data), args.out)
    print(f"{args.out}: train {len(fold.train)} speakers, valid {', '.join(fold.valid_speakers)}, "
          f"test (left out) {', '.join(fold.held_out)}")


if __name__ == "__main__":
    main()
