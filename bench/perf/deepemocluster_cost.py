"""What re-clustering costs per epoch, next to the epoch of training it precedes.

Runs a DeepEmoCluster job in debug mode (one process) and splits every epoch's wall time into
the embedding pass over the training sets, k-means, the training pass and validation (the
first two are what the method adds to each epoch). Default: the demo job on the demo shards
(``ssl-ser demo --no-train`` writes them)::

    python bench/perf/deepemocluster_cost.py                              # jobs/deepemocluster_demo.yaml
    python bench/perf/deepemocluster_cost.py --job my_job.yaml --set train.epochs=2
    python bench/perf/deepemocluster_cost.py --set method.embeddings=bank   # the embedding bank

With ``method.embeddings: bank`` the first column is the bank's merge (after its warm-up
epochs, which embed everything); recording into the bank happens inside the training pass and
is counted there.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", default="jobs/deepemocluster_demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)

    from ssl_ser.job_loader import load_job
    from ssl_ser.train.loop import Loop
    from ssl_ser.train.runner import run_local

    storage = Path(tempfile.mkdtemp(prefix="dec-cost-"))
    job = load_job(args.job, [*args.overrides, f"train.epochs={args.epochs}", f"storage_path={storage}",
                              "name=cost"])
    phases: dict[str, list[float]] = {"train": [], "validate": []}
    train_epoch, run = Loop.train_epoch, Loop.run

    def timed_train(self: Loop, epoch: int) -> dict[str, float]:
        start = time.perf_counter()
        out = train_epoch(self, epoch)
        phases["train"].append(time.perf_counter() - start)
        return out

    def timed_run(self: Loop) -> dict:
        validate = self.method.validate

        def timed_validate(epoch: int) -> dict[str, float]:
            start = time.perf_counter()
            out = validate(epoch)
            phases["validate"].append(time.perf_counter() - start)
            return out

        self.method.validate = timed_validate  # type: ignore[method-assign]
        return run(self)

    Loop.train_epoch, Loop.run = timed_train, timed_run  # type: ignore[method-assign]
    try:
        run_local(job, progress=False)
    finally:
        Loop.train_epoch, Loop.run = train_epoch, run  # type: ignore[method-assign]
    import json

    history = [json.loads(x) for x in (storage / "cost" / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(storage, ignore_errors=True)
    print(f"\n{'epoch':>5} {'embed|bank s':>8} {'k-means s':>9} {'train s':>8} {'valid s':>8} {'points':>7} "
          f"{'batches':>7} {'(embed+k-means)/train':>22}")
    ratios = []
    for i, h in enumerate(history):
        embed = h.get("pre_embed_time_s", h.get("pre_bank_time_s", 0.0))
        kmeans, train = h.get("pre_kmeans_time_s", 0.0), phases["train"][i]
        ratios.append((embed + kmeans) / train)
        print(f"{h['epoch']:>5} {embed:>8.2f} {kmeans:>9.3f} {train:>8.2f} {phases['validate'][i]:>8.2f} "
              f"{h.get('pre_kmeans_points', 0):>7.0f} {h['train_batches']:>7.0f} {ratios[-1]:>22.2f}")
    print(f"median (embedding + k-means) / training pass: {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
