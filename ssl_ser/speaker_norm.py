"""Speaker-wise feature normalisation (``frontend: {speaker_norm: true}``).

A standard step in SER: each speaker's front-end features are normalised with that speaker's
own mean and standard deviation (per feature, over all of their frames), which removes much
of the speaker's voice from the input. Statistics are unsupervised (no labels), so they are
computed for every speaker of the training, validation and test sets alike, the same way in
training and test; audio of an unknown speaker (``predict`` on new files) falls back to the
statistics pooled over all training speakers.

It assumes every speaker speaks several emotions. Where a corpus gives each speaker one
emotion (URDU's speaker tags nearly do), the speaker's mean *is* the emotion's, and
normalising it away leaves a model below chance; :func:`majority_share` measures this on the
training speakers and the training loop warns when it is high.

A speaker's statistics from a few utterances are noisy, worse than none at all (on RAVDESS
with the functionals job: 0.46 UA from 5 utterances per test actor against 0.50 from the pooled
statistics, 0.57 with ``speaker_prior: 2``; ``bench/recipes/ravdess_emobox``, round 4). ``frontend.speaker_prior: K``
(:meth:`SpeakerNorm.shrunk`) pulls each speaker's statistics towards the pooled training ones
as if K utterances with those statistics were added: a speaker with few utterances is
normalised mostly with the pooled statistics, one with many mostly with their own.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable
from functools import reduce
from typing import Any

import torch

from ssl_ser.features import frame_mask

EPS = 1e-5
#: Above this :func:`majority_share`, speaker normalisation is likely to remove the emotion.
CONFOUNDED = 0.5


def majority_share(labels: Iterable[tuple[str, str]]) -> float | None:
    """The share of ``(speaker, emotion)`` pairs whose emotion is their speaker's most frequent
    one: 1/C-ish when every speaker speaks every emotion evenly (RAVDESS: 0.13), near 1 when each
    speaker speaks one emotion. None without labels."""
    per_speaker: dict[str, Counter[str]] = {}
    for speaker, emotion in labels:
        per_speaker.setdefault(speaker, Counter())[emotion] += 1
    total = sum(sum(c.values()) for c in per_speaker.values())
    return sum(max(c.values()) for c in per_speaker.values()) / total if total else None


class SpeakerNorm:
    def __init__(self, speakers: list[str], mean: torch.Tensor, std: torch.Tensor,
                 global_mean: torch.Tensor, global_std: torch.Tensor) -> None:
        self.speakers = list(speakers)
        self.index = {s: i for i, s in enumerate(self.speakers)}
        self.mean, self.std = mean, std
        self.global_mean, self.global_std = global_mean, global_std
        self.majority_share: float | None = None
        """:func:`majority_share` of the training speakers' labelled audio (set by :meth:`fit`)."""
        self.utterances: list[int] | None = None
        """Utterances per speaker behind the statistics (set by :meth:`fit`)."""
        self.prior = 0.0
        """The ``speaker_prior`` the statistics were shrunk with (:meth:`shrunk`); kept so that
        speakers fitted later (``ssl-ser evaluate``) are treated alike."""

    @classmethod
    def fit(cls, frontend: torch.nn.Module, batches: Iterable[Any], device: torch.device,
            global_speakers: set[str] | None = None) -> SpeakerNorm:
        """Accumulate per-speaker frame statistics over ``batches`` (front-end in eval mode).

        ``global_speakers`` (the training speakers) form the fallback statistics.
        """
        sums: dict[str, torch.Tensor] = {}
        squares: dict[str, torch.Tensor] = {}
        counts: dict[str, float] = {}
        utterances: dict[str, int] = {}
        labels: list[tuple[str, str]] = []
        was_training = frontend.training
        frontend.eval()
        with torch.no_grad():
            for batch in batches:
                batch = batch.to(device)
                feats, frames = frontend(batch.audio, batch.lengths)
                mask = frame_mask(frames, feats.shape[-1]).unsqueeze(1).to(feats.dtype)
                for row, (name, meta) in enumerate(zip(speaker_keys(batch.meta), batch.meta)):
                    if name is None:
                        continue
                    training = global_speakers is None or name in global_speakers
                    if training and meta.get("labelled") and meta.get("emotion"):
                        labels.append((name, meta["emotion"]))
                    f = feats[row].double() * mask[row].double()
                    sums[name] = sums.get(name, 0) + f.sum(-1)
                    squares[name] = squares.get(name, 0) + (f * f).sum(-1)
                    counts[name] = counts.get(name, 0.0) + float(frames[row])
                    utterances[name] = utterances.get(name, 0) + 1
        frontend.train(was_training)
        if not counts:
            raise ValueError("speaker normalisation: no audio to compute statistics from")
        names = sorted(counts)
        mean = torch.stack([sums[n] / counts[n] for n in names])
        var = torch.stack([squares[n] / counts[n] for n in names]) - mean**2
        pool = [n for n in names if global_speakers is None or n in global_speakers] or names
        total = sum(counts[n] for n in pool)
        g_mean = reduce(operator.add, (sums[n] for n in pool)) / total  # sum() of tensors, typed
        g_var = reduce(operator.add, (squares[n] for n in pool)) / total - g_mean**2
        norm = cls(names, mean.float(), var.clamp(min=0).sqrt().float(), g_mean.float(),
                   g_var.clamp(min=0).sqrt().float())
        norm.majority_share = majority_share(labels)
        norm.utterances = [utterances[n] for n in names]
        return norm

    def shrunk(self, prior: float, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> SpeakerNorm:
        """Each speaker's mean and second moment mixed with the pooled ones (or ``mean``, ``std``:
        the training speakers' when fitting others) with weight n / (n + ``prior``), n their
        utterances: ``prior`` pseudo-utterances of the pooled statistics. Needs :meth:`fit`'s counts."""
        if self.utterances is None:
            raise ValueError("speaker normalisation: shrinking needs the utterance counts of SpeakerNorm.fit")
        to_mean = self.global_mean if mean is None else mean
        to_std = self.global_std if std is None else std
        n = torch.tensor(self.utterances, dtype=torch.float64)[:, None]
        weight = n / (n + prior)
        new_mean = weight * self.mean.double() + (1 - weight) * to_mean.double()
        square = (weight * (self.std.double() ** 2 + self.mean.double() ** 2)
                  + (1 - weight) * (to_std.double() ** 2 + to_mean.double() ** 2))
        out = SpeakerNorm(self.speakers, new_mean.float(), (square - new_mean**2).clamp(min=0).sqrt().float(),
                          self.global_mean, self.global_std)
        out.majority_share, out.utterances, out.prior = self.majority_share, self.utterances, prior
        return out

    def __call__(self, feats: torch.Tensor, frames: torch.Tensor,
                 speakers: list[str | None] | None) -> torch.Tensor:
        """Normalise each row with its speaker's statistics (``speakers`` from :func:`speaker_keys`;
        None or an unseen speaker: the pooled training statistics)."""
        rows = [self.index.get(s, -1) if s is not None else -1
                for s in (speakers or [None] * feats.shape[0])]
        idx = torch.tensor(rows, device=feats.device)
        known = (idx >= 0)[:, None]
        mean = torch.where(known, self.mean.to(feats.device)[idx.clamp(min=0)], self.global_mean.to(feats.device))
        std = torch.where(known, self.std.to(feats.device)[idx.clamp(min=0)], self.global_std.to(feats.device))
        out = (feats - mean[:, :, None].to(feats.dtype)) / (std[:, :, None].to(feats.dtype) + EPS)
        return out * frame_mask(frames, feats.shape[-1]).unsqueeze(1).to(feats.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"speakers": self.speakers, "mean": self.mean, "std": self.std,
                "global_mean": self.global_mean, "global_std": self.global_std, "prior": self.prior}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SpeakerNorm:
        norm = cls(list(state["speakers"]), state["mean"], state["std"], state["global_mean"], state["global_std"])
        norm.prior = float(state.get("prior", 0.0))  # checkpoints before speaker_prior: none
        return norm


def speaker_keys(rows: Iterable[dict[str, Any]]) -> list[str | None]:
    """``corpus/speaker`` of each manifest row (speaker ids are unique within a corpus only)."""
    return [None if r.get("speaker") is None else f"{r.get('corpus', '')}/{r['speaker']}" for r in rows]
