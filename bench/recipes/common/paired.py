"""Paired comparisons across folds, exact for the handful of folds a recipe has.

    from paired import compare
    compare([0.41, 0.38, ...], [0.44, 0.40, ...])  # method vs baseline, fold by fold

Both tests are two-sided and exact (every sign assignment enumerated), so they need no SciPy and
stay right for n = 6, where normal approximations are poor. With 6 folds the smallest possible
p is 2/64 = 0.031: no result on 6 folds is "significant" at 0.01, whatever its size.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Paired:
    n: int
    mean_diff: float
    sd_diff: float
    wins: int
    losses: int
    sign_p: float
    """Two-sided exact sign test (ties dropped)."""
    wilcoxon_p: float
    """Two-sided exact Wilcoxon signed-rank test (zero differences dropped, average ranks for ties)."""

    def text(self, digits: int = 3) -> str:
        return (f"{self.mean_diff:+.{digits}f} ± {self.sd_diff:.{digits}f}, {self.wins}/{self.n} folds better, "
                f"sign p = {self.sign_p:.3f}, Wilcoxon p = {self.wilcoxon_p:.3f}")


def sign_test(wins: int, losses: int) -> float:
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def wilcoxon(diffs: list[float]) -> float:
    nonzero = [d for d in diffs if d != 0]
    if not nonzero:
        return 1.0
    r = ranks([abs(d) for d in nonzero])
    observed = sum(rank for rank, d in zip(r, nonzero) if d > 0)
    centre = sum(r) / 2
    extreme = sum(abs(sum(rank for rank, s in zip(r, signs) if s) - centre) >= abs(observed - centre) - 1e-12
                  for signs in itertools.product((0, 1), repeat=len(r)))
    return extreme / 2 ** len(r)


def compare(method: list[float], baseline: list[float]) -> Paired:
    if len(method) != len(baseline) or not method:
        raise ValueError(f"paired comparison needs equal, non-empty lists (got {len(method)} and {len(baseline)})")
    diffs = [m - b for m, b in zip(method, baseline)]
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    return Paired(len(diffs), statistics.mean(diffs), sd, wins, losses, sign_test(wins, losses), wilcoxon(diffs))
