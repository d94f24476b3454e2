"""Speaker-verification scoring: trial lists, cosine scores and the equal error rate.

A trial is a pair of utterances; it is a *target* trial when both have the same speaker.
The EER is the error rate at the threshold where false acceptances (non-target trials
scored at or above it) and false rejections (target trials scored below it) are equally
frequent, read from the ROC by linear interpolation between its two points around the
crossing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssl_ser.errors import SslSerError


class TrialError(SslSerError):
    """Utterances that cannot make a trial list (too few, or one speaker only)."""


@dataclass(frozen=True)
class Trials:
    """Index pairs into an utterance list, with whether each pair is a target trial."""

    left: np.ndarray
    right: np.ndarray
    target: np.ndarray
    """[N] bool."""

    def __len__(self) -> int:
        return int(self.left.size)


def eer(scores: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(equal error rate in [0, 1], the threshold at which it is reached).

    ``scores``: higher means "same speaker"; ``target``: bool, True for target trials. Both
    kinds of trial must be present.
    """
    scores = np.asarray(scores, dtype=np.float64)
    target = np.asarray(target, dtype=bool)
    if scores.shape != target.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and target {target.shape} must be equal 1-D shapes")
    n_tar, n_non = int(target.sum()), int((~target).sum())
    if n_tar == 0 or n_non == 0:
        raise TrialError(f"the EER needs target and non-target trials (got {n_tar} and {n_non})")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    # Thresholds at every distinct score, descending; accept when score >= threshold.
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], target[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie group
    tar_accepted = np.cumsum(t)[last]
    non_accepted = np.cumsum(~t)[last]
    # Prepend the "accept nothing" point (threshold above every score).
    far = np.r_[0.0, non_accepted / n_non]
    frr = np.r_[1.0, 1.0 - tar_accepted / n_tar]
    thresholds = np.r_[np.inf, s[last]]
    # FAR rises and FRR falls along the list: find the first point where FAR >= FRR.
    i = int(np.argmax(far >= frr))
    if far[i] == frr[i] or i == 0:
        return float(far[i]), float(thresholds[i])
    # Intersect the segment (far[i-1], frr[i-1]) -> (far[i], frr[i]) with FAR = FRR.
    d_prev, d_here = frr[i - 1] - far[i - 1], far[i] - frr[i]
    w = d_prev / (d_prev + d_here)
    rate = far[i - 1] + w * (far[i] - far[i - 1])
    return float(rate), float(thresholds[i])


def make_trials(speakers: Sequence[str], *, max_target: int | None = 20_000,
                max_nontarget: int | None = 20_000, seed: int = 0) -> Trials:
    """Same-speaker pairs (all of them, or ``max_target`` drawn without replacement) and
    ``max_nontarget`` different-speaker pairs drawn without replacement (all of them when
    there are fewer, or when it is None), from a seeded generator.

    The result depends only on ``speakers`` (in order), the caps and the seed. Pairs are
    ``(i, j)`` with ``i < j``; non-target pairs are sampled without enumerating all
    ``n^2 / 2`` of them, so large trial sets stay cheap.
    """
    labels = np.asarray(list(speakers), dtype=object)
    n = labels.size
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    if n < 2 or names.size < 2:
        raise TrialError(f"trials need utterances of at least 2 speakers (got {n} utterance(s) "
                         f"of {names.size} speaker(s))")
    rng = np.random.default_rng(seed)
    # target pairs: within each speaker's utterances
    pairs = []
    for code in range(names.size):
        idx = np.flatnonzero(codes == code)
        a, b = np.triu_indices(idx.size, k=1)
        pairs.append(np.stack([idx[a], idx[b]], 1))
    tar = np.concatenate(pairs)
    if tar.shape[0] == 0:
        raise TrialError("trials need a speaker with at least 2 utterances (every speaker has one)")
    if max_target is not None and tar.shape[0] > max_target:
        tar = tar[np.sort(rng.choice(tar.shape[0], size=max_target, replace=False))]
    # non-target pairs
    counts = np.bincount(codes)
    total_non = (n * (n - 1) - int((counts * (counts - 1)).sum())) // 2
    if max_nontarget is None or total_non <= max_nontarget:
        a, b = np.triu_indices(n, k=1)
        keep = codes[a] != codes[b]
        non = np.stack([a[keep], b[keep]], 1)
    else:
        chosen: set[int] = set()
        while len(chosen) < max_nontarget:
            draw = rng.integers(0, n, size=(2 * max_nontarget, 2))
            i, j = draw.min(1), draw.max(1)
            ok = codes[i] != codes[j]
            for flat in (i[ok] * n + j[ok]).tolist():
                if len(chosen) == max_nontarget:
                    break
                chosen.add(flat)
        flat = np.sort(np.fromiter(chosen, dtype=np.int64))
        non = np.stack([flat // n, flat % n], 1)
    both = np.concatenate([tar, non])
    target = np.r_[np.ones(tar.shape[0], bool), np.zeros(non.shape[0], bool)]
    return Trials(left=both[:, 0], right=both[:, 1], target=target)


def cosine_scores(embeddings: np.ndarray, trials: Trials) -> np.ndarray:
    """Cosine similarity of each trial's two embeddings."""
    emb = np.asarray(embeddings, dtype=np.float64)
    emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
    return np.einsum("nd,nd->n", emb[trials.left], emb[trials.right])
