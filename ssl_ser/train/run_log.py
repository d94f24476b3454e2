"""What a run writes besides its checkpoints, from rank 0: ``metrics.jsonl`` (one row per
finished epoch), ``events.jsonl`` (resumes, restarts, unread data, re-clusterings),
TensorBoard scalars, the learning curves (``curves.png``) and console lines."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssl_ser.files import atomic_write
from ssl_ser.plots import CURVES_FILE, learning_curves_png

METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"


class RunLog:
    """Rank 0 writes; on other ranks (and for remote storage, ``run_dir`` None) every call
    but the console line is a no-op."""

    def __init__(self, run_dir: Path | None, *, is_main: bool, name: str, metric: str, epochs: int) -> None:
        self.run_dir = run_dir if is_main else None
        self.is_main = is_main
        self.name = name
        self.metric = metric
        self.epochs = epochs
        self._writer: Any = None

    def log(self, message: str) -> None:
        if self.is_main:
            print(f"[ssl-ser] {message}", flush=True)

    def event(self, kind: str, **fields: Any) -> None:
        """An audit line in ``events.jsonl``."""
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with (self.run_dir / EVENTS_FILE).open("a") as out:
                out.write(json.dumps({"event": kind, "time": time.time(), **fields}) + "\n")

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.run_dir is None:
            return
        if self._writer is None:
            # tensorboard pulls in a lot at import: only once a run writes its first scalar
            # deferred: tensorboard is heavy; only once a run writes scalars
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        for k, v in values.items():
            if isinstance(v, (int, float)) and np.isfinite(v):
                self._writer.add_scalar(k, v, step)
        self._writer.flush()

    def epoch(self, metrics: dict[str, Any], history: Sequence[dict[str, Any]]) -> None:
        """A finished epoch: its row, its scalars, the redrawn curves and a console line."""
        self._epoch_scalars(metrics)
        if self.run_dir is not None:
            with (self.run_dir / METRICS_FILE).open("a") as out:
                out.write(json.dumps(metrics, default=float) + "\n")
            learning_curves_png(history, self.run_dir / CURVES_FILE, metric=self.metric, title=f"run {self.name}")
        self.log(format_metrics(metrics, self.epochs))

    def reconcile(self, history: Sequence[dict[str, Any]]) -> None:
        """Make ``metrics.jsonl`` the restored checkpoint's history (empty without one), each
        epoch once.

        The checkpoint is the record of which epochs finished: a kill after it and before the
        log line loses that line, and a kill after a log line whose checkpoint never landed
        leaves a row for an epoch that will run again. Rewriting the log from the history
        mends both; epochs the log lacked also get their TensorBoard scalars now."""
        if self.run_dir is None:
            return
        path = self.run_dir / METRICS_FILE
        logged = set()
        if not path.is_file() and not history:
            return
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    logged.add(int(json.loads(line)["epoch"]))
        atomic_write(path, "".join(json.dumps(row, default=float) + "\n" for row in history))
        for row in history:
            if row.get("epoch") not in logged:
                self._epoch_scalars(row)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _epoch_scalars(self, metrics: dict[str, Any]) -> None:
        self.scalars({k.replace("_", "/", 1): v for k, v in metrics.items()
                      if isinstance(v, (int, float)) and k != "epoch"}, metrics["epoch"])


def format_metrics(metrics: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {metrics['epoch']}/{epochs}"]
    groups: dict[str, list[str]] = {}
    for key, value in metrics.items():
        if key in ("epoch", "time_s", "lr") or not isinstance(value, (int, float)):
            continue
        group, _, name = key.partition("_")
        if name in ("n", "batches"):
            continue
        groups.setdefault(group, []).append(f"{name} {value:.4g}")
    parts += [f"{g} " + " ".join(v) for g, v in groups.items()]
    parts.append(f"lr {metrics.get('lr', 0):.3g}")
    parts.append(f"{metrics.get('time_s', 0):.1f}s")
    return " | ".join(parts)
