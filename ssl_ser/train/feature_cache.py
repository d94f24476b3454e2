"""Fold-level feature caching (``data.feature_cache: true``).

The training set's front-end features are computed once, from whole utterances in eval mode
(no SpecAugment), and kept in memory; every epoch then shuffles them, crops ``crop_seconds``
worth of frames at random (or cuts them into segments) and batches them. The loop applies
speaker normalisation and SpecAugment on top, so what changes between epochs (order, crop
offsets, masks) still changes. This saves the decode + STFT of every epoch (about a quarter
of an epoch of PyResNet tiny on 128 log-mels, bench/recipes/ravdess_emobox). Two small differences from the waveform
stream: a crop or segment starts on a frame, not a sample, and its edge frames saw the audio
just outside it (the STFT window of a centred frame reaches over the cut).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ssl_ser.data.manifest import ATTRIBUTES


@dataclass
class FeatureBatch:
    """A training batch of cached features, with what the loop's targets read from a stream batch."""

    keys: list[str]
    feats: Tensor
    """[B, F, T] float32, zero past each row's frames."""
    frames: Tensor
    """[B] int64 valid frames."""
    meta: list[dict[str, Any]]
    labelled: Tensor = field(init=False)
    attributes: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.labelled = torch.tensor([bool(m.get("labelled")) for m in self.meta], dtype=torch.bool)
        self.attributes = torch.tensor(
            [[float("nan") if m.get(a) is None else float(m[a]) for a in ATTRIBUTES] for m in self.meta],
            dtype=torch.float32).reshape(len(self.meta), len(ATTRIBUTES))

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str) -> FeatureBatch:
        out = FeatureBatch(self.keys, self.feats.to(device), self.frames.to(device), self.meta)
        out.labelled, out.attributes = self.labelled.to(device), self.attributes.to(device)
        return out


class FeatureCache:
    """Per-utterance features ``[F, T_i]`` (on the CPU) with their keys and manifest rows."""

    def __init__(self, keys: list[str], meta: list[dict[str, Any]], feats: list[Tensor]) -> None:
        if not (len(keys) == len(meta) == len(feats)):
            raise ValueError("feature cache: keys, meta and feats differ in length")
        self.keys, self.meta, self.feats = keys, meta, feats

    @classmethod
    def build(cls, frontend: nn.Module, batches: Iterable[Any], device: torch.device) -> FeatureCache:
        """Features of every utterance of ``batches`` (waveform batches), computed in eval mode."""
        keys: list[str] = []
        meta: list[dict[str, Any]] = []
        feats: list[Tensor] = []
        was_training = frontend.training
        frontend.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    batch = batch.to(device)
                    out, frames = frontend(batch.audio, batch.lengths)
                    for row, n in enumerate(frames.tolist()):
                        feats.append(out[row, :, :n].float().cpu().clone())
                    keys += list(batch.keys)
                    meta += list(batch.meta)
        finally:
            frontend.train(was_training)
        if not keys:
            raise ValueError("feature cache: the training sets gave no utterances")
        return cls(keys, meta, feats)

    def __len__(self) -> int:
        return len(self.keys)

    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.feats)

    def epoch(self, epoch: int, *, seed: int, batch_size: int, crop_frames: int | None,
              rank: int = 0, world_size: int = 1, samples: int | None = None) -> CachedEpoch:
        """This rank's batches of ``epoch``: a fresh shuffle and fresh crops, reproducible from
        (seed, epoch); every rank gets the same number of utterances (DDP steps together).
        ``samples`` (``data.samples_per_epoch``): that many crops in all, as the stream gives,
        from successive shuffles (an utterance recurs only once every one has been drawn)."""
        generator = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        total = len(self) if samples is None else samples
        order = torch.cat([torch.randperm(len(self), generator=generator)
                           for _ in range(-(-total // len(self)))])[:total]
        per_rank = total // world_size
        mine = order[rank::world_size][:per_rank].tolist()
        return CachedEpoch(self, mine, batch_size, crop_frames, generator)


class CachedEpoch:
    """One epoch's batches; iterate once."""

    def __init__(self, cache: FeatureCache, order: list[int], batch_size: int, crop_frames: int | None,
                 generator: torch.Generator) -> None:
        self.cache, self.order, self.batch_size = cache, order, batch_size
        self.crop_frames, self.generator = crop_frames, generator

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __iter__(self) -> Iterator[FeatureBatch]:
        for start in range(0, len(self.order), self.batch_size):
            rows = self.order[start:start + self.batch_size]
            pieces = [self._crop(self.cache.feats[i]) for i in rows]
            width = max(p.shape[-1] for p in pieces)
            feats = torch.zeros(len(pieces), pieces[0].shape[0], width)
            for j, p in enumerate(pieces):
                feats[j, :, : p.shape[-1]] = p
            frames = torch.tensor([p.shape[-1] for p in pieces], dtype=torch.int64)
            yield FeatureBatch([self.cache.keys[i] for i in rows], feats, frames,
                               [self.cache.meta[i] for i in rows])

    def _crop(self, feats: Tensor) -> Tensor:
        """A random ``crop_frames`` window; a shorter utterance is kept whole (and padded)."""
        if self.crop_frames is None or feats.shape[-1] <= self.crop_frames:
            return feats
        start = int(torch.randint(0, feats.shape[-1] - self.crop_frames + 1, (1,), generator=self.generator))
        return feats[:, start:start + self.crop_frames]


def _epoch_seed(seed: int, epoch: int) -> int:
    digest = hashlib.sha256(f"feature-cache/{seed}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
