"""Supervised SER: cross-entropy on the emotion classes, plus a CCC loss on the emotional
attributes when ``data.attributes`` is set (for models with an attribute head)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ssl_ser.config import config
from ssl_ser.labels import IGNORE
from ssl_ser.methods.base import METHODS, Method
from ssl_ser.methods.classification import ClassificationLoss, ClassificationLossOptions
from ssl_ser.metrics import ccc_loss

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext


@config
class SupervisedOptions(ClassificationLossOptions):
    attribute_weight: float = 1.0
    """Weight of the CCC loss next to the cross-entropy."""
    classification_weight: float = 1.0


@METHODS.register("supervised")
class Supervised(Method):
    Options = SupervisedOptions

    def __init__(self, options: SupervisedOptions, ctx: TrainingContext) -> None:
        super().__init__(options, ctx)
        self.cross_entropy = ClassificationLoss(options, ctx)

    def loss(self, outputs: dict[str, torch.Tensor], targets: Any) -> tuple[torch.Tensor, dict[str, float]]:
        logs: dict[str, float] = {}
        total = outputs["logits"].sum() * 0.0  # keeps every rank's graph alive for DDP
        has_label = targets.label != IGNORE
        if has_label.any() and self.options.classification_weight > 0:
            ce = self.cross_entropy(outputs["logits"][has_label], targets.label[has_label])
            total = total + self.options.classification_weight * ce
            logs["ce"] = float(ce.detach())
        if self.ctx.job.data.attributes and self.options.attribute_weight > 0:
            ccc = ccc_loss(outputs["attributes"].float(), targets.attributes)
            total = total + self.options.attribute_weight * ccc
            logs["ccc_loss"] = float(ccc.detach())
        return total, logs
