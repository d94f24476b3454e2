"""Summarise the test scores of bench/xvector_runs.sh (the table of bench/results_xvector.md).

    python bench/xvector_table.py RUNS_DIR

Reads ``RUNS_DIR/<condition>_s<seed>/test.json`` (written by bench/xvector_evaluate.py) and
prints, per condition, the mean and standard deviation over seeds of UA, WA and weighted F1,
each seed's UA, and the UA on the noisy test copy (``test_noisy5.json``) where it was scored,
as a Markdown table.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

CONDITIONS = [
    ("scratch", "random init", "none"),
    ("scratch_nsecp", "random init", "N+SE-CP"),
    ("transfer", "x-vector transfer", "none"),
    ("transfer_ncp", "x-vector transfer", "N-CP"),
    ("transfer_secp", "x-vector transfer", "SE-CP"),
    ("transfer_nsecp", "x-vector transfer", "N+SE-CP"),
]


def main() -> int:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    found: dict[str, list[dict]] = {}
    for path in sorted(runs.glob("*_s*/test.json")):
        match = re.fullmatch(r"(.+)_s(\d+)", path.parent.name)
        if match:
            found.setdefault(match[1], []).append(json.loads(path.read_text()) | {"seed": int(match[2])})
    print("| init | CopyPaste | seeds | UA | WA | weighted F1 | UA per seed | UA, 5 dB noise |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, init, cp in CONDITIONS:
        results = sorted(found.get(name, []), key=lambda r: r["seed"])
        if not results:
            continue
        cells = []
        for metric in ("ua", "wa", "weighted_f1"):
            values = np.array([r["metrics"][metric] for r in results]) * 100
            cells.append(f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0:.1f}")
        per_seed = ", ".join(f"{r['metrics']['ua'] * 100:.1f}" for r in results)
        noisy = [json.loads(p.read_text())["metrics"]["ua"] * 100
                 for r in results if (p := runs / f"{name}_s{r['seed']}" / "test_noisy5.json").is_file()]
        noisy_cell = (f"{np.mean(noisy):.1f} ± {np.std(noisy, ddof=1) if len(noisy) > 1 else 0:.1f}"
                      if noisy else "-")
        print(f"| {init} | {cp} | {len(results)} | " + " | ".join(cells) + f" | {per_seed} | {noisy_cell} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
