"""Where the one training loop runs: under Ray Train, or in one local process (debug mode).

The loop talks to a :class:`Session` only: who am I (rank), where are my checkpoints (newest
first, so a damaged one can be passed over), report this epoch. :class:`RaySession` delegates
to Ray Train (which persists checkpoints to the run's storage, keeps the best ``num_to_keep``
by the validation metric plus the latest, and restarts failed workers from them);
:class:`LocalSession` does the same bookkeeping in a plain directory, so ``--debug`` runs the
very same loop without a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ssl_ser.checkpoint import META, STATE, load_meta


class Session:
    world_rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        return self.world_rank == 0

    def checkpoints(self) -> contextlib.AbstractContextManager[list[Path]]:
        """The checkpoints to resume from, newest first (empty for a new run)."""
        raise NotImplementedError

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        raise NotImplementedError

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device)


class LocalSession(Session):
    """One process; checkpoints in ``run_dir/checkpoint_epoch-NNNNNN`` written atomically."""

    def __init__(self, run_dir: str | Path, num_to_keep: int, score_attribute: str,
                 score_mode: str, device: torch.device | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.num_to_keep = num_to_keep
        self.score_attribute = score_attribute
        self.score_mode = score_mode
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _checkpoints(self) -> list[Path]:
        return sorted(p for p in self.run_dir.glob("checkpoint_epoch-*")
                      if (p / STATE).is_file() and (p / META).is_file())

    @contextlib.contextmanager
    def checkpoints(self) -> Iterator[list[Path]]:
        yield self._checkpoints()[::-1]

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        if checkpoint_dir is None:
            return
        epoch = int(metrics["epoch"])
        final = self.run_dir / f"checkpoint_epoch-{epoch:06d}"
        staging = self.run_dir / f".staging-{final.name}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(checkpoint_dir, staging, copy_function=_copy_synced)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)  # a kill before this line leaves the previous checkpoints intact
        self._prune()

    def _prune(self) -> None:
        found = self._checkpoints()
        if len(found) <= self.num_to_keep:
            return
        latest = found[-1]

        def score(p: Path) -> float:
            value = load_meta(p).get("metrics", {}).get(self.score_attribute)
            if value is None or value != value:  # missing or NaN ranks last
                return float("-inf")
            return value if self.score_mode == "max" else -value

        ranked = sorted(found, key=score, reverse=True)
        keep = set(ranked[: self.num_to_keep]) | {latest}
        for p in found:
            if p not in keep:
                shutil.rmtree(p, ignore_errors=True)


class RaySession(Session):
    """Inside a Ray Train worker."""

    def __init__(self) -> None:
        # deferred: Ray only where a command runs on Ray (seconds to import)
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.world_rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.local_rank = ctx.get_local_rank()
        self.device = ray.train.torch.get_device()
        self.distributed = self.world_size > 1

    @contextlib.contextmanager
    def checkpoints(self) -> Iterator[list[Path]]:
        # deferred: Ray only where a command runs on Ray (seconds to import)
        import ray.train

        checkpoint = ray.train.get_checkpoint()  # the latest one Ray registered
        if checkpoint is None:
            yield []
            return
        with checkpoint.as_directory() as directory:
            yield [Path(directory), *_older_local_checkpoints(checkpoint)]

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        # deferred: Ray only where a command runs on Ray (seconds to import)
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        # every rank reports (Ray waits for all); only rank 0 hands over a checkpoint
        ray.train.report(_plain(metrics), checkpoint=checkpoint)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        # deferred: Ray only where a command runs on Ray (seconds to import)
        import ray.train.torch

        # heads a method does not train in a given step would otherwise stall DDP's reducer
        return ray.train.torch.prepare_model(
            model, parallel_strategy_kwargs={"find_unused_parameters": True})


@contextlib.contextmanager
def staging_dir() -> Iterator[Path]:
    """A scratch directory for writing one checkpoint before it is handed over."""
    path = Path(tempfile.mkdtemp(prefix="ssl-ser-ckpt-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _older_local_checkpoints(checkpoint: Any) -> list[Path]:
    """On local or shared-filesystem storage, the run's earlier checkpoints beside Ray's,
    newest first (Ray names them by time), to fall back on if that one is damaged."""
    # deferred: pyarrow's filesystems only for remote storage
    import pyarrow.fs

    if not isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return []
    latest = Path(checkpoint.path)
    return sorted((p for p in latest.parent.glob("checkpoint_*")
                   if p.name < latest.name and (p / STATE).is_file() and (p / META).is_file()),
                  reverse=True)


def _copy_synced(src: str, dst: str) -> str:
    """``shutil.copy2``, then fsync: the rename that publishes a checkpoint must not come
    before its bytes are on disk."""
    shutil.copy2(src, dst)
    with open(dst, "rb+") as handle:
        os.fsync(handle.fileno())
    return dst


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    """Ray stores reported metrics as JSON-like values."""
    return json.loads(json.dumps(metrics, default=float))
