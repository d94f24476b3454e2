"""The loop's streams: the training mix of the method's sources, and exact evaluation passes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ssl_ser.data import stream as streaming
from ssl_ser.job import JobConfig


def make_train_stream(job: JobConfig, sources: Sequence[tuple[list[str], float]], epoch: int, *,
                      rank: int, world_size: int, debug: bool, device: torch.device) -> Any:
    """This rank's training batches of ``epoch``: (shard specs, weight) sources mixed."""
    return streaming.make_stream(
        sources=[streaming.StreamSource(shards=specs, weight=weight) for specs, weight in sources],
        mode="train", batch_size=job.data.batch_size, seed=job.train.seed, epoch=epoch,
        crop_seconds=job.data.crop_seconds, shuffle_buffer=job.data.shuffle_buffer,
        bucketing=job.data.crop_seconds is None,  # whole utterances: group similar lengths (less padding)
        num_workers=job.debug.num_workers if debug else job.data.num_workers,
        rank=rank, world_size=world_size,
        samples_per_epoch=job.data.samples_per_epoch, pin_memory=device.type == "cuda")


def make_eval_stream(job: JobConfig, specs: Sequence[str], *, rank: int, world_size: int, debug: bool,
                     device: torch.device) -> Any:
    """Every sample once over the ranks (``rank`` 0 of 1: all of it here)."""
    return streaming.make_stream(
        sources=[streaming.StreamSource(shards=list(specs))], mode="exact", batch_size=job.data.batch_size,
        seed=job.train.seed, epoch=0, crop_seconds=None, max_seconds=job.data.eval_max_seconds,
        num_workers=job.debug.num_workers if debug else job.data.num_workers,
        rank=rank, world_size=world_size, pin_memory=device.type == "cuda")
