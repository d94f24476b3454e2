"""FAISS k-means: gathered vs distributed (1, 2 and 3 ranks), empty clusters, preprocessing,
GPU/CPU selection (simulated: CI has no GPU)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
import torch

from ssl_ser import kmeans as km
from ssl_ser.distributed import LocalCollective, free_port
from ssl_ser.kmeans import KMeansConfig, KMeansError


def blobs(n: int = 1200, d: int = 8, centres: int = 5, duplicates: int = 0, seed: int = 0,
          dyadic: bool = True) -> np.ndarray:
    """Gaussian blobs (+ ``duplicates`` copies of one centre, which empties clusters). ``dyadic``
    rounds to quarters: every centroid sum is then exact in float32, so FAISS's float32
    accumulation and our float64 one agree to the bit."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((centres, d)) * 6
    x = means[rng.integers(0, centres, n)] + rng.standard_normal((n, d))
    x = np.concatenate([x, np.repeat(means[:1], duplicates, 0)])
    x = x[rng.permutation(len(x))]
    return (np.round(x * 4) / 4 if dyadic else x).astype(np.float32)


def same_clustering(a: km.KMeansResult, b: km.KMeansResult, exact: bool = True) -> None:
    if exact:
        assert np.array_equal(a.centroids, b.centroids)
        assert np.array_equal(a.assignment, b.assignment)
    else:
        np.testing.assert_allclose(a.centroids, b.centroids, atol=1e-4)
        assert np.mean(a.assignment == b.assignment) >= 0.999
    assert np.array_equal(a.sizes, b.sizes) or not exact
    assert a.nsplit == b.nsplit
    assert a.objective == pytest.approx(b.objective, rel=1e-5)


# --- gathered mode -------------------------------------------------------------------------

def test_gathered_fit_recovers_blobs_and_reports_everything() -> None:
    x = blobs(centres=4)
    res = km.fit(x, 4, seed=3, cfg=KMeansConfig(niter=20))
    assert res.centroids.shape == (4, 8) and res.assignment.shape == (len(x),)
    assert res.sizes.sum() == len(x) and res.empty == [] and res.num_points == len(x)
    assert res.device == "cpu" and "CPU" in res.device_reason
    assert len(res.objectives) == 20 and res.objectives[-1] <= res.objectives[0]
    # objective = sum of squared distances of the final assignment
    manual = ((x - res.centroids[res.assignment]) ** 2).sum()
    assert res.objective == pytest.approx(manual, rel=1e-4)
    assert res.distances == pytest.approx(((x - res.centroids[res.assignment]) ** 2).sum(1), rel=1e-4, abs=1e-4)
    s = res.summary()
    assert s["cluster_min"] == res.sizes.min() and s["cluster_empty"] == 0 and s["kmeans_points"] == len(x)


def test_no_silent_subsampling_beyond_256_points_per_centroid() -> None:
    """FAISS would train on 256 x k random points; here every point counts, so the converged
    centroids are exactly the means of their clusters."""
    x = blobs(n=3000, centres=3, dyadic=False)
    res = km.fit(x, 3, seed=0, cfg=KMeansConfig(niter=30))  # 1000 points per centroid
    for c in range(3):
        np.testing.assert_allclose(res.centroids[c], x[res.assignment == c].mean(0), atol=1e-4)
    cp = faiss.ClusteringParameters()
    assert cp.max_points_per_centroid == 256  # what FAISS would have done


def test_seed_changes_the_initialisation_deterministically() -> None:
    x = blobs(centres=8)
    a, b = km.fit(x, 12, seed=1), km.fit(x, 12, seed=1)
    assert np.array_equal(a.centroids, b.centroids)
    assert not np.array_equal(a.centroids, km.fit(x, 12, seed=2).centroids)


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(KMeansError, match="at least as many points as clusters: 3 points, k=5"):
        km.fit(np.zeros((3, 4), np.float32), 5)
    bad = blobs(n=50)
    bad[7, 2] = np.nan
    with pytest.raises(KMeansError, match="NaN or Inf"):
        km.fit(bad, 3)
    with pytest.raises(KMeansError, match=r"\[points, dims\]"):
        km.fit(np.zeros(10, np.float32), 2)
    with pytest.raises(KMeansError, match="NaN or Inf on rank"):
        km.fit_distributed(bad, 3, comm=LocalCollective())


