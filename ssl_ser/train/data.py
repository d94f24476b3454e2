"""The loop's view of the data: streams for training and evaluation, label histograms."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ssl_ser.data import shards as shard_sets
from ssl_ser.data import stream as streaming
from ssl_ser.errors import SslSerError

if TYPE_CHECKING:
    from ssl_ser.train.loop import Loop

ATTRIBUTES = ("arousal", "valence", "dominance")
_HISTOGRAMS = {"emotion": "emotions", "speaker": "corpus_speakers", "corpus": "corpora"}


def index_of(spec: str) -> shard_sets.ShardIndex:
    """The ``index.json`` of a shard set given as a directory, its index, or a pattern/URL of
    its shards (the index lies next to them)."""
    try:
        return shard_sets.read_index(spec)
    except SslSerError:
        parent = spec.rsplit("/", 1)[0] if "/" in spec else "."
        if parent == spec:
            raise
        return shard_sets.read_index(parent)


def index_histogram(index: shard_sets.ShardIndex, field: str) -> Mapping[str, int]:
    """Label counts of ``field`` in one shard set's index."""
    if field not in _HISTOGRAMS:
        raise SslSerError(f"no label histogram for field {field!r} (one of {', '.join(_HISTOGRAMS)})")
    return getattr(index, _HISTOGRAMS[field])


def class_histogram(specs: Sequence[str], field: str) -> Counter[str]:
    """Label counts of ``field`` summed over the shard sets' ``index.json`` files."""
    total: Counter[str] = Counter()
    for spec in specs:
        total.update(index_histogram(index_of(spec), field))
    return total


def attribute_targets(rows: Sequence[Mapping[str, Any]], trained: Sequence[str]) -> torch.Tensor:
    """[N, 3] arousal, valence, dominance of the trained attributes; NaN elsewhere."""
    out = torch.full((len(rows), 3), math.nan)
    for i, row in enumerate(rows):
        for name in trained:
            value = row.get(name)
            if value is not None:
                out[i, ATTRIBUTES.index(name)] = float(value)
    return out


def make_train_stream(loop: Loop, epoch: int) -> Any:
    job = loop.job
    sources = [streaming.StreamSource(shards=specs, weight=weight)
               for specs, weight in loop.method.training_sources()]
    return streaming.make_stream(
        sources=sources, mode="train", batch_size=job.data.batch_size, seed=job.train.seed, epoch=epoch,
        crop_seconds=job.data.crop_seconds, shuffle_buffer=job.data.shuffle_buffer,
        num_workers=job.debug.num_workers if loop.debug else job.data.num_workers,
        rank=loop.session.world_rank, world_size=loop.session.world_size,
        samples_per_epoch=job.data.samples_per_epoch, pin_memory=loop.device.type == "cuda")


def make_eval_stream(loop: Loop, specs: Sequence[str], whole: bool = False) -> Any:
    """Every sample once: split over the ranks, or all of it on this rank (``whole``)."""
    job = loop.job
    rank, world = (0, 1) if whole else (loop.session.world_rank, loop.session.world_size)
    return streaming.make_stream(
        sources=[streaming.StreamSource(shards=list(specs))], mode="exact", batch_size=job.data.batch_size,
        seed=job.train.seed, epoch=0, crop_seconds=None, max_seconds=job.data.eval_max_seconds,
        num_workers=job.debug.num_workers if loop.debug else job.data.num_workers,
        rank=rank, world_size=world, pin_memory=loop.device.type == "cuda")
