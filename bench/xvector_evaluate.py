"""Score a finished run's best checkpoint on its job's test sets (bench/results_xvector.md).

    python bench/xvector_evaluate.py RUN_DIR [--split test | --shards DIR ...] [--json OUT.json]

Rebuilds the run's model from RUN_DIR/config.yaml through the training loop itself
(:class:`ssl_ser.train.loop.Loop` in debug mode, no evaluation caps), loads the weights of
the run's best checkpoint (by its validation metric) and prints
:meth:`Loop.evaluate`'s metrics (UA, WA, macro and weighted F1) and the confusion matrix.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--shards", nargs="+", default=None,
                        help="score these shard sets instead (e.g. a noisy copy of the test set)")
    parser.add_argument("--json", default=None, help="also write the metrics and report here")
    args = parser.parse_args()

    from ssl_ser.config import load
    from ssl_ser.train import checkpoint as ckpt
    from ssl_ser.train.config import JobConfig
    from ssl_ser.train.loop import Loop
    from ssl_ser.train.session import LocalSession

    run = Path(args.run_dir)
    job = load(JobConfig, run / "config.yaml")
    job = dataclasses.replace(job, debug=dataclasses.replace(job.debug, max_eval_batches=None),
                              augment={})  # augmentation plays no part in scoring
    specs = args.shards or getattr(job.data, args.split)
    if not specs:
        print(f"{run}: the job has no data.{args.split}", file=sys.stderr)
        return 2
    best = ckpt.find_checkpoint(run, "best")
    loop = Loop(job, LocalSession(run, job.train.num_to_keep, "unused", "max"), debug=True,
                progress=False, force=True)
    loop.bare_model.load_state_dict(ckpt.load_state(best, map_location=loop.device)["model"])
    pred = loop.evaluate(specs)
    meta = ckpt.load_meta(best)
    split = "shards " + " ".join(args.shards) if args.shards else args.split
    out = {"run": str(run), "checkpoint": str(best), "epoch": meta.get("epoch"), "split": split,
           "metrics": pred.metrics, "report": pred.report}
    m = pred.metrics
    print(f"{run.name}: best epoch {meta.get('epoch')} ({meta.get('score_attribute')} "
          f"{meta.get('score'):.4f}); {split} n={int(m['n'])} UA {m['ua']:.4f} WA {m['wa']:.4f} "
          f"macro-F1 {m['macro_f1']:.4f} weighted-F1 {m['weighted_f1']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
