"""What a checkpoint holds and how it is read back safely.

A checkpoint is a directory: ``state.pt`` (tensors and plain Python values only, so it loads
with ``torch.load(weights_only=True)``) and ``meta.json`` (epoch, metrics, config
fingerprints, label spaces, the resolved job). The same layout serves Ray ``Checkpoint``
objects and debug-mode runs. Both files are written atomically (tmp, fsync, rename), so a kill
never leaves a half-written one; a checkpoint damaged anyway (a full or failing disk) is
skipped by :func:`load_newest_intact` in favour of the one before it.
"""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_ser.errors import SslSerError
from ssl_ser.files import atomic_open, atomic_write

STATE = "state.pt"
META = "meta.json"


class CheckpointError(SslSerError):
    """A checkpoint that is missing, unreadable or does not fit the run."""


def rng_state() -> dict[str, Any]:
    """Every RNG the loop draws from, as tensors/plain values (safe-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    assert not isinstance(keys, str)  # legacy=True: the MT19937 key array
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
    with atomic_open(directory / STATE, "wb") as handle:
        torch.save(state, handle)
    # meta last: a directory with both files is a complete checkpoint
    atomic_write(directory / META, json.dumps(meta, indent=2, default=_json_value))
    return directory


def _json_value(value: Any) -> Any:
    """Numbers stay numbers (numpy and 0-d tensor scalars), anything else is its text: the
    history in ``meta.json`` must read back as the rows ``metrics.jsonl`` holds."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def load_state(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(directory) / STATE
    if not path.is_file():
        raise CheckpointError(f"no {STATE} in checkpoint {directory}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # torch's own message suggests the unsafe way round this
        raise CheckpointError(f"refusing checkpoint {path}: it holds Python objects besides tensors "
                              f"and plain values, and loading those could run arbitrary code") from None
    except Exception as err:  # a truncated or foreign file
        text = str(err).strip()
        reason = text.splitlines()[0].split(". ")[0] if text else type(err).__name__  # torch adds paragraphs
        raise CheckpointError(f"cannot load checkpoint {path} (truncated or corrupt?): {reason}") from None


def load_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / META
    if not path.is_file():
        raise CheckpointError(f"no {META} in checkpoint {directory}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:  # truncated or garbled
        raise CheckpointError(f"cannot read {path}: {err}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"cannot read {path}: not a JSON object")
    return meta


@dataclass
class Restored:
    """The newest checkpoint that loaded, and the newer ones that did not (with why)."""

    directory: Path
    meta: dict[str, Any]
    state: dict[str, Any]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_newest_intact(candidates: Sequence[Path], map_location: str | torch.device = "cpu"
                       ) -> Restored | None:
    """Load the first of ``candidates`` (newest first) whose meta and state both read back;
    None when there are none. Raises when every one is damaged: starting over silently would
    throw the run away."""
    skipped: list[tuple[Path, str]] = []
    for directory in candidates:
        try:
            meta = load_meta(directory)
            state = load_state(directory, map_location=map_location)
        except CheckpointError as err:
            skipped.append((Path(directory), str(err)))
            continue
        return Restored(Path(directory), meta, state, skipped)
    if skipped:
        raise CheckpointError(f"none of the {len(skipped)} checkpoint(s) can be loaded; the newest: "
                              f"{skipped[0][1]}")
    return None


def checkpoints_of(run: str | Path) -> dict[Path, dict[str, Any]]:
    """A run directory's checkpoints with their metadata, in name order; one whose metadata is
    damaged or still being written is left out."""
    metas = {}
    for state in sorted(Path(run).glob(f"*/{STATE}")):
        try:
            metas[state.parent] = load_meta(state.parent)
        except CheckpointError:  # damaged or still being written: not a candidate
            continue
    return metas


def find_checkpoint(path: str | Path, which: str = "best") -> Path:
    """A checkpoint directory from a checkpoint itself or a run directory (best or latest)."""
    path = Path(path)
    if (path / STATE).is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"no such run or checkpoint: {path}")
    metas = checkpoints_of(path)
    found = list(metas)
    if not found:
        raise CheckpointError(f"{path} holds no checkpoints (looked for */{STATE})")
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
