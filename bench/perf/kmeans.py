"""K-means cost: FAISS (what DeepEmoCluster runs every epoch) vs scikit-learn ``KMeans``, same
N points x D dims, K clusters and Lloyd iterations, on the CPU; FAISS on the GPU too when
there is one (faiss-gpu). Also our distributed Lloyd (:func:`ssl_ser.kmeans.fit_distributed`)
on one rank: its overhead over FAISS's own loop.

Both libraries start from K random points and run exactly ``--niter`` iterations (FAISS's
early stop is off in :func:`ssl_ser.kmeans.fit`; scikit-learn gets ``tol=0``, so it stops
only at an exact fixed point, which random data of these sizes never reaches). Times include
the final assignment. Default sizes finish in a few minutes on 2 cores; ``--full`` runs the
issue's sizes (N up to 1M x 256, K up to 4096; hours on a laptop CPU, minutes on a GPU)::

    python bench/perf/kmeans.py                       # default sizes
    python bench/perf/kmeans.py --full --skip-sklearn # 1M x 256, K = 1024 and 4096
    python bench/perf/kmeans.py --size 200000,128,512 --niter 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

DEFAULT_SIZES = [(20_000, 64, 64), (100_000, 128, 256), (100_000, 256, 1024)]
FULL_SIZES = [(1_000_000, 256, 1024), (1_000_000, 256, 4096)]


def data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Embedding-like points: 64 Gaussian blobs with a random spread, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, d)).astype(np.float32) * 3
    return (centres[rng.integers(0, 64, n)] + rng.standard_normal((n, d), dtype=np.float32)).astype(np.float32)


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
    args = parser.parse_args(argv)

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
