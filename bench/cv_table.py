"""Markdown rows of bench/results_table.md from `ssl-ser cv` results (cv_results.json).

    python bench/cv_table.py RECIPE CORPUS CV_DIR COMMAND [RECIPE CORPUS CV_DIR COMMAND ...]

Each row: the numbers pooled over every test utterance of every fold (the headline), then
the mean ± sample standard deviation of the per-fold numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(recipe: str, corpus: str, cv_dir: str, command: str) -> str:
    results = json.loads((Path(cv_dir) / "cv_results.json").read_text())
    if results["folds_done"] != results["folds_total"]:
        raise SystemExit(f"{cv_dir}: only {results['folds_done']}/{results['folds_total']} folds done")
    pooled, stats = results["pooled"], results["mean_std"]
    protocol = results["protocol"]
    protocol = f"{protocol[1:]} folds by speaker" if protocol.startswith("k") else f"leave one {protocol} out"
    cells = [f"{pooled[k]:.3f} ({stats[k]['mean']:.3f} ± {stats[k]['std']:.3f})" for k in ("ua", "wa", "macro_f1")]
    return f"| {recipe} | {corpus} | {protocol}, n = {pooled['n']} | " + " | ".join(cells) + f" | `{command}` |"


def main(argv: list[str]) -> None:
    if not argv or len(argv) % 4:
        raise SystemExit(__doc__)
    print("| recipe | corpus | protocol | UA | WA | macro F1 | command |")
    print("|---|---|---|---|---|---|---|")
    for i in range(0, len(argv), 4):
        print(row(*argv[i:i + 4]))


if __name__ == "__main__":
    main(sys.argv[1:])
