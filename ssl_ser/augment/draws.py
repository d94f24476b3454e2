"""Counter-based random draws: every augmenter call gets fresh generators seeded from
``(seed, augmentation, call number)``, so there is no generator state to checkpoint and a
resumed run draws exactly what the uninterrupted one would have."""

from __future__ import annotations

import hashlib
import random


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from any parts; stable across processes (no ``hash()`` salting)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class Draws:
    """The random generators of one augmenter call.

    ``batch`` is seeded without the rank, so batch-level decisions (is this batch augmented,
    with which scheme) are the same on every DDP rank; ``rows`` includes the rank, so ranks
    pick different partners, crops and noises. ``tag`` separates the augmentations.
    """

    def __init__(self, seed: int, rank: int, call: int, tag: str) -> None:
        self.batch = random.Random(derived_seed(seed, tag, "batch", call))
        self.rows = random.Random(derived_seed(seed, tag, "rows", rank, call))
