"""Cross-validation results: per-fold test scores, mean and sample standard deviation over folds,
the numbers pooled over every test utterance with their confusion matrix, and the report text."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ssl_ser.evaluate import format_report
from ssl_ser.files import atomic_write, read_json, write_json
from ssl_ser.folds import Plan, protocol_name
from ssl_ser.metrics import HEADLINE_METRICS, classification_report
from ssl_ser.plots import confusion_png

RESULTS_FILE = "cv_results.json"
REPORT_FILE = "cv_report.txt"
CONFUSION_FILE = "confusion.png"
TEST_DIR = "test"


def summarise(plan: Plan, elapsed: float | None = None) -> dict[str, Any]:
    """Per-fold test numbers, mean and sample standard deviation over folds, and the numbers
    pooled over every test utterance; writes ``cv_results.json``, ``confusion.png`` and
    ``cv_report.txt``."""
    classes = plan.classes
    index = {c: i for i, c in enumerate(classes)}
    per_fold, gold, pred = [], [], []
    for fold in plan.folds:
        run = plan.cv_dir / fold.name / TEST_DIR
        summary = read_json(run / "metrics.json")
        if summary is None:
            continue
        per_fold.append({"fold": fold.index, "name": fold.name, "held_out": fold.held_out,
                         "valid_speakers": fold.valid_speakers, "epoch": summary.get("epoch"),
                         "train_s": _training_seconds(plan.cv_dir / fold.name),
                         **summary["metrics"], "n": summary.get("labelled")})
        with (run / "predictions.jsonl").open() as lines:
            for line in lines:
                row = json.loads(line)
                if row.get("label") is not None:
                    gold.append(index[row["label"]])
                    pred.append(index[row["pred"]])
    results: dict[str, Any] = {
        "protocol": protocol_name(plan.protocol), "classes": classes, "folds_total": len(plan.folds),
        "folds_done": len(per_fold), "folds": per_fold, "cv_dir": str(plan.cv_dir),
    }
    stats = {}
    for key in sorted({k for f in per_fold for k in f if k in HEADLINE_METRICS or k.startswith("ccc_")}):
        values = [f[key] for f in per_fold if isinstance(f.get(key), (int, float)) and math.isfinite(f[key])]
        if values:
            stats[key] = {"mean": float(np.mean(values)),
                          "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "folds": len(values)}
    results["mean_std"] = stats
    if gold:
        report = classification_report(np.asarray(gold), np.asarray(pred), classes)
        results["pooled"] = {k: report[k] for k in ("ua", "wa", "macro_f1", "weighted_f1", "n")}
        results["pooled"]["per_class"] = report["per_class"]
        results["pooled"]["confusion"] = report["confusion"]
        confusion_png(report["confusion"], classes, plan.cv_dir / CONFUSION_FILE,
                      f"{plan.cv_dir.name}: pooled over {len(per_fold)} folds (n = {report['n']})")
    results["train_s"] = sum(f["train_s"] for f in per_fold)
    if elapsed is not None:  # wall time of this run_cv call: only the folds it ran
        results["elapsed_s"] = elapsed
    write_json(plan.cv_dir / RESULTS_FILE, results)
    atomic_write(plan.cv_dir / REPORT_FILE, cv_report(results) + "\n")
    return results


def cv_report(results: dict[str, Any]) -> str:
    """:func:`format_cv` plus the pooled per-class scores and confusion matrix."""
    text = format_cv(results)
    pooled = results.get("pooled")
    if pooled:
        text += "\n\n" + format_report(pooled, pooled["per_class"], pooled["confusion"], results["classes"],
                                       title="pooled over all test utterances")
    return text


def format_cv(results: dict[str, Any]) -> str:
    """Per-fold table, mean +- std and pooled numbers."""
    names = list(zip(HEADLINE_METRICS, ("UA", "WA", "macro F1", "weighted F1")))
    rows = results["folds"]
    held_width = max([8, *(len(", ".join(f["held_out"])) for f in rows)])
    lines = [f"cross-validation ({results['protocol']}): {results['folds_done']}/{results['folds_total']} folds "
             f"done in {results['cv_dir']} (training: {results.get('train_s', 0) / 60:.1f} min)",
             f"{'fold':<5} {'held out':<{held_width}} {'n':>5}  " + "  ".join(f"{n:>15}" for _, n in names)]
    for f in rows:
        lines.append(f"{f['fold']:<5} {', '.join(f['held_out']):<{held_width}} {f['n'] or 0:>5}  "
                     + "  ".join(f"{format_score(f.get(k)):>15}" for k, _ in names))
    stats = results.get("mean_std", {})
    if stats:
        cells = [f"{stats[k]['mean']:.4f} ± {stats[k]['std']:.4f}" if k in stats else "-" for k, _ in names]
        lines.append(f"{'mean ± std over folds':<{held_width + 12}}  " + "  ".join(f"{c:>15}" for c in cells))
    pooled = results.get("pooled")
    if pooled:
        label = f"pooled (n = {pooled['n']})"
        cells = [format_score(pooled.get(k)) for k, _ in names]
        lines.append(f"{label:<{held_width + 12}}  " + "  ".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


def _training_seconds(run: Path) -> float:
    """Seconds the run's epochs took (training + validation), from its ``metrics.jsonl``."""
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0.0
    return float(sum(json.loads(line).get("time_s", 0.0) for line in lines if line.strip()))


def format_score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"