# --- distributed mode == gathered mode -----------------------------------------------------

@pytest.mark.parametrize("k, niter, duplicates", [(6, 10, 0), (40, 1, 800), (40, 12, 800)])
def test_distributed_lloyd_reproduces_faiss_on_one_rank(k: int, niter: int, duplicates: int) -> None:
    """Same init (faiss.rand_perm), same updates, same empty-cluster splits: bit-identical."""
    x = blobs(duplicates=duplicates)
    cfg = KMeansConfig(niter=niter)
    gathered = km.fit(x, k, seed=11, cfg=cfg)
    dist = km.fit_distributed(x, k, seed=11, cfg=cfg, comm=LocalCollective())
    same_clustering(gathered, dist)
    if duplicates:
        assert gathered.nsplit > 0  # the duplicates empty clusters: splitting was exercised
    assert 1 <= len(dist.objectives) <= niter
    # FAISS sums in float32
    assert dist.objectives == pytest.approx(gathered.objectives[:len(dist.objectives)], rel=1e-4)


@pytest.mark.parametrize("n, niter", [(12, 5), (40, 0)])
def test_corner_cases_as_many_points_as_clusters_and_no_iterations(n: int, niter: int) -> None:
    x = blobs(n=n)
    cfg = KMeansConfig(niter=niter)
    gathered = km.fit(x, 12, seed=5, cfg=cfg)
    same_clustering(gathered, km.fit_distributed(x, 12, seed=5, cfg=cfg, comm=LocalCollective()))
    if n == 12:  # FAISS copies the points: each is its own cluster
        assert np.array_equal(gathered.centroids, x) and gathered.objective == 0


def test_generic_float_data_agrees_within_tolerance() -> None:
    x = blobs(dyadic=False, centres=6)
    cfg = KMeansConfig(niter=10, pca_dim=6, l2_normalize=True)
    same_clustering(km.fit(x, 6, seed=4, cfg=cfg),
                    km.fit_distributed(x, 6, seed=4, cfg=cfg, comm=LocalCollective()), exact=False)


def test_empty_clusters_after_the_final_assignment_are_reported() -> None:
    """800 copies of one point: one Lloyd step splits the clusters that lost everything, but
    the final assignment still leaves copies of a centroid without points."""
    x = blobs(duplicates=800)
    res = km.fit(x, 40, seed=11, cfg=KMeansConfig(niter=1))
    assert res.empty and res.sizes[res.empty].sum() == 0 and res.sizes.sum() == len(x)
    assert res.summary()["cluster_empty"] == len(res.empty) > 0
    assert res.summary()["cluster_min"] == 0 and res.summary()["cluster_nonempty_min"] > 0


def test_split_clusters_follows_faiss_random_draws() -> None:
    gen = faiss.RandomGenerator(1234)
    ours = km._FaissRandom(1234)
    for _ in range(2000):  # crosses our 1024-draw buffer
        assert np.float32(gen.rand_float()) == ours.rand_float()


