"""One epoch's pseudo-labels: k-means of every rank's embeddings, as a table keyed by sample
key hash that is identical on every rank (DeepCluster's ``clustering.py``: it knows nothing
about training). Used by :mod:`ssl_ser.methods.deepemocluster` for both of its embedding
sources (a full pass, or the embedding bank).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssl_ser import kmeans
from ssl_ser.config import ConfigError
from ssl_ser.distributed import Collective, default_collective
from ssl_ser.labels import IGNORE
from ssl_ser.methods.pseudo_table import PseudoLabelTable, key_hashes
from ssl_ser.metrics import nmi, purity


@dataclass
class PseudoLabels:
    """One epoch's clustering, identical on every rank. Points are in rank order (gathered:
    as concatenated on rank 0), one per clustered embedding."""

    hashes: np.ndarray
    """[N] uint64 key hash of each point (:func:`ssl_ser.methods.pseudo_table.key_hashes`)."""
    assignment: np.ndarray
    """[N] int64 cluster of point i."""
    centroids: np.ndarray
    sizes: np.ndarray
    """[K] int64 points per cluster (0: empty after the final assignment)."""
    labels: np.ndarray
    """[N] emotion class of labelled samples, IGNORE elsewhere (for the NMI)."""
    hidden: np.ndarray | None = None
    """[N] hidden emotion class of unlabelled samples that keep one for analysis
    (:data:`ssl_ser.labels.HIDDEN`), IGNORE elsewhere; None when restored from a checkpoint."""
    stats: dict[str, float] = dataclasses.field(default_factory=dict)
    device_reason: str = ""

    def table(self) -> PseudoLabelTable:
        """Key hash -> cluster (a key clustered twice keeps its last point's cluster)."""
        return PseudoLabelTable.from_hashes(self.hashes, self.assignment)

    @property
    def empty(self) -> list[int]:
        return np.flatnonzero(self.sizes == 0).tolist()


def as_hashes(keys: Sequence[str] | np.ndarray) -> np.ndarray:
    if isinstance(keys, np.ndarray) and keys.dtype == np.uint64:
        return keys
    return key_hashes(list(keys))


def cluster(keys: Sequence[str] | np.ndarray, embeddings: np.ndarray, labels: np.ndarray, k: int, *, seed: int,
            cfg: kmeans.KMeansConfig, mode: str = "gathered",
            comm: Collective | None = None, hidden: np.ndarray | None = None) -> PseudoLabels:
    """Pseudo-labels of every rank's samples (each rank passes its own share: keys or their
    uint64 hashes), on every rank.

    gathered: rank 0 receives everything, clusters it, and broadcasts the table (an error
    there is broadcast too, so no rank is left waiting). distributed: distributed Lloyd, then
    only key hashes and cluster indices are exchanged.
    """
    comm = comm or default_collective()
    hashes = as_hashes(keys)
    labels = np.asarray(labels, dtype=np.int32)
    hidden = np.full(len(labels), IGNORE, np.int32) if hidden is None else np.asarray(hidden, dtype=np.int32)
    if mode == "distributed":
        result = kmeans.fit_distributed(embeddings, k, seed=seed, cfg=cfg, comm=comm)
        parts = comm.all_gather((hashes, result.assignment.astype(np.int32), labels, hidden))
        return PseudoLabels(hashes=np.concatenate([p[0] for p in parts]).astype(np.uint64),
                            assignment=np.concatenate([p[1] for p in parts]).astype(np.int64),
                            centroids=result.centroids, sizes=result.sizes,
                            labels=np.concatenate([p[2] for p in parts]).astype(np.int64),
                            hidden=np.concatenate([p[3] for p in parts]).astype(np.int64),
                            stats=result.summary(), device_reason=result.device_reason)
    if mode != "gathered":
        raise ConfigError(f"method.clustering must be gathered or distributed, not {mode!r}")
    gathered = comm.gather((hashes, np.asarray(embeddings, dtype=np.float32), labels, hidden))
    payload: Any = None
    failure: BaseException | None = None
    if gathered is not None:  # rank 0
        parts = gathered
        all_hashes = np.concatenate([p[0] for p in parts]).astype(np.uint64)
        all_labels = np.concatenate([p[2] for p in parts]).astype(np.int64)
        all_hidden = np.concatenate([p[3] for p in parts]).astype(np.int64)
        try:
            x = np.concatenate([p[1] for p in parts if len(p[1])] or [np.zeros((0, 1), np.float32)])
            result = kmeans.fit(x, k, seed=seed, cfg=cfg)
            payload = PseudoLabels(hashes=all_hashes, assignment=result.assignment, centroids=result.centroids,
                                   sizes=result.sizes, labels=all_labels, hidden=all_hidden,
                                   stats=result.summary(), device_reason=result.device_reason)
        except Exception as err:  # any failure (bad input, FAISS out of memory...) must reach
            failure = err           # the other ranks, or they wait in broadcast until timeout
            payload = f"{type(err).__name__}: {err}"
    payload = comm.broadcast(payload)
    if isinstance(payload, str):
        raise kmeans.KMeansError(f"k-means on rank 0 failed: {payload}") from failure
    return payload


def agreement(previous: PseudoLabelTable, current: PseudoLabels) -> float | None:
    """NMI between the previous table and the current assignment of the keys both clustered."""
    before = previous.lookup_hashes(current.hashes)
    both = before != IGNORE
    if both.sum() < 2:
        return None
    return nmi(before[both], current.assignment[both])


def hidden_agreement(pseudo: PseudoLabels) -> dict[str, float]:
    """How the clusters of the unlabelled samples agree with their hidden labels (NMI, purity),
    where the data keeps them for analysis; empty otherwise."""
    if pseudo.hidden is None:
        return {}
    has = pseudo.hidden != IGNORE
    if has.sum() < 2:
        return {}
    return {"nmi_hidden": nmi(pseudo.assignment[has], pseudo.hidden[has]),
            "purity_hidden": purity(pseudo.assignment[has], pseudo.hidden[has])}


def nearest_centroid_head(hashes: np.ndarray, vectors: np.ndarray, table: PseudoLabelTable, k: int,
                          comm: Collective) -> tuple[np.ndarray, np.ndarray]:
    """A linear layer ``[K, D]`` weight and ``[K]`` bias whose logits are
    ``-|x - mu_k|^2 / (2 s)`` up to a per-row constant: the nearest-centroid classifier of the
    clustering, as softmax logits.

    ``mu_k`` is the mean of cluster k's vectors (this rank's points, summed over ranks), in the
    space the vectors live in, so the head fits the model's embedding even when k-means ran on
    PCA-whitened copies; ``s`` is the mean squared distance of a point to its centroid, which
    makes the logits scale-free. An empty cluster gets a zero weight and a bias below every
    other, so it is never the argmax.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    assignment = table.lookup_hashes(hashes)
    known = assignment != IGNORE
    x, a = vectors[known], assignment[known].astype(np.int64)
    dim = vectors.shape[1]
    sums = np.zeros((k, dim))
    np.add.at(sums, a, x)
    counts = np.bincount(a, minlength=k).astype(np.float64)
    total = comm.all_reduce(np.concatenate([sums.ravel(), counts]))
    sums, counts = total[: k * dim].reshape(k, dim), total[k * dim:]
    mu = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    spread = comm.all_reduce(np.array([((x - mu[a]) ** 2).sum(), float(len(a))]))
    scale = 1.0 / max(spread[0] / max(spread[1], 1.0), 1e-12)
    weight = scale * mu
    bias = -0.5 * scale * (mu**2).sum(1)
    empty = counts == 0
    if empty.any():
        bias[empty] = bias[~empty].min() - 10.0 if (~empty).any() else 0.0
    return weight.astype(np.float32), bias.astype(np.float32)
