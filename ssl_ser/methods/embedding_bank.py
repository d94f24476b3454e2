"""A key-addressed bank of training embeddings, sharded over ranks (online deep clustering,
Zhan et al. 2020), so that DeepEmoCluster can re-cluster without embedding every utterance.

Each entry is a sample's most recent embedding (float16 or float32 row of one ``[N, D]``
array), its 8-byte key hash (:mod:`ssl_ser.methods.pseudo_table`; the hashes are the sorted
index), a *stamp* (the optimiser step it was recorded in: larger is fresher), the epoch it was
recorded in (its age is the current epoch minus that) and its known and hidden emotion class
(for the clustering report only).

Sharding: the entry of a key lives on rank ``hash % world_size`` (its owner). Records made on
any rank are sent to their owner by :func:`exchange` before they are merged, so every key is
held once over all ranks and the freshest record wins wherever it was made (equal stamps, i.e.
the same key in the same step on two ranks: the higher rank's record). Because ownership
depends on the key only, a resumed run (with any number of ranks) rebuilds the same shards
from a checkpoint of the whole bank (:meth:`EmbeddingBank.gather`).

DeepEmoCluster logs, at each re-clustering from the bank: ``pre_bank_entries`` and
``pre_bank_used`` (after ``max_age``), ``pre_bank_age_mean``/``_max`` (epochs), ``pre_bank_mib``
(all ranks), ``pre_bank_time_s`` (merge); warm-ups log ``pre_bank_warmup``. With
``check_full``: ``pre_nmi_full`` (against a full pass clustered with the same seed, points and
rounding), ``pre_nmi_full_fresh`` over the keys recorded in the last epoch (``pre_bank_fresh``,
their share), ``pre_full_nmi_hidden``/``pre_full_purity_hidden`` and ``pre_check_time_s``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from ssl_ser.config import config
from ssl_ser.distributed import Collective
from ssl_ser.labels import IGNORE
from ssl_ser.methods.pseudo_table import find, hashes_from_tensor, hashes_to_tensor


@config
class BankConfig:
    dtype: Literal["float16", "float32"] = "float16"
    """Storage of the embeddings (float16 halves the memory; k-means runs in float32)."""
    warmup_epochs: Annotated[int, Field(ge=1)] = 1
    """Re-clusterings before this epoch embed everything (the full pass, which also refills the
    bank); from it on, the bank. 1: only the first; 2 also re-embeds after one epoch of
    training, so keys not drawn since hold a trained model's embedding, not an untrained one's."""
    max_age: Annotated[int, Field(ge=0)] | None = None
    """Entries recorded more than this many epochs before a re-clustering are left out of it
    (their keys get no pseudo-label until they are drawn again); null: every entry is used."""
    check_full: bool = False
    """Diagnostic: at each re-clustering also embed everything (the full pass) and cluster it
    with the same seed, logging the agreement (``nmi_full``) and its time apart
    (``check_time_s``); training uses the bank's pseudo-labels either way."""


@dataclass
class Records:
    """Rows of embeddings with their key hashes, stamps, epochs and labels."""

    hashes: np.ndarray
    """[n] uint64"""
    vectors: np.ndarray
    """[n, D] float16/float32"""
    stamps: np.ndarray
    """[n] int64: the optimiser step the row was recorded in (larger: fresher)"""
    epochs: np.ndarray
    """[n] int32: the epoch it was recorded in"""
    known: np.ndarray
    """[n] int32 emotion class of labelled samples, IGNORE elsewhere"""
    hidden: np.ndarray
    """[n] int32 hidden emotion class (analysis only), IGNORE elsewhere"""

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def empty(cls, dim: int = 0, dtype: Any = np.float16) -> Records:
        return cls(np.zeros(0, np.uint64), np.zeros((0, dim), dtype), np.zeros(0, np.int64),
                   np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))

    def take(self, index: np.ndarray) -> Records:
        return Records(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    @classmethod
    def concat(cls, parts: list[Records]) -> Records:
        parts = [p for p in parts if len(p)] or parts[:1]
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in dataclasses.fields(cls)})


def freshest(records: Records) -> Records:
    """One row per hash, sorted by hash: the largest stamp (ties: the later row); the known
    and hidden labels of a key are taken from any of its rows that has one."""
    if not len(records):
        return records
    position = np.arange(len(records))
    order = np.lexsort((position, records.stamps, records.hashes))
    hashes = records.hashes[order]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
    last = np.r_[starts[1:] - 1, len(order) - 1]
    out = records.take(order[last])
    out.known = np.maximum.reduceat(records.known[order], starts).astype(np.int32)  # IGNORE = -1 < classes
    out.hidden = np.maximum.reduceat(records.hidden[order], starts).astype(np.int32)
    return out


def owners(hashes: np.ndarray, world_size: int) -> np.ndarray:
    """The rank that holds each key's entry."""
    return (np.asarray(hashes, np.uint64) % np.uint64(max(world_size, 1))).astype(np.int64)


