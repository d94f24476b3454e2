"""FAISS k-means for pseudo-labels: gathered (one process clusters everything) or distributed.

Gathered mode, :func:`fit`, runs FAISS's own ``Clustering`` (what ``faiss.Kmeans`` wraps) on
all embeddings, with ``max_points_per_centroid`` raised so FAISS never silently trains on a
subsample (its default keeps 256 points per centroid). Distributed mode,
:func:`fit_distributed`, is the same Lloyd algorithm spread over ranks: every rank assigns
*its own* embeddings to the current centroids with a FAISS index, and per-centroid sums and
counts are all-reduced each iteration, so no rank ever holds all embeddings. It reproduces
FAISS step by step (initial centroids from ``faiss.rand_perm(n, seed + 1)`` over the points in
rank order, the same empty-cluster splitting with FAISS's Mersenne-Twister draws), so on the
same data and seed both modes give the same centroids and assignments up to float rounding
(FAISS sums centroids in float32, we in float64).

Optional preprocessing (DeepCluster): PCA to ``pca_dim`` dimensions with whitening
(eigenvalue power -1/2, as ``faiss.PCAMatrix(d, 256, eigen_power=-0.5)``) and L2
normalisation. The moments are computed here in float64 (and all-reduced in distributed
mode) rather than by ``faiss.PCAMatrix``, which subsamples to 1000 points per input
dimension, accumulates the covariance in float32 and needs every point in one process.

FAISS runs on the GPU when the process has one and the FAISS build supports it (faiss-gpu),
else on the CPU (faiss-cpu); :func:`select_device` makes and explains the choice. On the GPU,
PyTorch's cached blocks are released first and FAISS's scratch memory is sized explicitly,
because both allocators share the device.

Why one module of ~480 lines: one algorithm in two modes (FAISS on one rank, Lloyd's
iterations over all ranks) that must give the same result, with their shared preprocessing,
empty-cluster splitting and device choice; collectives live in :mod:`ssl_ser.distributed`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from ssl_ser.config import config
from ssl_ser.distributed import Collective, LocalCollective, default_collective
from ssl_ser.errors import SslSerError

#: FAISS's relative perturbation of a split centroid ("a bit above machine epsilon for float16").
_SPLIT_EPS = 1 / 1024.0
#: Principal directions with an eigenvalue below this fraction of the largest are dropped
#: (dead ReLU units, duplicated points): whitening would blow their noise up without bound.
_PCA_RANK_TOL = 1e-6
_CHUNK = 65536


class KMeansError(SslSerError):
    """Embeddings that cannot be clustered (too few, non-finite, mismatched) or an unusable device."""


@config
class KMeansConfig:
    niter: Annotated[int, Field(ge=0)] = 20
    """Lloyd iterations (FAISS default 25; DeepCluster 20)."""
    pca_dim: Annotated[int, Field(ge=1)] | None = None
    """PCA to this many dimensions before clustering (DeepCluster: 256); null clusters the raw
    embeddings (DeepEmoCluster)."""
    whiten: bool = True
    """With ``pca_dim``: scale each principal direction to unit variance (eigen power -1/2)."""
    l2_normalize: bool = False
    """L2-normalise each (preprocessed) embedding (DeepCluster: true)."""
    device: Literal["auto", "cpu", "gpu"] = "auto"
    """auto: FAISS on the GPU when there is one and faiss-gpu is installed, else the CPU."""
    gpu_temp_memory_mb: Annotated[int, Field(ge=0)] | None = None
    """FAISS GPU scratch memory; null: a quarter of the free memory, at most 1536 MiB."""


# --- device choice -------------------------------------------------------------------------

def faiss_gpu_count() -> int:
    """GPUs FAISS can use (0 with faiss-cpu)."""
    # deferred: faiss loads its SWIG library on first use
    import faiss

    getter = getattr(faiss, "get_num_gpus", None)
    try:
        return int(getter()) if getter is not None and hasattr(faiss, "StandardGpuResources") else 0
    except RuntimeError:
        return 0


def select_device(requested: str = "auto") -> tuple[str, str]:
    """``("gpu" | "cpu", why)``: the GPU only when PyTorch sees CUDA *and* FAISS has GPU support."""
    if requested not in ("auto", "cpu", "gpu"):
        raise KMeansError(f"kmeans.device must be auto, cpu or gpu, not {requested!r}")
    if requested == "cpu":
        return "cpu", "faiss on the CPU (kmeans.device: cpu)"
    cuda = torch.cuda.is_available()
    gpus = faiss_gpu_count() if cuda else 0
    if cuda and gpus > 0:
        return "gpu", f"faiss on GPU {torch.cuda.current_device()} ({gpus} visible to faiss)"
    why = "no CUDA device" if not cuda else "this faiss build has no GPU support (faiss-cpu)"
    if requested == "gpu":
        raise KMeansError(f"kmeans.device: gpu, but {why}; install faiss-gpu on a GPU worker or use auto")
    return "cpu", f"faiss on the CPU: {why}"


def gpu_temp_memory_bytes(requested_mb: int | None) -> int:
    """FAISS's GPU scratch size: as configured, else a quarter of the free memory (<= 1536 MiB)."""
    if requested_mb is not None:
        return int(requested_mb) * 2**20
    free, _total = torch.cuda.mem_get_info()
    return int(min(1536 * 2**20, free // 4))


IndexFactory = Callable[[int], Any]


@contextlib.contextmanager
def flat_index_factory(device: str, temp_memory_mb: int | None = None) -> Iterator[IndexFactory]:
    """``make(d)`` -> an exact L2 index on ``device`` (GPU indexes share one resource object)."""
    # deferred: faiss loads its SWIG library on first use
    import faiss

    if device != "gpu":
        yield faiss.IndexFlatL2
        return
    torch.cuda.empty_cache()  # PyTorch's cached blocks are invisible to FAISS's allocator
    resources = faiss.StandardGpuResources()
    resources.setTempMemory(gpu_temp_memory_bytes(temp_memory_mb))
    gpu = torch.cuda.current_device()

    def make(d: int) -> Any:
        cfg = faiss.GpuIndexFlatConfig()
        cfg.device = gpu
        return faiss.GpuIndexFlatL2(resources, d, cfg)

    yield make  # the GPU resources (and their scratch memory) go with the closure


@contextlib.contextmanager
def _indexes(cfg: KMeansConfig) -> Iterator[tuple[IndexFactory, str, str]]:
    """The index factory of the selected device; a GPU that cannot be set up falls back to
    the CPU (unless the GPU was required), with the reason."""
    # deferred: faiss loads its SWIG library on first use
    import faiss

    device, why = select_device(cfg.device)
    with contextlib.ExitStack() as stack:
        factory: IndexFactory = faiss.IndexFlatL2
        if device == "gpu":
            try:
                factory = stack.enter_context(flat_index_factory("gpu", cfg.gpu_temp_memory_mb))
            except (RuntimeError, AttributeError, MemoryError) as err:
                if cfg.device == "gpu":
                    raise KMeansError(f"kmeans.device: gpu, but FAISS's GPU setup failed: {err}") from None
                device, why = "cpu", f"faiss on the CPU: GPU setup failed ({err})"
        yield factory, device, why


# --- preprocessing -------------------------------------------------------------------------

@dataclass
class Preprocessing:
    """PCA (+ whitening) and/or L2 normalisation, fitted on the clustered embeddings."""

    mean: np.ndarray | None = None
    """[D_in] float64, with ``projection``."""
    projection: np.ndarray | None = None
    """[D_in, D_out] float64: principal directions (scaled by eigenvalue^-1/2 when whitening)."""
    l2_normalize: bool = False

    @property
    def identity(self) -> bool:
        return self.projection is None and not self.l2_normalize

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.projection is not None:
            assert self.mean is not None
            out = np.empty((len(x), self.projection.shape[1]), np.float32)
            proj = self.projection.astype(np.float32)
            mean = self.mean.astype(np.float32)
            for i in range(0, len(x), _CHUNK):
                out[i:i + _CHUNK] = (x[i:i + _CHUNK] - mean) @ proj
            x = out
        if self.l2_normalize:
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norms > 0, norms, 1.0).astype(np.float32)
        return np.ascontiguousarray(x, dtype=np.float32)


def fit_preprocessing(x: np.ndarray, cfg: KMeansConfig, comm: Collective | None = None) -> Preprocessing:
    """PCA from moments summed over all ranks (each rank passes its own rows)."""
    comm = comm or LocalCollective()
    if cfg.pca_dim is None:
        return Preprocessing(l2_normalize=cfg.l2_normalize)
    x = np.ascontiguousarray(x, dtype=np.float32)
    first = comm.all_reduce(np.concatenate([[float(len(x))], x.sum(0, dtype=np.float64)]))
    n = int(round(first[0]))
    mean = first[1:] / max(n, 1)
    cov = comm.all_reduce(_scatter(x, mean, select_device(cfg.device)[0])) / max(n, 1)
    projection = None
    if comm.rank == 0:  # one decomposition, broadcast: every rank applies the very same matrix
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        top = values[0] if len(values) else 0.0
        keep = min(cfg.pca_dim, int(np.sum(values > _PCA_RANK_TOL * top))) if top > 0 else 0
        if keep == 0:
            keep = 1  # constant embeddings: one (meaningless) direction, clustering still runs
        values, vectors = values[:keep], vectors[:, :keep]
        signs = np.sign(vectors[np.abs(vectors).argmax(0), np.arange(keep)])
        vectors = vectors * np.where(signs == 0, 1.0, signs)  # a sign convention: reproducible
        if cfg.whiten:
            vectors = vectors / np.sqrt(np.maximum(values, _PCA_RANK_TOL * max(top, 1e-30)))
        projection = vectors
    projection = comm.broadcast(projection)
    return Preprocessing(mean=mean, projection=projection, l2_normalize=cfg.l2_normalize)


def _scatter(x: np.ndarray, mean: np.ndarray, device: str) -> np.ndarray:
    """``sum (x - mean)(x - mean)^T`` in float64 (centred first: no cancellation), on the GPU
    when FAISS uses one (D = 4096 and a million points is ~10^13 multiply-adds)."""
    where = torch.device("cuda", torch.cuda.current_device()) if device == "gpu" else torch.device("cpu")
    centre = torch.from_numpy(mean).to(where)
    total = torch.zeros(len(mean), len(mean), dtype=torch.float64, device=where)
    for i in range(0, len(x), _CHUNK):
        chunk = torch.from_numpy(x[i:i + _CHUNK]).to(where).double() - centre
        total += chunk.T @ chunk
    return total.cpu().numpy()


# --- results -------------------------------------------------------------------------------

@dataclass
class KMeansResult:
    centroids: np.ndarray
    """[K, D'] float32, in the clustered (preprocessed) space."""
    assignment: np.ndarray
    """[n] int64 nearest final centroid of each input row (distributed: this rank's rows)."""
    distances: np.ndarray
    """[n] float32 squared L2 distance to it."""
    objective: float
    """Sum of squared distances of the final assignment, over all points."""
    sizes: np.ndarray
    """[K] int64 points per cluster over all points."""
    objectives: list[float] = field(default_factory=list)
    """Per iteration run, before its update (FAISS's in gathered mode, which runs every
    iteration; distributed mode stops at a fixed point, where more would change nothing)."""
    nsplit: int = 0
    """Empty clusters re-seeded by splitting during the iterations."""
    spread: float = 0.0
    """Variance of the clustered points around their mean, relative to their mean square norm:
    0 when every point is the same (nothing to cluster), 1 when their mean is 0."""
    num_points: int = 0
    time_s: float = 0.0
    device: str = "cpu"
    device_reason: str = ""
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def empty(self) -> list[int]:
        """Clusters without any point in the final assignment."""
        return np.flatnonzero(self.sizes == 0).tolist()

    def summary(self) -> dict[str, float]:
        """Numbers for an epoch's log line."""
        nonzero = self.sizes[self.sizes > 0]
        return {"kmeans_objective": self.objective, "kmeans_time_s": self.time_s,
                "kmeans_nsplit": float(self.nsplit), "kmeans_points": float(self.num_points),
                "kmeans_spread": self.spread,
                "kmeans_dim": float(self.centroids.shape[1]), "kmeans_gpu": float(self.device == "gpu"),
                "cluster_min": float(self.sizes.min()) if self.sizes.size else 0.0,
                "cluster_median": float(np.median(self.sizes)) if self.sizes.size else 0.0,
                "cluster_max": float(self.sizes.max()) if self.sizes.size else 0.0,
                "cluster_empty": float(len(self.empty)),
                "cluster_nonempty_min": float(nonzero.min()) if nonzero.size else 0.0}


# --- k-means -------------------------------------------------------------------------------

def _check(x: np.ndarray, k: int, what: str = "embeddings") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise KMeansError(f"{what} must be [points, dims], got shape {list(x.shape)}")
    if k < 1:
        raise KMeansError(f"k must be at least 1, got {k}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _search(index: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    dist, assign = index.search(x, 1)
    return dist[:, 0].astype(np.float32), assign[:, 0].astype(np.int64)


def fit(x: np.ndarray, k: int, *, seed: int = 1234, cfg: KMeansConfig | None = None) -> KMeansResult:
    """K-means of all rows of ``x`` in this process (FAISS ``Clustering``, no subsampling)."""
    # deferred: faiss loads its SWIG library on first use
    import faiss

    cfg = cfg or KMeansConfig()
    start = time.perf_counter()
    x = _check(x, k)
    if not np.isfinite(x).all():
        raise KMeansError(f"embeddings contain NaN or Inf ({int((~np.isfinite(x)).any(1).sum())} rows)")
    if len(x) < k:
        raise KMeansError(f"k-means needs at least as many points as clusters: {len(x)} points, k={k}")
    prep = fit_preprocessing(x, cfg)
    x = prep.apply(x) if not prep.identity else x
    d = x.shape[1]
    cp = faiss.ClusteringParameters()
    cp.niter = cfg.niter
    cp.seed = int(seed)
    cp.max_points_per_centroid = max(256, math.ceil(len(x) / k) + 1)  # never subsample
    cp.min_points_per_centroid = 1  # we report sizes ourselves; no stderr warning
    if hasattr(cp, "early_stop_threshold"):
        # FAISS >= 1.12 stops when its float32 objective repeats; a float32 sum over all points
        # cannot be reproduced across ranks, so run every iteration (see fit_distributed)
        cp.early_stop_threshold = -1.0
    with _indexes(cfg) as (make_index, device, why):
        clustering = faiss.Clustering(d, k, cp)
        index = make_index(d)
        clustering.train(x, index)  # leaves the final centroids in the index
        centroids = faiss.vector_float_to_array(clustering.centroids).reshape(k, d).copy()
        vector: Any = clustering.iteration_stats  # faiss' stubs say list; it is a SWIG vector (.at, .size)
        stats = [vector.at(i) for i in range(vector.size())]
        dist, assign = _search(index, x)
        del index
    sizes = np.bincount(assign, minlength=k).astype(np.int64)
    return KMeansResult(centroids=centroids, assignment=assign, distances=dist,
                        objective=float(dist.sum(dtype=np.float64)), sizes=sizes, spread=relative_spread(x),
                        objectives=[float(s.obj) for s in stats] if cfg.niter else [],
                        nsplit=int(sum(s.nsplit for s in stats)), num_points=len(x),
                        time_s=time.perf_counter() - start, device=device, device_reason=why,
                        preprocessing=prep)


def fit_distributed(x: np.ndarray, k: int, *, seed: int = 1234, cfg: KMeansConfig | None = None,
                    comm: Collective | None = None) -> KMeansResult:
    """Lloyd's k-means over every rank's rows (``x``: this rank's), FAISS's algorithm step by step.

    Collective: every rank must call it (errors are agreed on first, so all ranks raise
    together instead of leaving the others waiting). Points are numbered in rank order, so
    the result equals :func:`fit` on the rank-ordered concatenation.
    """
    # deferred: faiss loads its SWIG library on first use
    import faiss

    cfg = cfg or KMeansConfig()
    comm = comm or default_collective()
    start = time.perf_counter()
    x = _check(x, k)
    shapes = comm.all_gather((len(x), x.shape[1] if len(x) else 0, bool(np.isfinite(x).all())))
    counts = [s[0] for s in shapes]
    n, offset = sum(counts), sum(counts[:comm.rank])
    if len({s[1] for s in shapes if s[0]}) > 1:
        raise KMeansError(f"ranks hold embeddings of different sizes: {[s[1] for s in shapes]}")
    if not all(s[2] for s in shapes):
        raise KMeansError(f"embeddings contain NaN or Inf on rank(s) "
                          f"{[r for r, s in enumerate(shapes) if not s[2]]}")
    if n < k:
        raise KMeansError(f"k-means needs at least as many points as clusters: {n} points "
                          f"(per rank {counts}), k={k}")
    x = x.reshape(len(x), max(s[1] for s in shapes if s[0]))  # a rank without rows: [0, D]
    prep = fit_preprocessing(x, cfg, comm)
    x = prep.apply(x) if not prep.identity else x
    d = x.shape[1]
    objectives: list[float] = []
    nsplit = 0
    with _indexes(cfg) as (make_index, device, why):
        def nearest(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            index = make_index(d)
            index.add(centroids)
            return _search(index, x)

        if n == k:  # FAISS's corner case: the points are the centroids
            centroids = _rows_by_global_index(x, np.arange(k), offset, comm)
        else:
            perm = np.empty(n, dtype=np.int32)
            faiss.rand_perm(faiss.swig_ptr(perm), n, int(seed) + 1)  # type: ignore[attr-defined]
            centroids = _rows_by_global_index(x, perm[:k].astype(np.int64), offset, comm)
            previous = centroids
            for _ in range(cfg.niter):
                dist, assign = nearest(centroids)
                sums = np.zeros((k, d + 2), np.float64)  # centroid sums | count | objective
                sums[:, :d] = _centroid_sums(x, assign, k)
                sums[:, d] = np.bincount(assign, minlength=k)
                sums[0, d + 1] = dist.sum(dtype=np.float64)
                sums = comm.all_reduce(sums)
                objectives.append(float(sums[0, d + 1]))
                hassign = sums[:, d].astype(np.float32)
                centroids = np.zeros((k, d), np.float32)  # a new array: `previous` keeps the old
                filled = hassign > 0
                # as FAISS: the sum times the float reciprocal of the count
                centroids[filled] = sums[filled, :d].astype(np.float32) * (np.float32(1) / hassign[filled, None])
                nsplit += split_clusters(centroids, hassign, n)
                if np.array_equal(centroids, previous):
                    break  # a fixed point: more iterations would repeat this one exactly
                previous = centroids
        dist, assign = nearest(centroids)
    local = np.zeros(k + 1, np.float64)
    local[:k] = np.bincount(assign, minlength=k)
    local[k] = dist.sum(dtype=np.float64)
    total = comm.all_reduce(local)
    return KMeansResult(centroids=centroids, assignment=assign, distances=dist, objective=float(total[k]),
                        spread=relative_spread(x, comm),
                        sizes=np.rint(total[:k]).astype(np.int64), objectives=objectives, nsplit=nsplit,
                        num_points=n, time_s=time.perf_counter() - start, device=device,
                        device_reason=why, preprocessing=prep)


def relative_spread(x: np.ndarray, comm: Collective | None = None) -> float:
    """``E|x - mean|^2 / E|x|^2`` over every rank's rows (see :attr:`KMeansResult.spread`)."""
    comm = comm or LocalCollective()
    local = np.zeros(x.shape[1] + 2, np.float64)
    local[0] = len(x)
    for i in range(0, len(x), _CHUNK):  # float64 accumulation without a float64 copy of x
        chunk = x[i:i + _CHUNK]
        local[1] += np.einsum("ij,ij->", chunk, chunk, dtype=np.float64)
        local[2:] += chunk.sum(0, dtype=np.float64)
    sums = comm.all_reduce(local)
    n, square = max(sums[0], 1.0), sums[1]
    mean = sums[2:] / n
    if square <= 0:
        return 0.0
    return float(max(square / n - mean @ mean, 0.0) / (square / n))


def _rows_by_global_index(x: np.ndarray, wanted: np.ndarray, offset: int, comm: Collective) -> np.ndarray:
    """Rows ``wanted`` (global numbering in rank order) on every rank: each contributes its own."""
    out = np.zeros((len(wanted), x.shape[1]), np.float64)
    mine = (wanted >= offset) & (wanted < offset + len(x))
    out[mine] = x[wanted[mine] - offset]
    return comm.all_reduce(out).astype(np.float32)


def _centroid_sums(x: np.ndarray, assign: np.ndarray, k: int) -> np.ndarray:
    sums = torch.zeros(k, x.shape[1], dtype=torch.float64)
    for i in range(0, len(x), _CHUNK):
        sums.index_add_(0, torch.from_numpy(assign[i:i + _CHUNK]),
                        torch.from_numpy(x[i:i + _CHUNK]).double())
    return sums.numpy()


class _FaissRandom:
    """FAISS's ``RandomGenerator``: ``std::mt19937`` seeded with a 32-bit integer (numpy's
    legacy MT19937 seeding is the same ``init_genrand``)."""

    def __init__(self, seed: int) -> None:
        self.bits = np.random.MT19937()
        self.bits._legacy_seeding(seed & 0xFFFFFFFF)
        self.buffer: list[int] = []

    def rand_float(self) -> np.float32:
        if not self.buffer:
            self.buffer = self.bits.random_raw(1024).tolist()[::-1]
        return np.float32(self.buffer.pop()) / np.float32(4294967295.0)


def split_clusters(centroids: np.ndarray, hassign: np.ndarray, n: int) -> int:
    """FAISS's handling of empty clusters, in place: each empty cluster takes a copy of a
    cluster picked with probability (size - 1) / (n - k) (walking the clusters in order with
    FAISS's random draws), both copies are nudged apart by a relative 1/1024, and the size is
    assumed split in half. Returns the number of splits."""
    k, d = centroids.shape
    rng = _FaissRandom(1234)
    splits = 0
    even = (np.arange(d) % 2) == 0
    up = np.where(even, 1 + _SPLIT_EPS, 1 - _SPLIT_EPS)
    down = np.where(even, 1 - _SPLIT_EPS, 1 + _SPLIT_EPS)
    denominator = np.float64(np.float32(n - k))
    for ci in range(k):
        if hassign[ci] != 0:
            continue
        cj = 0
        while True:
            p = np.float32((np.float64(hassign[cj]) - 1.0) / denominator)
            if rng.rand_float() < p:
                break
            cj = (cj + 1) % k
        centroids[ci] = (centroids[cj].astype(np.float64) * up).astype(np.float32)
        centroids[cj] = (centroids[cj].astype(np.float64) * down).astype(np.float32)
        hassign[ci] = np.float32(hassign[cj] / np.float32(2))
        hassign[cj] = np.float32(hassign[cj] - hassign[ci])
        splits += 1
    return splits
