"""Key -> class tables in 12 bytes per key: sorted 8-byte key hashes and int32 values.

DeepEmoCluster's pseudo-labels (and the embedding bank's key index) are addressed by sample
key. A ``dict[str, int]`` plus the gathered key list costs ~150 bytes per key (1.47 GiB for
10M keys, ``bench/perf/pseudo_label_table.py``); here a key is its BLAKE2b hash truncated to 8
bytes (:func:`key_hashes`), kept sorted next to an int32 value and found with
``np.searchsorted``. Ranks exchange hashes, never key strings.

Collisions: two distinct keys hashed in one call are compared (:func:`key_hashes` raises
:class:`HashCollision` naming both), so a rank never merges two of its own keys. Keys hashed
on different ranks are only compared by hash; two of N distinct keys share a hash with
probability ~N^2 / 2^65 (3e-6 for 10M keys), and a key absent from a table is taken for a
present one with probability ~N / 2^64 per lookup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ssl_ser.errors import SslSerError
from ssl_ser.labels import IGNORE


class HashCollision(SslSerError):
    """Two distinct sample keys with the same 8-byte hash."""


_CHUNK = 65536


def _hash(keys: Sequence[str]) -> np.ndarray:
    """BLAKE2b-64 of each key, a chunk at a time (no list of 10M digests in memory)."""
    out = np.empty(len(keys), np.uint64)
    for i in range(0, len(keys), _CHUNK):
        digest = b"".join(hashlib.blake2b(k.encode(), digest_size=8).digest() for k in keys[i:i + _CHUNK])
        out[i:i + _CHUNK] = np.frombuffer(digest, dtype="<u8")
    return out


def _sorted_checked(keys: Sequence[str], hashes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``hashes[order]`` (order: a stable argsort), after comparing the keys of equal hashes."""
    sorted_hashes = hashes[order]
    for i in np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1]):  # strings only where hashes tie
        a, b = keys[int(order[i])], keys[int(order[i + 1])]
        if a != b:
            raise HashCollision(f"sample keys {a!r} and {b!r} have the same 8-byte hash; rename one")
    return sorted_hashes


def key_hashes(keys: Sequence[str]) -> np.ndarray:
    """``[N]`` uint64 BLAKE2b-64 of each key; raises :class:`HashCollision` if two distinct
    keys of ``keys`` share a hash (equal keys are fine)."""
    hashes = _hash(keys)
    if len(hashes) > 1:
        _sorted_checked(keys, hashes, np.argsort(hashes, kind="stable"))
    return hashes


def last_of_each(hashes: np.ndarray, order_key: np.ndarray | None = None) -> np.ndarray:
    """Indices that keep one row per hash, sorted by hash: the row with the largest
    ``order_key`` (default: the last row), ties to the later row."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    position = np.arange(len(hashes))
    order_key = position if order_key is None else np.asarray(order_key)
    order = np.lexsort((position, order_key, hashes))  # by hash, then order_key, then position
    sorted_hashes = hashes[order]
    last = np.ones(len(order), bool)
    last[:-1] = sorted_hashes[1:] != sorted_hashes[:-1]
    return order[last]


def find(sorted_hashes: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Row of each of ``hashes`` in ``sorted_hashes`` (sorted, unique), -1 where absent."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    if not len(sorted_hashes):
        return np.full(len(hashes), -1, np.int64)
    pos = np.minimum(np.searchsorted(sorted_hashes, hashes), len(sorted_hashes) - 1)
    return np.where(sorted_hashes[pos] == hashes, pos, -1).astype(np.int64)


class PseudoLabelTable:
    """Sorted unique uint64 key hashes and an int32 value per hash."""

    def __init__(self, hashes: np.ndarray | None = None, values: np.ndarray | None = None) -> None:
        self.hashes = np.zeros(0, np.uint64) if hashes is None else np.asarray(hashes, dtype=np.uint64)
        self.values = np.zeros(0, np.int32) if values is None else np.asarray(values, dtype=np.int32)
        if len(self.hashes) != len(self.values):
            raise ValueError(f"{len(self.hashes)} hashes, {len(self.values)} values")
        if len(self.hashes) > 1 and not (self.hashes[1:] > self.hashes[:-1]).all():
            raise ValueError("hashes must be sorted and unique (use from_hashes)")

    @classmethod
    def from_hashes(cls, hashes: np.ndarray, values: np.ndarray) -> PseudoLabelTable:
        """From rows in any order; a hash given twice keeps its last value."""
        keep = last_of_each(hashes)
        return cls(np.asarray(hashes, np.uint64)[keep], np.asarray(values)[keep])

    @classmethod
    def from_keys(cls, keys: Sequence[str], values: np.ndarray) -> PseudoLabelTable:
        """From keys in any order (a key given twice keeps its last value); one sort serves
        the collision check and the table."""
        hashes = _hash(keys)
        order = np.argsort(hashes, kind="stable")  # equal keys stay in input order: the last wins
        sorted_hashes = _sorted_checked(keys, hashes, order)
        del hashes
        last = np.ones(len(order), bool)
        last[:-1] = sorted_hashes[1:] != sorted_hashes[:-1]
        return cls(sorted_hashes[last], np.asarray(values)[order[last]])

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.values.nbytes)

    def positions(self, hashes: np.ndarray) -> np.ndarray:
        """Row of each hash in the table, -1 where absent."""
        return find(self.hashes, hashes)

    def lookup_hashes(self, hashes: np.ndarray) -> np.ndarray:
        """``[N]`` int64 value of each hash, IGNORE where absent."""
        pos = self.positions(hashes)
        return np.where(pos >= 0, self.values[np.maximum(pos, 0)] if len(self.values) else IGNORE,
                        IGNORE).astype(np.int64)

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        """``[N]`` int64 value of each key, IGNORE for keys the table does not hold."""
        return self.lookup_hashes(key_hashes(keys))

    # --- checkpoints: int64 tensors (torch.load(weights_only=True) has no uint64 need) ---------
    def state(self) -> dict[str, torch.Tensor]:
        return {"hashes": torch.from_numpy(self.hashes.view(np.int64).copy()),
                "values": torch.from_numpy(self.values.copy())}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PseudoLabelTable:
        return cls(hashes_from_tensor(state["hashes"]), state["values"].cpu().numpy())


def hashes_from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """uint64 hashes saved as an int64 tensor (see :meth:`PseudoLabelTable.state`)."""
    return tensor.cpu().numpy().astype(np.int64, copy=False).view(np.uint64)


def hashes_to_tensor(hashes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(hashes, dtype=np.uint64).view(np.int64).copy())
