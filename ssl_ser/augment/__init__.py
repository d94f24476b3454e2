"""On-device training augmentation (the job config's ``augment:`` section).

The loop hands every training batch, before segmentation and the front-end, to the
:class:`Augmenter` built here: ``(audio [B, T], lengths [B], targets) -> (audio, lengths,
targets)``. It chains the configured augmentations in a fixed order: CopyPaste first (it may
add rows), then additive noise (which may then also fall on CopyPaste rows)::

    augment:
      copypaste: {scheme: both, batch_fraction: 0.8, crop_seconds: 4.0}
      noise: {shards: [data/shards/musan], snrs: [0, 5, 10], fraction: 0.5}

Randomness is counter-based: every call draws from generators seeded by ``(train.seed,
call number)`` (batch-level choices, the same on every rank) and ``(train.seed, rank, call
number)`` (row-level choices), so the checkpointed state is just the call counter plus the
CopyPaste reservoirs, and a resumed single-process (``--debug``) run draws exactly what the
uninterrupted one would have. Under DDP only rank 0's reservoirs are checkpointed; the other
ranks refill theirs from their own stream, so their first partners after a resume differ
(which batches are augmented does not).
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports: ``ssl_ser.augment.noisy_copy`` is imported by ``ssl-ser --help``, which must
# not pay for importing torch.
_EXPORTS = {
    "AugmentConfig": "augmenter", "Augmenter": "augmenter", "build_augmenter": "augmenter",
    "check_augment": "augmenter", "CopyPasteConfig": "copypaste", "CopyPaste": "copypaste",
    "NoiseConfig": "noise", "NoiseAugment": "noise", "derived_seed": "draws", "Draws": "draws",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:

        return getattr(importlib.import_module(f"ssl_ser.augment.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ssl_ser.augment' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
