"""Collectives across the ranks of a data-parallel run, behind one small interface so the
same code runs in one process (:class:`LocalCollective`), under ``torch.distributed``
(:class:`TorchCollective`, gloo or NCCL) and in tests (threads)."""

from __future__ import annotations

import socket
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist


class Collective(Protocol):
    """What distributed k-means needs from the process group."""

    rank: int
    world_size: int

    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks."""

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank."""

    def gather(self, obj: Any, dst: int = 0) -> list[Any] | None:
        """Every rank's ``obj`` in rank order on rank ``dst``; None elsewhere."""


class LocalCollective:
    """A single process."""

    rank = 0
    world_size = 1

    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        return array

    def all_gather(self, obj: Any) -> list[Any]:
        return [obj]

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        return obj

    def gather(self, obj: Any, dst: int = 0) -> list[Any] | None:
        return [obj]


class TorchCollective:
    """``torch.distributed`` (gloo on CPU; NCCL needs the tensors on this rank's GPU)."""

    def __init__(self, group: Any = None) -> None:
        self.dist = dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        backend = str(dist.get_backend(group)).lower()
        self.device = torch.device("cuda", torch.cuda.current_device()) if "nccl" in backend else torch.device("cpu")

    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        self.dist.all_reduce(tensor, group=self.group)
        return tensor.cpu().numpy()

    def all_gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        self.dist.all_gather_object(out, obj, group=self.group)
        return out

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        box = [obj]
        self.dist.broadcast_object_list(box, src=src, group=self.group)
        return box[0]

    def gather(self, obj: Any, dst: int = 0) -> list[Any] | None:
        out: list[Any] | None = [None] * self.world_size if self.rank == dst else None
        self.dist.gather_object(obj, out, dst=dst, group=self.group)
        return out


def free_port() -> int:
    """A TCP port free on loopback now: the rendezvous of a process group started on this
    machine (benchmarks, tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_collective() -> Collective:
    """``torch.distributed``'s default group when initialised, else a single process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return TorchCollective()
    return LocalCollective()


def gather_parts(parts: dict[str, list[Any]], distributed: bool) -> dict[str, list[Any]]:
    """Concatenate every rank's evaluation parts (each rank saw a disjoint set of samples)."""
    if not distributed:
        return parts
    merged: dict[str, list[Any]] = {k: [] for k in parts}
    for rank_parts in default_collective().all_gather(parts):
        for k, v in rank_parts.items():
            merged[k] += v
    return merged
