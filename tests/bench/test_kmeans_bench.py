"""bench/perf/kmeans.py's ranks mode: each rank's share of the points is the same rows the
whole set holds, the shares tile it, the 10M projection scales what a rank held, and a tiny
2-rank run (real gloo processes) prints its table with matching assignments."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from tests.bench.scripts import ROOT, load_script

SCRIPT = ROOT / "bench" / "perf" / "kmeans.py"


km = load_script(SCRIPT, "bench_kmeans")


def test_a_ranks_rows_are_the_same_rows_as_the_whole_set() -> None:
    whole = km.data(200_000, 3)
    for lo, hi in [(0, 10), (65_530, 65_540), (131_000, 200_000), (199_999, 200_000)]:
        np.testing.assert_array_equal(km.data(200_000, 3, rows=(lo, hi)), whole[lo:hi])
    assert whole.dtype == np.float32 and np.isfinite(whole).all()


def test_shares_tile_the_points_in_rank_order() -> None:
    bounds = [km.share(10, r, 4) for r in range(4)]
    assert bounds[0][0] == 0 and bounds[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert sum(hi - lo for lo, hi in bounds) == 10


def test_projection_scales_what_the_rank_held_above_its_start() -> None:
    r = {"start_rss": 100.0, "peak_rss": 300.0, "rows": 250}
    # a distributed rank holds its share: 10x the points, 10x the 200 bytes above its start
    assert km.extrapolate(r, "distributed", 1, 1000, 4, 10_000) == 100 + 2000
    # the gathered mode's rank 0 held all 1000 points: the same factor, from the whole set
    assert km.extrapolate(r, "gathered", 0, 1000, 4, 10_000) == 100 + 2000
    assert km.extrapolate(r, "gathered", 1, 1000, 4, 1000) == 300


def test_two_rank_run_prints_the_table() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--ranks", "2", "--size", "3000,8,16", "--niter", "3"],
                         env=env, capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("gathered ") for line in lines)
    assert any(line.startswith("distributed ") for line in lines)
    agree = next(line for line in lines if line.startswith("assignments identical for"))
    assert float(agree.split()[3].rstrip("%")) > 99.0, agree
