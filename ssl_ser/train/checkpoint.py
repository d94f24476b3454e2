"""What a checkpoint holds and how it is read back safely.

A checkpoint is a directory: ``state.pt`` (tensors and plain Python values only, so it loads
with ``torch.load(weights_only=True)``) and ``meta.json`` (epoch, metrics, config
fingerprints, label spaces, the resolved job). The same layout serves Ray ``Checkpoint``
objects and debug-mode runs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_ser.errors import SslSerError

STATE = "state.pt"
META = "meta.json"


class CheckpointError(SslSerError):
    """A checkpoint that is missing, unreadable or does not fit the run."""


def rng_state() -> dict[str, Any]:
    """Every RNG the loop draws from, as tensors/plain values (safe-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(directory: str | Path, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / STATE)
    (directory / META).write_text(json.dumps(meta, indent=2, default=str))
    return directory


def load_state(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(directory) / STATE
    if not path.is_file():
        raise CheckpointError(f"no {STATE} in checkpoint {directory}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"cannot load checkpoint {path}: {err}") from None


def load_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / META
    if not path.is_file():
        raise CheckpointError(f"no {META} in checkpoint {directory}")
    return json.loads(path.read_text())


def find_checkpoint(path: str | Path, which: str = "best") -> Path:
    """A checkpoint directory from a checkpoint itself or a run directory (best or latest)."""
    path = Path(path)
    if (path / STATE).is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"no such run or checkpoint: {path}")
    found = [p.parent for p in path.glob(f"*/{STATE}") if (p.parent / META).is_file()]
    if not found:
        raise CheckpointError(f"{path} holds no checkpoints (looked for */{STATE})")
    metas = {p: load_meta(p) for p in found}
    latest = max(found, key=lambda p: (metas[p].get("epoch", 0), p.name))
    if which == "latest":
        return latest
    scored = [p for p in found if metas[p].get("score") is not None]
    if not scored:
        return latest
    mode = metas[latest].get("score_mode", "max")
    pick = max if mode == "max" else min
    return pick(scored, key=lambda p: (metas[p]["score"], metas[p].get("epoch", 0)))


def _tuplify(value: Any) -> Any:
    """``random.setstate`` needs tuples where a round trip may have left lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuplify(v) for v in value)
    return value
