"""An exponential moving average of the model's weights (``train.ema_decay``).

With ~1000 training clips the validation score swings by several points from one epoch to
the next; the average of the recent weights is a smoother, usually better model. When it is
on, validation, the best-checkpoint choice and every later use of the checkpoint (``evaluate``,
``cv``, ``predict``) see the averaged weights; the raw weights travel in the checkpoint beside
them so that a resumed run continues training exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class WeightAverage:
    """EMA of a model's floating-point parameters and buffers (BatchNorm statistics included);
    integer buffers are copied. The decay ramps up as ``(1 + t) / (10 + t)`` over the first
    updates, so the early average is not dominated by the random initialisation."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in model.state_dict().items():
            kept = self.shadow.get(key)
            if kept is None or kept.shape != value.shape:  # a replaced layer (e.g. a new head) starts over
                self.shadow[key] = value.detach().clone()
            elif kept.is_floating_point():
                kept.lerp_(value.detach().to(kept.dtype), 1.0 - decay)
            else:
                kept.copy_(value)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[dict[str, Tensor]]:
        """The averaged weights in ``model`` for the block; yields the raw ones, put back after."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield raw
        finally:
            model.load_state_dict(raw)

    def state_dict(self) -> dict[str, object]:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict[str, object]) -> None:
        shadow = state["shadow"]
        assert isinstance(shadow, dict)
        self.shadow = {k: v.clone() for k, v in shadow.items()}
        self.updates = int(state["updates"])  # type: ignore[call-overload]
