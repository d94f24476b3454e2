"""What a training batch asks the model to predict: the one type the loop hands to methods'
losses and to augmenters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ssl_ser.data.manifest import ATTRIBUTES


@dataclass
class Targets:
    """What a batch asks the model to predict, one row per model input (utterance or segment)."""

    keys: list[str]
    label: torch.Tensor
    """[N] class indices of the main label space; IGNORE where there is none."""
    attributes: torch.Tensor
    """[N, 3] arousal, valence, dominance; NaN where missing or not trained."""
    labelled: torch.Tensor
    """[N] bool."""
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    """[N] indices in the method's extra label spaces (speaker, corpus)."""
    owner: torch.Tensor | None = None
    """[N] utterance row of each segment (segment models), else None."""
    speakers: list[str | None] | None = None
    """``corpus/speaker`` of each row (speaker-wise feature normalisation), None if unknown."""

    def expand(self, owner: torch.Tensor) -> Targets:
        """Per-utterance targets repeated for each of its segments."""
        pick = owner.tolist()
        return Targets(keys=[self.keys[i] for i in pick], label=self.label[owner],
                       attributes=self.attributes[owner], labelled=self.labelled[owner],
                       extra={k: v[owner] for k, v in self.extra.items()}, owner=owner,
                       speakers=None if self.speakers is None else [self.speakers[i] for i in pick])


def attribute_targets(rows: Sequence[Mapping[str, Any]], trained: Sequence[str]) -> torch.Tensor:
    """[N, 3] arousal, valence, dominance of the trained attributes; NaN elsewhere."""
    out = torch.full((len(rows), 3), math.nan)
    for i, row in enumerate(rows):
        for name in trained:
            value = row.get(name)
            if value is not None:
                out[i, ATTRIBUTES.index(name)] = float(value)
    return out
