"""The field's evaluation numbers: WA, UA, F1, confusion matrices, CCC.

WA (weighted accuracy) is plain accuracy; UA (unweighted accuracy) is the mean per-class
recall, the usual headline number for imbalanced emotion corpora. Classes without test
samples are left out of UA and macro F1 (and reported as such), as the usual toolkits do.
"""

from __future__ import annotations

import numpy as np
import torch

HEADLINE_METRICS = ("ua", "wa", "macro_f1", "weighted_f1")
"""The classification scores every report leads with: UA (unweighted accuracy, the mean
per-class recall) first, then WA, macro-F1 and weighted F1."""


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """WA, UA, macro/weighted F1, per-class recall/precision/F1/support and the confusion matrix."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + np.nan_to_num(recall) > 0,
                      2 * precision * np.nan_to_num(recall) / (precision + np.nan_to_num(recall)), 0.0)
    present = support > 0
    total = int(support.sum())
    return {
        "wa": float(tp.sum() / total) if total else float("nan"),
        "ua": float(np.nanmean(recall[present])) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "weighted_f1": float((f1 * support).sum() / total) if total else float("nan"),
        "per_class": {c: {"recall": _num(recall[i]), "precision": float(precision[i]),
                          "f1": float(f1[i]), "support": int(support[i])}
                      for i, c in enumerate(classes)},
        "confusion": cm.tolist(),
        "classes": list(classes),
        "n": total,
    }


def ccc(pred: np.ndarray, gold: np.ndarray) -> float:
    """Concordance correlation coefficient (Lin 1989) with population (biased) moments."""
    pred = np.asarray(pred, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    mp, mg = pred.mean(), gold.mean()
    vp, vg = pred.var(), gold.var()
    cov = ((pred - mp) * (gold - mg)).mean()
    denom = vp + vg + (mp - mg) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def masked_squared_error(pred: torch.Tensor, target: torch.Tensor,
                         lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared errors over the valid frames (``t < lengths``) of ``[B, F, T]`` maps, and
    the number of elements summed."""
    valid = torch.arange(target.shape[-1], device=target.device) < lengths.to(target.device)[:, None]
    valid = valid.unsqueeze(1).expand_as(target)
    diff = pred.float() - target.float()
    return diff[valid].pow(2).sum(), valid.sum()


def ccc_loss(pred: torch.Tensor, gold: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - CCC`` per column of ``[B, A]`` predictions, averaged over columns.

    ``mask`` (``[B, A]`` bool) selects the entries that have gold values; columns with fewer
    than two of them contribute nothing. Differentiable, same moments as :func:`ccc`.
    """
    if pred.dim() == 1:
        pred, gold = pred[:, None], gold[:, None]
        mask = None if mask is None else mask[:, None]
    if mask is None:
        mask = torch.isfinite(gold)
    losses = []
    for a in range(pred.shape[1]):
        m = mask[:, a]
        if int(m.sum()) < 2:
            continue
        p, g = pred[m, a].float(), gold[m, a].float()
        mp, mg = p.mean(), g.mean()
        vp, vg = p.var(unbiased=False), g.var(unbiased=False)
        cov = ((p - mp) * (g - mg)).mean()
        losses.append(1 - 2 * cov / (vp + vg + (mp - mg) ** 2 + 1e-8))
    if not losses:
        return pred.sum() * 0.0  # keeps the graph (DDP needs every rank to backprop)
    return torch.stack(losses).mean()


def nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as scikit-learn's default)."""
    a = np.unique(np.asarray(a), return_inverse=True)[1]
    b = np.unique(np.asarray(b), return_inverse=True)[1]
    n = a.size
    if n == 0:
        return float("nan")
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    joint /= n
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0 and hb == 0:
        return 1.0
    denom = (ha + hb) / 2
    return mi / denom if denom > 0 else 0.0


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Cluster purity: the fraction of samples whose label is their cluster's most common one."""
    clusters = np.unique(np.asarray(clusters), return_inverse=True)[1]
    labels = np.unique(np.asarray(labels), return_inverse=True)[1]
    if clusters.size == 0:
        return float("nan")
    joint = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(joint, (clusters, labels), 1)
    return float(joint.max(axis=1).sum() / clusters.size)


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