class ThreadGroup:
    """``world`` ranks simulated by threads meeting at a barrier."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.barrier = threading.Barrier(world, timeout=60)
        self.slots: list[Any] = [None] * world

    def member(self, rank: int) -> Any:
        group = self

        class Member:
            def __init__(self) -> None:
                self.rank, self.world_size = rank, group.world

            def _exchange(self, obj: Any) -> list[Any]:
                group.slots[rank] = obj
                group.barrier.wait()
                out = list(group.slots)
                group.barrier.wait()
                return out

            def all_reduce(self, array: np.ndarray) -> np.ndarray:
                return np.sum(self._exchange(np.asarray(array)), axis=0)

            def all_gather(self, obj: Any) -> list[Any]:
                return self._exchange(obj)

            def broadcast(self, obj: Any, src: int = 0) -> Any:
                return self._exchange(obj)[src]

            def gather(self, obj: Any, dst: int = 0) -> list[Any] | None:
                everyone = self._exchange(obj)
                return everyone if rank == dst else None

        return Member()


def run_ranks(parts: list[np.ndarray], k: int, seed: int, cfg: KMeansConfig) -> list[km.KMeansResult]:
    group = ThreadGroup(len(parts))
    results: list[Any] = [None] * len(parts)

    def work(rank: int) -> None:
        try:
            results[rank] = km.fit_distributed(parts[rank], k, seed=seed, cfg=cfg, comm=group.member(rank))
        except BaseException as err:  # noqa: BLE001 - re-raised below
            results[rank] = err
            group.barrier.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(len(parts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


@pytest.mark.parametrize("cuts", [(700,), (0, 1000), (300, 301)])
def test_distributed_over_ranks_equals_gathered(cuts: tuple[int, ...]) -> None:
    """Uneven shares (one rank may have nothing): each rank assigns only its rows, the
    all-reduced sums and counts rebuild exactly the gathered run."""
    x = blobs(duplicates=300)
    cfg = KMeansConfig(niter=8)
    gathered = km.fit(x, 24, seed=2, cfg=cfg)
    parts = np.split(x, list(cuts))
    results = run_ranks(parts, 24, 2, cfg)
    assignment = np.concatenate([r.assignment for r in results])
    for r in results:
        assert np.array_equal(r.centroids, gathered.centroids)
        assert np.array_equal(r.sizes, gathered.sizes) and r.num_points == len(x)
        assert r.objective == pytest.approx(gathered.objective, rel=1e-6)
    assert np.array_equal(assignment, gathered.assignment)
    assert [len(r.assignment) for r in results] == [len(p) for p in parts]


def test_distributed_preprocessing_equals_gathered() -> None:
    x = blobs(d=12, dyadic=False)
    cfg = KMeansConfig(niter=6, pca_dim=5, l2_normalize=True)
    gathered = km.fit(x, 5, seed=9, cfg=cfg)
    results = run_ranks(np.split(x, [500]), 5, 9, cfg)
    for r in results:
        np.testing.assert_allclose(r.preprocessing.projection, gathered.preprocessing.projection, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(r.centroids, gathered.centroids, atol=1e-5)
    assert np.mean(np.concatenate([r.assignment for r in results]) == gathered.assignment) >= 0.999


#: One rank of a real gloo process group. Run as a script: with pytest's importlib mode the
#: test module itself cannot be imported by name in a spawned child.
GLOO_RANK = """
import sys
import numpy as np
import torch.distributed as dist
from ssl_ser import kmeans as km
from ssl_ser.kmeans import KMeansConfig

rank, world, port, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
try:
    part = np.array_split(np.load(path), world)[rank]
    res = km.fit_distributed(part, 16, seed=7, cfg=KMeansConfig(niter=6))  # default collective
    np.savez(f"{path}.{rank}.npz", centroids=res.centroids, assignment=res.assignment, sizes=res.sizes)
finally:
    dist.destroy_process_group()
