"""The interface between the loop and a training objective: a method is one module with a
:class:`Method` subclass registered under a name (``METHODS.register("name")``), written
against :class:`ssl_ser.context.TrainingContext` only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ssl_ser.config import config
from ssl_ser.metrics import HEADLINE_METRICS
from ssl_ser.registry import Registry

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext
    from ssl_ser.job import JobConfig
    from ssl_ser.targets import Targets

METHODS: Registry[type[Method]] = Registry("method", package="ssl_ser.methods")



@config
class NoOptions:
    pass


class Method:
    """A training objective. Subclasses override what differs; the defaults train and score
    an utterance classifier (and attribute regressor when ``data.attributes`` is set)."""

    Options: ClassVar[type] = NoOptions
    #: Extra label spaces the method needs besides the main one ("speaker", "corpus").
    extra_label_spaces: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Any, ctx: TrainingContext) -> None:
        self.options = options
        self.ctx = ctx

    # --- construction -----------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        """Head sizes etc. passed to the model constructor besides the config's options."""
        return {"num_classes": self.ctx.labels.num_classes}

    @classmethod
    def metric_names(cls, job: JobConfig) -> set[str]:
        """Names ``train.metric`` may pick (validated before any worker starts)."""
        names = {"loss", *HEADLINE_METRICS}
        attrs = job.data.attributes
        if attrs:
            names |= {"ccc_mean", *(f"ccc_{a}" for a in attrs)}
        return names

    def training_sources(self) -> list[tuple[list[str], float]]:
        """(shard specs, weight) mixed into the training stream."""
        return [(self.ctx.job.data.train, 1.0)]

    # --- per epoch --------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        return {}

    def loss(self, outputs: dict[str, torch.Tensor], targets: Targets) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def validate(self, epoch: int) -> dict[str, float]:
        """Scores on the validation sets (rank 0's numbers are reported)."""
        if not self.ctx.job.data.valid:
            return {}
        return self.ctx.evaluate(self.ctx.job.data.valid).metrics

    # --- checkpointed state -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