def exchange(records: Records, comm: Collective) -> Records:
    """Every rank's records, each delivered to the rank that owns its key (one gather per
    destination: every row travels once, no rank receives rows it does not own)."""
    if comm.world_size == 1:
        return records
    owner = owners(records.hashes, comm.world_size)
    mine = Records.empty(records.vectors.shape[1] if records.vectors.ndim == 2 else 0, records.vectors.dtype)
    for dst in range(comm.world_size):
        parts = comm.gather(records.take(np.flatnonzero(owner == dst)), dst=dst)
        if parts is not None:
            mine = Records.concat(parts)
    return mine


class EmbeddingBank:
    """This rank's shard of the bank: the entries it owns, sorted by hash, plus the records
    made since the last :meth:`merge` (kept apart so a training step only appends)."""

    def __init__(self, dtype: str = "float16") -> None:
        self.dtype = np.dtype(dtype)
        self.entries: Records | None = None
        self.pending: list[Records] = []

    def __len__(self) -> int:
        return 0 if self.entries is None else len(self.entries)

    @property
    def nbytes(self) -> int:
        if self.entries is None:
            return 0
        return sum(getattr(self.entries, f.name).nbytes for f in dataclasses.fields(Records))

    def record(self, hashes: np.ndarray, vectors: np.ndarray | torch.Tensor, *, stamp: int, epoch: int,
               known: np.ndarray | None = None, hidden: np.ndarray | None = None) -> None:
        """Remember these embeddings (e.g. one training batch's); merged later."""
        if isinstance(vectors, torch.Tensor):
            vectors = vectors.detach().float().cpu().numpy()
        n = len(hashes)
        none = np.full(n, IGNORE, np.int32)
        self.pending.append(Records(
            hashes=np.asarray(hashes, np.uint64), vectors=np.asarray(vectors).astype(self.dtype),
            stamps=np.full(n, stamp, np.int64), epochs=np.full(n, epoch, np.int32),
            known=none if known is None else np.asarray(known, np.int32),
            hidden=none if hidden is None else np.asarray(hidden, np.int32)))

    def take_pending(self) -> Records:
        dim = self.entries.vectors.shape[1] if self.entries is not None else 0
        out = Records.concat(self.pending) if self.pending else Records.empty(dim, self.dtype)
        self.pending = []
        return out

    def merge(self, records: Records) -> None:
        """Add records this rank owns; a key keeps its freshest row."""
        parts = [p for p in (self.entries, records) if p is not None and len(p)]
        if parts:
            self.entries = freshest(Records.concat(parts))

    def sync(self, comm: Collective) -> None:
        """Collective: every rank's pending records to their owners, merged there."""
        self.merge(exchange(self.take_pending(), comm))

    def ages(self, epoch: int) -> np.ndarray:
        """Epochs since each entry was recorded, at the start of ``epoch``."""
        return np.zeros(0, np.int64) if self.entries is None else epoch - self.entries.epochs.astype(np.int64)

    def positions(self, hashes: np.ndarray) -> np.ndarray:
        """Entry row of each hash, -1 for keys this shard does not hold."""
        return find(self.entries.hashes if self.entries is not None else np.zeros(0, np.uint64), hashes)

    def usable(self, epoch: int, max_age: int | None) -> Records:
        """The entries a re-clustering at ``epoch`` uses (sorted by hash)."""
        entries = self.entries if self.entries is not None else Records.empty(0, self.dtype)
        if max_age is None:
            return entries
        return entries.take(np.flatnonzero(self.ages(epoch) <= max_age))

    # --- checkpoints: the whole bank on rank 0; every rank keeps its own keys on load -----------
    def gather(self, comm: Collective) -> Records | None:
        """Collective: every rank's (merged) shard on rank 0, None elsewhere."""
        mine = self.entries if self.entries is not None else Records.empty(0, self.dtype)
        parts = comm.gather(mine, dst=0)
        return None if parts is None else freshest(Records.concat(parts))

    @staticmethod
    def state(entries: Records) -> dict[str, Any]:
        return {"hashes": hashes_to_tensor(entries.hashes), "vectors": torch.from_numpy(entries.vectors.copy()),
                "stamps": torch.from_numpy(entries.stamps), "epochs": torch.from_numpy(entries.epochs),
                "known": torch.from_numpy(entries.known), "hidden": torch.from_numpy(entries.hidden)}

    def load_state(self, state: dict[str, Any], rank: int, world_size: int) -> None:
        entries = Records(hashes=hashes_from_tensor(state["hashes"]),
                          vectors=state["vectors"].cpu().numpy().astype(self.dtype),
                          stamps=state["stamps"].cpu().numpy().astype(np.int64),
                          epochs=state["epochs"].cpu().numpy().astype(np.int32),
                          known=state["known"].cpu().numpy().astype(np.int32),
                          hidden=state["hidden"].cpu().numpy().astype(np.int32))
        self.entries = freshest(entries.take(np.flatnonzero(owners(entries.hashes, world_size) == rank)))
        self.pending = []
