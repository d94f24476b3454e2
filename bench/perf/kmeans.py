"""K-means cost: FAISS (what DeepEmoCluster runs every epoch) vs scikit-learn ``KMeans``, same
N points x D dims, K clusters and Lloyd iterations, on the CPU; FAISS on the GPU too when
there is one (faiss-gpu). Also our distributed Lloyd (:func:`ssl_ser.kmeans.fit_distributed`)
on one rank: its overhead over FAISS's own loop.

Both libraries start from K random points and run exactly ``--niter`` iterations (FAISS's
early stop is off in :func:`ssl_ser.kmeans.fit`; scikit-learn gets ``tol=0``, so it stops
only at an exact fixed point, which random data of these sizes never reaches). Times include
the final assignment. Default sizes finish in a few minutes on 2 cores; ``--full`` runs the
issue's sizes (N up to 1M x 256, K up to 4096; hours on a laptop CPU, minutes on a GPU).

``--ranks R`` instead runs the two ways DeepEmoCluster clusters across R ranks, as R local
processes in a gloo group, each generating only its own share of the points: *gathered* (every
share pickled to rank 0, FAISS there, the assignment broadcast back) and *distributed* (Lloyd
with all-reduced centroid sums, :func:`ssl_ser.kmeans.fit_distributed`). It prints the time,
the peak resident memory of each rank, whether the two assignments are identical, and each
rank's memory extrapolated to 10M points::

    python bench/perf/kmeans.py                       # default sizes
    python bench/perf/kmeans.py --full --skip-sklearn # 1M x 256, K = 1024 and 4096
    python bench/perf/kmeans.py --size 200000,128,512 --niter 10
    python bench/perf/kmeans.py --ranks 4             # 1M x 256, K = 1024, gathered vs distributed
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SIZES = [(20_000, 64, 64), (100_000, 128, 256), (100_000, 256, 1024)]
FULL_SIZES = [(1_000_000, 256, 1024), (1_000_000, 256, 4096)]


RANKS_SIZE = (1_000_000, 256, 1024)
_CHUNK = 65_536


def data(n: int, d: int, seed: int = 0, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Embedding-like points: 64 Gaussian blobs with a random spread, float32.

    ``rows=(lo, hi)``: only those rows of the same N points, generated chunk by chunk into
    the output (so a rank holds its share and no temporary copy of it).
    """
    lo, hi = rows or (0, n)
    centres = np.random.default_rng(seed).standard_normal((64, d)).astype(np.float32) * 3
    out = np.empty((hi - lo, d), np.float32)
    for start in range(lo - lo % _CHUNK, hi, _CHUNK):  # each chunk seeded by its position
        rng = np.random.default_rng((seed, start))
        size = min(_CHUNK, n - start)
        block = centres[rng.integers(0, 64, size)] + rng.standard_normal((size, d), dtype=np.float32)
        a, b = max(lo, start), min(hi, start + size)
        out[a - lo:b - lo] = block[a - start:b - start]
    return out


def run_faiss(x: np.ndarray, k: int, niter: int, device: str) -> tuple[float, float]:
    from ssl_ser.kmeans import KMeansConfig, fit

    start = time.perf_counter()
    res = fit(x, k, seed=0, cfg=KMeansConfig(niter=niter, device=device))
    return time.perf_counter() - start, res.objective


def run_distributed(x: np.ndarray, k: int, niter: int, device: str) -> tuple[float, float]:
    from ssl_ser.kmeans import KMeansConfig, LocalCollective, fit_distributed

    start = time.perf_counter()
    res = fit_distributed(x, k, seed=0, cfg=KMeansConfig(niter=niter, device=device), comm=LocalCollective())
    return time.perf_counter() - start, res.objective


def run_sklearn(x: np.ndarray, k: int, niter: int) -> tuple[float, float]:
    from sklearn.cluster import KMeans

    start = time.perf_counter()
    km = KMeans(n_clusters=k, init="random", n_init=1, max_iter=niter, tol=0.0, algorithm="lloyd",
                random_state=0).fit(x)
    return time.perf_counter() - start, float(km.inertia_)


# --- R ranks as local processes: gathered vs distributed ------------------------------------

