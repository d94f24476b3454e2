"""The table of bench/results_deepemocluster.md from the runs of bench/deepemocluster_runs.sh.

    python bench/deepemocluster_table.py /work/dec_bench/runs

For each run ``<config>_s<seed>``: the best epoch (by valid UA), valid UA there, and test UA/WA/macro F1
(``ssl-ser evaluate`` of that checkpoint, ``runs/<run>/test/metrics.json``); then the mean and
standard deviation over the seeds of each configuration.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    per_config: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    print(f"{'run':<20} {'best epoch':>10} {'valid UA':>9} {'test UA':>8} {'test WA':>8} {'macro F1':>8}")
    for test in sorted(root.glob("*/test/metrics.json")):
        run = test.parent.parent
        config, _, seed = run.name.rpartition("_s")
        report = json.loads(test.read_text())
        history = {h["epoch"]: h for h in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
        valid = history[report["epoch"]]["valid_ua"]
        ua, wa, f1 = (report["metrics"][k] for k in ("ua", "wa", "macro_f1"))
        per_config[config].append((valid, ua, wa, f1))
        print(f"{run.name:<20} {report['epoch']:>10} {valid:>9.3f} {ua:>8.3f} {wa:>8.3f} {f1:>8.3f}")
    print(f"\n{'config':<14} {'seeds':>5} {'valid UA':>14} {'test UA':>14} {'test WA':>14} {'macro F1':>14}")
    for config, rows in per_config.items():
        cols = list(zip(*rows))

        def fmt(values: tuple[float, ...]) -> str:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.3f} ± {sd:.3f}"

        print(f"{config:<14} {len(rows):>5} {fmt(cols[0]):>14} {fmt(cols[1]):>14} {fmt(cols[2]):>14} {fmt(cols[3]):>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
