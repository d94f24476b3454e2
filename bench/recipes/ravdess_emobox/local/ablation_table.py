"""The ablation table: each run's validation scores, read from its ``metrics.jsonl``.

    python ablation_table.py RUNS_DIR --row LABEL RUN [--row LABEL RUN ...]

Columns: validation UA at the epoch validation picks (the best by valid UA, which is what the
checkpoint choice keeps), that epoch, the mean valid UA of the last 5 epochs (less noisy than a
maximum over epochs), the last epoch's train and validation loss (the generalisation gap) and
the mean epoch time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def row(label: str, run: Path) -> str:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    best = max(rows, key=lambda r: r["valid_ua"])
    tail = [r["valid_ua"] for r in rows[-5:]]
    last = rows[-1]
    seconds = sum(r["time_s"] for r in rows) / len(rows)
    return (f"| {label} | {best['valid_ua']:.3f} | {best['epoch']}/{len(rows)} | {sum(tail) / len(tail):.3f} | "
            f"{last['train_loss']:.2f} / {last['valid_loss']:.2f} | {seconds:.0f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs")
    parser.add_argument("--row", nargs=2, action="append", required=True, metavar=("LABEL", "RUN"))
    args = parser.parse_args()
    print("| setting | valid UA (picked epoch) | epoch | valid UA, mean of last 5 "
          "| train / valid loss, last epoch | s/epoch |")
    print("|---|---|---|---|---|---|")
    for label, run in args.row:
        path = Path(args.runs) / run
        print(row(label, path) if (path / "metrics.jsonl").is_file() else f"| {label} | not run | | | | |")


if __name__ == "__main__":
    main()
