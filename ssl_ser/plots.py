"""Pictures of results, as PNG files: confusion matrices and a run's learning curves.

Files only (matplotlib's Agg backend): clusters and CI have no display. matplotlib is imported
inside the functions because it costs about a second at start-up and most commands draw nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CURVES_FILE = "curves.png"

# Panels of the learning curves: (title, y label, metric keys of a metrics.jsonl row). A panel
# is drawn when a run logged at least one of its keys; validation metrics get their own panel.
_LOSS_KEYS = ("train_loss", "valid_loss")
_CLUSTER_KEYS = ("pre_nmi_hidden", "pre_purity_hidden", "pre_nmi_labels", "pre_nmi_previous")
_CLUSTER_NAMES = {"pre_nmi_hidden": "NMI with the hidden labels (unlabelled part)",
                  "pre_purity_hidden": "purity w.r.t. the hidden labels",
                  "pre_nmi_labels": "NMI with the labels (labelled part)",
                  "pre_nmi_previous": "NMI with the previous epoch's clusters"}
_VALID_SKIP = ("valid_loss", "valid_n")


def _pyplot() -> Any:
    # deferred: matplotlib costs ~1 s to import; only when drawing
    import matplotlib

    matplotlib.use("Agg")
    # deferred: matplotlib costs ~1 s to import; only when drawing
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def normalise_rows(confusion: Any) -> np.ndarray:
    """Each row divided by its total (recall per true class); rows without samples are NaN."""
    cm = np.asarray(confusion, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals > 0, cm / totals, np.nan)


def confusion_png(confusion: Any, classes: Sequence[str], path: str | Path, title: str = "") -> Path:
    """A confusion matrix normalised per true class (rows sum to 1), with the counts, as a PNG."""
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=np.int64)
    norm = normalise_rows(cm)
    n = len(classes)
    size = max(3.5, 0.75 * n + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(np.nan_to_num(norm), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if math.isnan(norm[i, j]):
                continue
            ax.text(j, i, f"{norm[i, j]:.2f}\n({cm[i, j]})", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(int(row["epoch"]), float(row[key])) for row in history
              if isinstance(row.get(key), (int, float)) and math.isfinite(float(row[key]))]
    return [e for e, _ in points], [v for _, v in points]


def learning_curves_png(history: Sequence[Mapping[str, Any]], path: str | Path, *,
                        metric: str | None = None, title: str = "") -> Path | None:
    """Loss and validation metrics per epoch (and, for clustering methods, how the clusters
    agree with the labels) from a run's ``metrics.jsonl`` rows. ``metric`` (``train.metric``)
    is drawn thick: it picks the best checkpoint. None when there is nothing to draw yet."""
    if not history:
        return None
    keys = {k for row in history for k, v in row.items() if isinstance(v, (int, float))}
    valid = sorted(k for k in keys if k.startswith("valid_") and k not in _VALID_SKIP
                   and (not k.startswith("valid_ccc_") or k == "valid_ccc_mean"))
    panels = [("loss", "loss", [k for k in _LOSS_KEYS if k in keys]),
              ("validation metrics", "score", valid),
              ("clusters", "score", [k for k in _CLUSTER_KEYS if k in keys])]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    plt = _pyplot()
    rows = max(len(series) for _, _, series in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6 + 0.2 * rows), squeeze=False)
    for ax, (name, ylabel, series) in zip(axes[0], panels):
        for key in series:
            epochs, values = _series(history, key)
            chosen = metric is not None and key == f"valid_{metric}"
            label = _CLUSTER_NAMES.get(key, key) + (" (picks the best checkpoint)" if chosen else "")
            ax.plot(epochs, values, marker="o", markersize=3, linewidth=2.5 if chosen else 1.2, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        # below the axes, so that no curve hides behind it
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