def share(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of rank ``rank``: contiguous, in rank order (as the ranks' embeddings)."""
    bounds = np.linspace(0, n, world + 1).astype(np.int64)
    return int(bounds[rank]), int(bounds[rank + 1])


def rss_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _rank_worker(rank: int, world: int, port: int, n: int, d: int, k: int, niter: int, mode: str,
                 out: str) -> None:
    """One rank: its share of the points, then DeepEmoCluster's clustering in ``mode``."""
    import faiss
    import torch.distributed as dist

    from ssl_ser.distributed import TorchCollective
    from ssl_ser.kmeans import KMeansConfig, fit, fit_distributed

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        cpus = os.cpu_count() or 1
        # the machine's cores are shared: by every rank (distributed) or left to rank 0 (gathered)
        faiss.omp_set_num_threads(max(1, cpus // world) if mode == "distributed" else cpus)
        comm = TorchCollective()
        start_rss = rss_bytes()
        lo, hi = share(n, rank, world)
        x = data(n, d, rows=(lo, hi))
        data_rss = rss_bytes()
        cfg = KMeansConfig(niter=niter, device="cpu")
        dist.barrier()
        started = time.perf_counter()
        if mode == "distributed":
            res = fit_distributed(x, k, seed=0, cfg=cfg, comm=comm)
            assignment, centroids, objective = res.assignment, res.centroids, res.objective
        else:  # what DeepEmoCluster's gathered mode does with the embeddings
            parts = comm.gather(x)
            result = None
            if parts is not None:
                gathered = fit(np.concatenate(parts), k, seed=0, cfg=cfg)
                del parts
                result = (gathered.assignment, gathered.centroids, gathered.objective)
            assignment, centroids, objective = comm.broadcast(result)
            assignment = assignment[lo:hi]
        dist.barrier()
        seconds = time.perf_counter() - started
        np.save(f"{out}/{mode}.{rank}.npy", assignment)
        if rank == 0:
            np.save(f"{out}/{mode}.centroids.npy", centroids)
        Path(f"{out}/{mode}.{rank}.json").write_text(json.dumps(dict(
            seconds=seconds, objective=objective, rows=hi - lo, start_rss=start_rss, data_rss=data_rss,
            peak_rss=peak_rss_bytes())))
    finally:
        dist.destroy_process_group()


def run_ranks(n: int, d: int, k: int, world: int, niter: int) -> int:
    """Gathered vs distributed k-means over ``world`` local gloo processes; prints the table."""
    import torch.multiprocessing as mp

    from ssl_ser.distributed import free_port

    gib = 2 ** 30
    print(f"{world} gloo ranks as local processes on {os.cpu_count()} CPUs; N = {n:,} x D = {d}, K = {k}; "
          f"{niter_note(niter)}; every rank generates only its share ({n // world:,} points); "
          f"load average {os.getloadavg()[0]:.1f} (other work on the machine slows both modes)")
    stats: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as out:
        for mode in ("gathered", "distributed"):
            mp.start_processes(_rank_worker, args=(world, free_port(), n, d, k, niter, mode, out),
                               nprocs=world, start_method="spawn")
            stats[mode] = [json.loads(Path(f"{out}/{mode}.{r}.json").read_text()) for r in range(world)]
        same = {mode: np.concatenate([np.load(f"{out}/{mode}.{r}.npy") for r in range(world)])
                for mode in stats}
        equal = float(np.mean(same["gathered"] == same["distributed"]))
        centroids_equal = np.array_equal(np.load(f"{out}/gathered.centroids.npy"),
                                         np.load(f"{out}/distributed.centroids.npy"))
    header = f"{'mode':<12} {'seconds':>8} {'peak RSS rank 0':>16} {'peak RSS other ranks':>21} {'at 10M points':>22}"
    print(header)
    print("-" * len(header))
    for mode, ranks in stats.items():
        seconds = max(r["seconds"] for r in ranks)
        others = [r["peak_rss"] for r in ranks[1:]] or [0]
        projected = [extrapolate(r, mode, rank, n, world, 10_000_000) for rank, r in enumerate(ranks)]
        print(f"{mode:<12} {seconds:>8.1f} {ranks[0]['peak_rss'] / gib:>12.2f} GiB "
              f"{min(others) / gib:>8.2f}-{max(others) / gib:.2f} GiB "
              f"{projected[0] / gib:>6.1f} / {max(projected[1:] or [0]) / gib:.1f} GiB")
    ratio = max(r["seconds"] for r in stats["gathered"]) / max(r["seconds"] for r in stats["distributed"])
    print(f"\ngathered / distributed time = {ratio:.2f}x; rank 0 peak gathered / distributed = "
          f"{stats['gathered'][0]['peak_rss'] / stats['distributed'][0]['peak_rss']:.2f}x")
    objectives = [stats[mode][0]["objective"] for mode in ("gathered", "distributed")]
    print(f"assignments identical for {equal:.4%} of the points; final centroids "
          f"{'bit-identical' if centroids_equal else 'not bit-identical'}; objective gathered "
          f"{objectives[0]:.6g}, distributed {objectives[1]:.6g} (relative difference "
          f"{abs(objectives[1] - objectives[0]) / objectives[0]:.1e})")
    if not centroids_equal:
        print("(FAISS sums each centroid's points in float32 in point order; the ranks' partial sums "
              "are added in float64, so rounding differs and a few boundary points move over the "
              "iterations; on exactly representable data the two are bit-identical, see tests/test_kmeans.py)")
    print("at 10M points: rank 0 / busiest other rank, each rank's memory above its start "
          "(imports) scaled linearly with the points it holds")
    return 0


def extrapolate(r: dict[str, float], mode: str, rank: int, n: int, world: int, target: int) -> float:
    """A rank's peak memory at ``target`` points: what it held above its start scales with the
    points it handled (its share; rank 0 of the gathered mode: all of them)."""
    handled = n if (mode == "gathered" and rank == 0) else r["rows"]
    scale = (target * handled / n) / max(handled, 1)
    return r["start_rss"] + (r["peak_rss"] - r["start_rss"]) * scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", action="append", default=[], metavar="N,D,K",
                        help="a size to run (repeatable); default: " +
                             " ".join(f"{n},{d},{k}" for n, d, k in DEFAULT_SIZES))
    parser.add_argument("--full", action="store_true",
                        help="the issue's sizes: " + " ".join(f"{n},{d},{k}" for n, d, k in FULL_SIZES))
    parser.add_argument("--niter", type=int, default=10, help="Lloyd iterations (default 10)")
    parser.add_argument("--skip-sklearn", action="store_true", help="FAISS only (sklearn takes hours at --full)")
    parser.add_argument("--skip-distributed", action="store_true")
    parser.add_argument("--ranks", type=int, metavar="R",
                        help="gathered vs distributed over R local gloo processes (size: the first "
                             "--size, default " + ",".join(map(str, RANKS_SIZE)) + ")")
    args = parser.parse_args(argv)
    if args.ranks:
        n, d, k = (tuple(int(v) for v in args.size[0].split(",")) if args.size else RANKS_SIZE)
        return run_ranks(n, d, k, args.ranks, args.niter)

    import faiss
    import sklearn
    import torch

    from ssl_ser.kmeans import select_device

    sizes = [tuple(int(v) for v in s.split(",")) for s in args.size] or (FULL_SIZES if args.full else DEFAULT_SIZES)
    device, why = select_device("auto")
    print(f"faiss {faiss.__version__}, scikit-learn {sklearn.__version__}, torch {torch.__version__}; "
          f"{os.cpu_count()} CPUs, faiss threads {faiss.omp_get_max_threads()}; {niter_note(args.niter)}")
    print(f"GPU: {why}" + ("" if device == "gpu" else " -> GPU rows skipped"))
    header = (f"{'N':>9} {'D':>4} {'K':>5} | {'what':<28} {'seconds':>9} {'s/iter':>8} {'vs faiss-cpu':>12} "
              f"{'objective':>12}")
    print(header)
    print("-" * len(header))
    for n, d, k in sizes:
        x = data(n, d)
        rows: list[tuple[str, float, float]] = []
        base, obj = run_faiss(x, k, args.niter, "cpu")
        rows.append(("faiss, CPU", base, obj))
        if device == "gpu":
            rows.append(("faiss, GPU", *run_faiss(x, k, args.niter, "gpu")))
        if not args.skip_distributed:
            rows.append(("ours distributed, 1 rank, CPU", *run_distributed(x, k, args.niter, "cpu")))
        if not args.skip_sklearn:
            rows.append(("scikit-learn KMeans, CPU", *run_sklearn(x, k, args.niter)))
        for what, seconds, objective in rows:
            print(f"{n:>9} {d:>4} {k:>5} | {what:<28} {seconds:>9.2f} {seconds / args.niter:>8.3f} "
                  f"{seconds / base:>11.2f}x {objective:>12.4g}")
        sys.stdout.flush()
    return 0


def niter_note(niter: int) -> str:
    return f"{niter} Lloyd iterations from K random points, + the final assignment"


if __name__ == "__main__":
    raise SystemExit(main())
