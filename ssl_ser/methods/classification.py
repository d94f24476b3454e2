"""The emotion cross-entropy of every method with an emotion classifier, and the options that
make it weigh the classes as UA (balanced accuracy) does.

The training loss weighs every clip alike, UA every class alike; on a corpus with a smaller
class (RAVDESS has half as many *neutral* clips) the two disagree. Two remedies, both options of
:class:`ClassificationLossOptions`, which a method's options inherit:

- ``class_weight: balanced`` weighs each clip by the inverse frequency of its class;
- ``logit_adjustment: tau`` trains on ``logits + tau * log(prior)`` (Menon et al., ICLR 2021,
  "Long-tail learning via logit adjustment"). At ``tau = 1`` the loss is minimised by
  ``logits = log p(x | y) + c``, whose argmax is the rule that maximises balanced accuracy. The
  model's own logits, which scoring and export read, are left unadjusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ssl_ser.config import config

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext


@config
class ClassificationLossOptions:
    class_weight: Literal["none", "balanced"] = "none"
    """balanced: each clip's term weighted by the inverse frequency of its class in the training
    shards (the weights average 1 over the classes present)."""
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    logit_adjustment: Annotated[float, Field(ge=0.0)] = 0.0
    """tau: the cross-entropy reads ``logits + tau * log(training class prior)``; 1 makes its
    minimiser the balanced-accuracy rule (Menon et al. 2021), 0 turns it off."""


def balance_weights(sizes: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Inverse-size class weights (mean 1 over the non-empty classes); 0 for empty ones."""
    sizes = np.asarray(sizes, dtype=np.float64)
    nonempty = sizes > 0
    weights = np.zeros_like(sizes)
    if nonempty.any():
        weights[nonempty] = sizes[nonempty].sum() / (nonempty.sum() * sizes[nonempty])
    return torch.tensor(weights, dtype=torch.float32)


def log_prior(counts: torch.Tensor) -> torch.Tensor:
    """log of the class frequencies; a class without training clips gets the log of half a clip's
    share, so its adjusted logit stays finite."""
    counts = counts.double().clamp(min=0.5)
    return (counts / counts.sum()).log().float()


class ClassificationLoss:
    """``loss(logits, target)``: the cross-entropy as ``options`` weigh it. The training shards'
    class counts are read once, and only when an option needs them."""

    def __init__(self, options: ClassificationLossOptions, ctx: TrainingContext) -> None:
        self.options = options
        self.weight: torch.Tensor | None = None
        self.offset: torch.Tensor | None = None
        if options.class_weight == "balanced" or options.logit_adjustment > 0:
            counts = ctx.class_counts()
            if options.class_weight == "balanced":
                self.weight = balance_weights(counts).to(ctx.device)
            if options.logit_adjustment > 0:
                self.offset = (options.logit_adjustment * log_prior(counts)).to(ctx.device)

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.offset is not None:
            logits = logits + self.offset
        return F.cross_entropy(logits, target, weight=self.weight,
                               label_smoothing=self.options.label_smoothing)
