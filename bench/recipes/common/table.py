"""The results tables of the recipes' READMEs, regenerated from their run directories.

One helper for every recipe, because every table is the same thing: per-fold or per-seed test
scores and their mean ± sd, UA first, then WA and F1. Two sources:

``cv``: ``ssl-ser cv`` directories (``cv_results.json``). One row per directory: the number
pooled over every test utterance of every fold, then in brackets the mean ± sample sd of the
per-fold numbers::

    python bench/recipes/common/table.py cv --row "PyResNet, tiny" runs/pyresnet-cv-k5 [--row ...]

``seeds``: training runs named ``<config>_s<seed>``, each scored by ``ssl-ser evaluate RUN
SHARDS --out RUN/test`` (``RUN/test/metrics.json``). One row per config: the mean ± sd over
its seeds and each seed's UA; ``--per-run`` first prints one row per run with the scored
(best) epoch and the validation UA there (from ``metrics.jsonl``)::

    python bench/recipes/common/table.py seeds runs --config dec "DeepEmoCluster" --config sup "supervised" --per-run
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

NAMES = {"ua": "UA", "wa": "WA", "macro_f1": "macro F1", "weighted_f1": "weighted F1"}


def mean_sd(values: list[float], population: bool = False, digits: int = 3) -> str:
    sd = 0.0 if len(values) < 2 else statistics.pstdev(values) if population else statistics.stdev(values)
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


# --- cross-validation -------------------------------------------------------------------------

def cv_row(label: str, cv_dir: Path, metrics: list[str]) -> str:
    if not (cv_dir / "cv_results.json").is_file():
        raise SystemExit(f"{cv_dir}: no cv_results.json (not an `ssl-ser cv` directory, or no fold finished)")
    results = json.loads((cv_dir / "cv_results.json").read_text())
    if results["folds_done"] != results["folds_total"]:
        raise SystemExit(f"{cv_dir}: only {results['folds_done']}/{results['folds_total']} folds done")
    pooled, stats, protocol = results["pooled"], results["mean_std"], results["protocol"]
    protocol = f"{protocol[1:]} folds by speaker" if protocol.startswith("k") else f"leave one {protocol} out"
    cells = [f"{pooled[k]:.3f} ({stats[k]['mean']:.3f} ± {stats[k]['std']:.3f})" for k in metrics]
    return f"| {label} | {protocol}, n = {pooled['n']} | " + " | ".join(cells) + " |"


def cv_table(rows: list[tuple[str, str]], metrics: list[str]) -> list[str]:
    head = ["| recipe | protocol | " + " | ".join(NAMES[k] for k in metrics) + " |",
            "|---|---|" + "---|" * len(metrics)]
    return head + [cv_row(label, Path(d), metrics) for label, d in rows]


# --- seeds ------------------------------------------------------------------------------------

def scored_runs(runs: Path, test: str) -> dict[str, list[dict]]:
    """Every ``<config>_s<seed>/<test>/metrics.json`` under ``runs``, by config, seeds in order."""
    found: dict[str, list[dict]] = {}
    for path in sorted(runs.glob(f"*_s*/{test}/metrics.json")):
        match = re.fullmatch(r"(.+)_s(\d+)", path.parent.parent.name)
        if match:
            found.setdefault(match[1], []).append(
                {"run": path.parent.parent, "seed": int(match[2]), **json.loads(path.read_text())})
    for results in found.values():
        results.sort(key=lambda r: r["seed"])
    return found


def valid_ua(run: Path, epoch: int) -> float | None:
    """The validation UA the run logged at ``epoch`` (the scored checkpoint's epoch)."""
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("epoch") == epoch:
            return row.get("valid_ua")
    return None


def seeds_table(runs: Path, configs: list[tuple[str, str]], metrics: list[str], *, test: str = "test",
                noisy: str | None = None, valid: bool = False, per_run: bool = False,
                population: bool = False, percent: bool = False) -> list[str]:
    found = scored_runs(runs, test)
    configs = configs or [(name, name) for name in sorted(found)]
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    lines: list[str] = []
    if per_run:
        lines += ["| run | best epoch | valid UA | " + " | ".join(NAMES[k] for k in metrics) + " |",
                  "|---|---|---|" + "---|" * len(metrics)]
        for name, _ in configs:
            for r in found.get(name, []):
                v = valid_ua(r["run"], r["epoch"])
                lines.append(f"| {r['run'].name} | {r['epoch']} | " + ("-" if v is None else f"{v * scale:.{digits}f}")
                             + " | " + " | ".join(f"{r['metrics'][k] * scale:.{digits}f}" for k in metrics) + " |")
        lines.append("")
    head = ["config", "seeds"] + (["valid UA"] if valid else []) + [NAMES[k] for k in metrics] + ["UA per seed"]
    head += [f"UA, {noisy}"] if noisy else []
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, label in configs:
        results = found.get(name, [])
        if not results:
            continue
        cells = [label, str(len(results))]
        if valid:
            cells.append(mean_sd([valid_ua(r["run"], r["epoch"]) * scale for r in results], population, digits))
        cells += [mean_sd([r["metrics"][k] * scale for r in results], population, digits) for k in metrics]
        cells.append(", ".join(f"{r['metrics']['ua'] * scale:.{digits}f}" for r in results))
        if noisy:
            scores = [json.loads(p.read_text())["metrics"]["ua"] * scale for r in results
                      if (p := r["run"] / noisy / "metrics.json").is_file()]
            cells.append(mean_sd(scores, population, digits) if scores else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="source", required=True)
    cv = sub.add_parser("cv", help="rows from ssl-ser cv directories")
    cv.add_argument("--row", nargs=2, action="append", required=True, metavar=("LABEL", "CV_DIR"))
    seeds = sub.add_parser("seeds", help="rows from <config>_s<seed> runs scored by ssl-ser evaluate")
    seeds.add_argument("runs", help="the directory holding the runs")
    seeds.add_argument("--config", nargs=2, action="append", default=[], metavar=("NAME", "LABEL"),
                       help="a config to tabulate, in this order (default: every config found)")
    seeds.add_argument("--test", default="test", help="each run's evaluation directory (default: test)")
    seeds.add_argument("--noisy", help="add the mean UA of this evaluation directory (e.g. test_noisy5)")
    seeds.add_argument("--valid", action="store_true", help="add the mean validation UA at the scored epochs")
    seeds.add_argument("--per-run", action="store_true", help="first, one row per run")
    seeds.add_argument("--population-sd", action="store_true", help="population sd instead of the sample sd")
    seeds.add_argument("--percent", action="store_true", help="scores in %% with one decimal")
    for p in (cv, seeds):
        p.add_argument("--metrics", default="ua,wa,macro_f1", help="columns after UA (default: ua,wa,macro_f1)")
    args = parser.parse_args(argv)
    metrics = args.metrics.split(",")
    unknown = [k for k in metrics if k not in NAMES]
    if unknown or metrics[0] != "ua":
        parser.error(f"--metrics: UA first, then any of {', '.join(NAMES)}")
    if args.source == "cv":
        lines = cv_table(args.row, metrics)
    else:
        lines = seeds_table(Path(args.runs), args.config, metrics, test=args.test, noisy=args.noisy,
                            valid=args.valid, per_run=args.per_run, population=args.population_sd,
                            percent=args.percent)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