"""


def test_two_gloo_processes_equal_the_gathered_run(tmp_path: Path) -> None:
    x = blobs(duplicates=200)
    path = tmp_path / "x.npy"
    np.save(path, x)
    script = tmp_path / "rank.py"
    script.write_text(GLOO_RANK)
    port = free_port()
    procs = [subprocess.Popen([sys.executable, str(script), str(r), "2", str(port), str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(2)]
    for r, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"rank {r}:\n{out}"
    gathered = km.fit(x, 16, seed=7, cfg=KMeansConfig(niter=6))
    parts = [np.load(f"{path}.{r}.npz") for r in range(2)]
    for p in parts:
        assert np.array_equal(p["centroids"], gathered.centroids)
        assert np.array_equal(p["sizes"], gathered.sizes)
    assert np.array_equal(np.concatenate([p["assignment"] for p in parts]), gathered.assignment)


# --- preprocessing ---------------------------------------------------------------------------

def test_pca_whitening_and_l2_normalisation() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2000, 10)) * np.arange(1, 11) + 5).astype(np.float32)
    prep = km.fit_preprocessing(x, KMeansConfig(pca_dim=4, l2_normalize=False))
    y = prep.apply(x)
    assert y.shape == (2000, 4)
    np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(4), atol=1e-3)  # whitened
    np.testing.assert_allclose(np.abs(prep.projection[:, 0]).argmax(), 9)  # largest variance first
    z = km.fit_preprocessing(x, KMeansConfig(pca_dim=4, l2_normalize=True)).apply(x)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    # rank-deficient embeddings (dead units): no direction with ~zero variance is blown up
    dead = np.concatenate([x[:, :3], np.zeros((2000, 5), np.float32)], 1)
    out = km.fit_preprocessing(dead, KMeansConfig(pca_dim=256)).apply(dead)
    assert out.shape == (2000, 3) and np.isfinite(out).all()
    # off: the identity
    assert km.fit_preprocessing(x, KMeansConfig()).identity


# --- GPU / CPU selection (no GPU here: availability is simulated) ----------------------------

def test_device_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert km.select_device("auto")[0] == "cpu" and "no CUDA" in km.select_device("auto")[1]
    with pytest.raises(KMeansError, match="kmeans.device: gpu, but no CUDA device"):
        km.select_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0, raising=False)
    device, why = km.select_device("auto")
    assert device == "cpu" and "faiss-cpu" in why  # CUDA for PyTorch, but a CPU-only faiss
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 2, raising=False)
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    assert km.select_device("auto") == ("gpu", "faiss on GPU 0 (2 visible to faiss)")
    assert km.select_device("cpu")[0] == "cpu"
    with pytest.raises(KMeansError, match="auto, cpu or gpu"):
        km.select_device("tpu")


class FakeGpu:
    """faiss-gpu's classes backed by CPU ones, recording how they were set up."""

    def __init__(self) -> None:
        self.temp_memory: list[int] = []
        self.indexes: list[int] = []
        self.emptied = 0
        fake = self

        class StandardGpuResources:
            def setTempMemory(self, size: int) -> None:  # noqa: N802 - faiss's name
                fake.temp_memory.append(size)

        class GpuIndexFlatConfig:
            device = -1

        def gpu_index(resources: Any, d: int, cfg: Any) -> Any:
            assert isinstance(resources, StandardGpuResources) and cfg.device == 0
            fake.indexes.append(d)
            return faiss.IndexFlatL2(d)

        self.classes = {"StandardGpuResources": StandardGpuResources,
                        "GpuIndexFlatConfig": GpuIndexFlatConfig, "GpuIndexFlatL2": gpu_index}

    def install(self, monkeypatch: pytest.MonkeyPatch, free_bytes: int) -> None:
        for name, value in self.classes.items():
            monkeypatch.setattr(faiss, name, value, raising=False)
        monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (free_bytes, 4 * free_bytes))

        def empty_cache() -> None:
            self.emptied += 1

        monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)


def test_gpu_path_frees_torch_cache_sizes_scratch_memory_and_matches_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    x = blobs()
    cpu = km.fit(x, 6, seed=1, cfg=KMeansConfig(niter=5, device="cpu"))
    fake = FakeGpu()
    fake.install(monkeypatch, free_bytes=2 * 2**30)
    gpu = km.fit(x, 6, seed=1, cfg=KMeansConfig(niter=5))
    assert gpu.device == "gpu" and fake.emptied == 1 and fake.indexes == [8]
    assert fake.temp_memory == [512 * 2**20]  # a quarter of the 2 GiB free
    same_clustering(cpu, gpu)
    km.fit_distributed(x, 6, seed=1, cfg=KMeansConfig(niter=5, gpu_temp_memory_mb=100), comm=LocalCollective())
    assert fake.temp_memory[-1] == 100 * 2**20 and len(fake.indexes) == 1 + 5 + 1  # one per Lloyd step + final
    fake.install(monkeypatch, free_bytes=64 * 2**30)
    km.fit(x, 6, seed=1, cfg=KMeansConfig(niter=1))
    assert fake.temp_memory[-1] == 1536 * 2**20  # capped


def test_gpu_setup_failure_falls_back_to_cpu_unless_gpu_was_required(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGpu()
    fake.install(monkeypatch, free_bytes=2**30)

    def broken() -> None:
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(faiss, "StandardGpuResources", broken, raising=False)
    res = km.fit(blobs(), 4, seed=0, cfg=KMeansConfig(niter=2))
    assert res.device == "cpu" and "GPU setup failed (CUDA error: out of memory)" in res.device_reason
    with pytest.raises(KMeansError, match="GPU setup failed"):
        km.fit(blobs(), 4, seed=0, cfg=KMeansConfig(niter=2, device="gpu"))


def test_default_collective_is_local_without_a_process_group() -> None:
    assert isinstance(km.default_collective(), km.LocalCollective)
