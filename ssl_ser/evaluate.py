"""Evaluating a trained model on shard sets: the field's numbers as JSON, a table and a PNG.

``evaluate`` rebuilds the run's :class:`~ssl_ser.inference.Predictor` (front-end, speaker
normalisation, model, label space, segment setting) and scores every utterance of the shard
sets once: UA, WA, macro and weighted F1, per-class recall/precision/F1, the confusion matrix
and, for attribute models, CCC per attribute. Segment models are scored per utterance (the
mean of their segments' posteriors), as in training. A pass that could not read every sample
its shard indexes list (a missing or broken shard) is an error unless ``allow_missing``, and
then the shortfall is part of the results. ``write_results`` stores
``metrics.json`` (for scripts), ``predictions.jsonl`` (one row per utterance) and
``confusion.png`` (normalised per true class); ``format_report`` is the printed table. The
cross-validation driver (:mod:`ssl_ser.cv`) reuses all three.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_ser.data.manifest import ATTRIBUTES
from ssl_ser.data.stream import Shortfall, make_stream
from ssl_ser.errors import SslSerError
from ssl_ser.files import atomic_open, atomic_write, writable_dir
from ssl_ser.inference import Predictions, Predictor
from ssl_ser.labels import IGNORE
from ssl_ser.plots import confusion_png, normalise_rows
from ssl_ser.speaker_norm import SpeakerNorm

HEADLINE = (("ua", "UA"), ("wa", "WA"), ("macro_f1", "macro F1"), ("weighted_f1", "weighted F1"))
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
CONFUSION_FILE = "confusion.png"


class EvaluationError(SslSerError):
    """Shard sets that cannot be evaluated (no samples, nothing labelled...)."""


@dataclass
class Evaluation:
    """What one evaluation pass found, with where it came from."""

    predictions: Predictions
    classes: list[str]
    attributes: list[str]
    checkpoint: str
    epoch: int | None
    shards: list[str]
    speaker_norm: dict[str, int] = field(default_factory=dict)
    """Speakers normalised with checkpoint statistics / statistics fitted on the evaluated audio."""
    shortfall: Shortfall | None = None
    """What could not be read (``allow_missing``); None when every sample was scored."""

    def summary(self) -> dict[str, Any]:
        """The JSON written to ``metrics.json``."""
        report = self.predictions.report
        confusion = np.asarray(report.get("confusion", np.zeros((len(self.classes),) * 2)), dtype=np.int64)
        labelled = int((self.predictions.labels != IGNORE).sum())
        return {
            "checkpoint": self.checkpoint, "epoch": self.epoch, "shards": self.shards,
            "classes": self.classes, "attributes": self.attributes,
            "utterances": len(self.predictions.keys), "labelled": labelled,
            "metrics": {k: _plain(v) for k, v in self.predictions.metrics.items()},
            "per_class": report.get("per_class", {}),
            "confusion": confusion.tolist(),
            "confusion_normalised": [[_plain(v) for v in row] for row in normalise_rows(confusion)],
            "speaker_norm": self.speaker_norm,
            "shortfall": None if self.shortfall is None else self.shortfall.as_dict(),
        }


# --- running ----------------------------------------------------------------------------------

def evaluate(run_or_ckpt: str | Path, shards: Sequence[str], *, which: str = "best",
             device: str = "cpu", batch_size: int | None = None, num_workers: int = 0,
             max_seconds: float | None | str = "job", embeddings: bool = False,
             fit_new_speakers: bool = True, predictor: Predictor | None = None,
             meta: dict[str, Any] | None = None, allow_missing: bool = False) -> Evaluation:
    """Score every utterance of ``shards`` with a run's ``which`` checkpoint.

    ``max_seconds``: utterances longer than this are cut ("job": the job's
    ``data.eval_max_seconds``). With speaker normalisation, speakers the checkpoint has no
    statistics for get their own, fitted (without labels) on the evaluated audio, as the
    training loop does for its validation and test speakers (``fit_new_speakers``).
    A ``predictor`` and its ``meta`` may be passed in to skip loading the checkpoint.
    A missing or broken shard, or fewer samples than the indexes list, raises
    :class:`EvaluationError`; with ``allow_missing`` what was read is scored and the
    shortfall recorded.
    """

    if not shards:
        raise EvaluationError("give at least one shard set to evaluate")
    if predictor is None or meta is None:
        predictor, meta = Predictor.from_checkpoint(run_or_ckpt, device=device, which=which)
    job = meta["job"]
    data = job.get("data", {})
    limit: float | None = data.get("eval_max_seconds") if isinstance(max_seconds, str) else max_seconds

    def stream() -> Any:
        return make_stream(list(shards), mode="exact", batch_size=batch_size or data.get("batch_size", 16),
                           crop_seconds=None, max_seconds=limit, num_workers=num_workers)

    norm_counts: dict[str, int] = {}
    if predictor.speaker_norm is not None and fit_new_speakers:
        norm_counts = add_speaker_statistics(predictor, stream())
    scored = stream()
    pred = predictor.score(predictor.predict(scored, embeddings=embeddings))
    shortfall = scored.shortfall()
    if shortfall is not None and not allow_missing:
        raise EvaluationError(f"{', '.join(map(str, shards))}: {shortfall.describe()}; no results "
                              f"written (--allow-missing scores what was read and records the "
                              f"shortfall in metrics.json)")
    if not pred.keys:
        raise EvaluationError(f"the shard sets {list(shards)} hold no samples")
    return Evaluation(predictions=pred, classes=list(predictor.labels.classes),
                      attributes=list(predictor.attributes), checkpoint=str(meta.get("checkpoint")),
                      epoch=meta.get("epoch"), shards=[str(s) for s in shards], speaker_norm=norm_counts,
                      shortfall=shortfall)


def add_speaker_statistics(predictor: Predictor, batches: Any) -> dict[str, int]:
    """Give speakers without statistics in the predictor's speaker normalisation their own,
    fitted on ``batches``; returns how many speakers use checkpoint / new statistics."""

    old = predictor.speaker_norm
    assert old is not None
    try:
        fitted = SpeakerNorm.fit(predictor.frontend, batches, predictor.device)
    except ValueError:  # no row names a speaker: everything uses the pooled statistics
        return {"from_checkpoint": 0, "fitted_here": 0}
    if old.prior:  # as in training: towards the training speakers' pooled statistics
        fitted = fitted.shrunk(old.prior, old.global_mean, old.global_std)
    new = [s for s in fitted.speakers if s not in old.index]
    if new:
        rows = [fitted.index[s] for s in new]
        predictor.speaker_norm = SpeakerNorm(
            old.speakers + new, torch.cat([old.mean, fitted.mean[rows].to(old.mean)]),
            torch.cat([old.std, fitted.std[rows].to(old.std)]), old.global_mean, old.global_std)
        predictor.speaker_norm.prior = old.prior
    return {"from_checkpoint": len(fitted.speakers) - len(new), "fitted_here": len(new)}


# --- writing ----------------------------------------------------------------------------------

def prediction_rows(pred: Predictions, classes: Sequence[str],
                    attributes: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """One JSON-ready row per utterance: key, corpus, speaker, gold and predicted class,
    class posteriors (and attributes, embeddings when present)."""
    for i, key in enumerate(pred.keys):
        meta = pred.meta[i] if i < len(pred.meta) else {}
        label = int(pred.labels[i]) if i < len(pred.labels) else IGNORE
        row: dict[str, Any] = {
            "key": key, "corpus": meta.get("corpus"), "speaker": meta.get("speaker"),
            "label": classes[label] if label != IGNORE else None,
            "pred": classes[int(pred.probs[i].argmax())],
            "probs": {c: round(float(p), 6) for c, p in zip(classes, pred.probs[i])},
        }
        if pred.attributes is not None:
            row["attributes"] = {a: float(pred.attributes[i, ATTRIBUTES.index(a)]) for a in attributes}
            row["gold_attributes"] = {a: _plain(float(pred.gold_attributes[i, ATTRIBUTES.index(a)]))
                                      for a in attributes}
        if pred.embeddings is not None:
            row["embedding"] = [round(float(v), 6) for v in pred.embeddings[i]]
        yield row


def write_results(evaluation: Evaluation, out_dir: str | Path, title: str | None = None) -> dict[str, Path]:
    """``metrics.json``, ``predictions.jsonl`` and ``confusion.png`` in ``out_dir``."""
    out = writable_dir(out_dir)
    summary = evaluation.summary()
    paths = {"metrics": out / METRICS_FILE, "predictions": out / PREDICTIONS_FILE}
    with atomic_open(paths["predictions"]) as lines:
        for row in prediction_rows(evaluation.predictions, evaluation.classes, evaluation.attributes):
            lines.write(json.dumps(row) + "\n")
    if summary["labelled"]:
        paths["confusion"] = confusion_png(summary["confusion"], evaluation.classes, out / CONFUSION_FILE,
                                           title or _title(summary))
    # metrics.json last: its presence says the evaluation is complete (cv relies on it)
    atomic_write(paths["metrics"], json.dumps(summary, indent=2) + "\n")
    return paths


def format_report(metrics: dict[str, Any], per_class: dict[str, Any] | None = None,
                  confusion: Any = None, classes: Sequence[str] | None = None,
                  title: str | None = None) -> str:
    """The printed table: headline numbers, per-class scores, the confusion matrix (counts and
    percentage of the true class)."""
    lines = [title] if title else []
    head = [f"{name} {metrics[key]:.4f}" for key, name in HEADLINE if _finite(metrics.get(key))]
    if head:
        lines.append("  ".join(head) + (f"  (n = {int(metrics['n'])})" if "n" in metrics else ""))
    cccs = [(k[4:], v) for k, v in metrics.items() if k.startswith("ccc_") and k != "ccc_mean" and _finite(v)]
    if cccs:
        mean = f" (mean {metrics['ccc_mean']:.4f})" if _finite(metrics.get("ccc_mean")) else ""
        lines.append("CCC " + "  ".join(f"{a} {v:.4f}" for a, v in cccs) + mean)
    if per_class:
        width = max(8, *(len(c) for c in per_class))
        lines += ["", f"{'class':<{width}}  {'recall':>7}  {'precision':>9}  {'F1':>6}  {'support':>7}"]
        for name, row in per_class.items():
            recall = "-" if row.get("recall") is None else f"{row['recall']:.3f}"
            lines.append(f"{name:<{width}}  {recall:>7}  {row['precision']:>9.3f}  {row['f1']:>6.3f}  "
                         f"{row['support']:>7d}")
    if confusion is not None and classes:
        cm = np.asarray(confusion, dtype=np.int64)
        norm = normalise_rows(cm)
        width = max(8, *(len(c) for c in classes))
        cells = [[f"{cm[i, j]} ({norm[i, j]:.0%})" if not math.isnan(norm[i, j]) else "0"
                  for j in range(len(classes))] for i in range(len(classes))]
        cell = max(len(c) for row in cells for c in row + list(classes))
        lines += ["", "confusion (rows: true, columns: predicted; count and % of the true class)",
                  f"{'':<{width}}  " + "  ".join(f"{c:>{cell}}" for c in classes)]
        for name, row in zip(classes, cells):
            lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>{cell}}" for c in row))
    return "\n".join(lines)


def report_text(evaluation: Evaluation, title: str | None = None) -> str:
    summary = evaluation.summary()
    unlabelled = summary["utterances"] - summary["labelled"]
    note = f"\n({unlabelled} utterance(s) without a usable label are scored but not counted)" if unlabelled else ""
    if evaluation.shortfall is not None:
        note += f"\nwarning: incomplete (--allow-missing): {evaluation.shortfall.describe()}"
    return format_report(summary["metrics"], summary["per_class"],
                         summary["confusion"] if summary["labelled"] else None, summary["classes"],
                         title or _title(summary)) + note


def _title(summary: dict[str, Any]) -> str:
    shards = ", ".join(Path(s).name or s for s in summary["shards"])
    epoch = f" (epoch {summary['epoch']})" if summary.get("epoch") is not None else ""
    return f"{shards}: {Path(summary['checkpoint']).parent.name}{epoch}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _plain(value: Any) -> Any:
    """JSON has no NaN: missing numbers are null."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
