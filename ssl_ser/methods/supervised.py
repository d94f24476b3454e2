"""Supervised SER: cross-entropy on the emotion classes, plus a CCC loss on the emotional
attributes when ``data.attributes`` is set (for models with an attribute head)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ssl_ser.config import ConfigError, config
from ssl_ser.labels import IGNORE
from ssl_ser.methods.base import METHODS, Method
from ssl_ser.metrics import ccc_loss

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext


@config
class SupervisedOptions:
    class_weight: str = "none"
    """'none' or 'balanced' (inverse class frequency of the training shards)."""
    label_smoothing: float = 0.0
    attribute_weight: float = 1.0
    """Weight of the CCC loss next to the cross-entropy."""
    classification_weight: float = 1.0


@METHODS.register("supervised")
class Supervised(Method):
    Options = SupervisedOptions

    def __init__(self, options: SupervisedOptions, ctx: TrainingContext) -> None:
        super().__init__(options, ctx)
        if options.class_weight not in ("none", "balanced"):

            raise ConfigError(f"method.class_weight must be 'none' or 'balanced', got {options.class_weight!r}")
        self.weight: torch.Tensor | None = None
        if options.class_weight == "balanced":
            counts = ctx.class_counts()
            weight = counts.sum() / (len(counts) * counts.clamp(min=1))
            self.weight = weight.to(ctx.device)

    def loss(self, outputs: dict[str, torch.Tensor], targets: Any) -> tuple[torch.Tensor, dict[str, float]]:
        logs: dict[str, float] = {}
        total = outputs["logits"].sum() * 0.0  # keeps every rank's graph alive for DDP
        has_label = targets.label != IGNORE
        if has_label.any() and self.options.classification_weight > 0:
            ce = F.cross_entropy(outputs["logits"][has_label].float(), targets.label[has_label],
                                 weight=self.weight, label_smoothing=self.options.label_smoothing)
            total = total + self.options.classification_weight * ce
            logs["ce"] = float(ce.detach())
        if self.ctx.job.data.attributes and self.options.attribute_weight > 0:
            ccc = ccc_loss(outputs["attributes"].float(), targets.attributes)
            total = total + self.options.attribute_weight * ccc
            logs["ccc_loss"] = float(ccc.detach())
        return total, logs
