"""Collecting per-rank results on every rank (evaluation passes: each rank saw a disjoint share)."""

from __future__ import annotations

from typing import Any

import torch.distributed as dist


def gather_parts(parts: dict[str, list[Any]], distributed: bool) -> dict[str, list[Any]]:
    """Concatenate every rank's evaluation parts (each rank saw a disjoint set of samples)."""
    if not (distributed and dist.is_available() and dist.is_initialized()):
        return parts
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, parts)
    merged: dict[str, list[Any]] = {k: [] for k in parts}
    for rank_parts in everyone:
        for k, v in rank_parts.items():
            merged[k] += v
    return merged
