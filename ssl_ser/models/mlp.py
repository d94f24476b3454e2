"""An MLP over utterance vectors: the classifier for the ``functionals`` front-end.

``frontend: {name: functionals, ...}`` turns each utterance into one vector (a one-frame map
``[B, D, 1]``); this model standardises it (a BatchNorm without affine weights), then applies
dropout and the hidden layers of ``utterance_stats``'s head. A longer input is mean-pooled over
its valid frames first, so any front-end works (on frame-level features that is a weak model:
use ``utterance_stats`` there).
"""

from __future__ import annotations

from torch import Tensor, nn

from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel
from ssl_ser.models.layers import RowNorm, masked_mean, mlp_head


@MODELS.register("mlp")
class UtteranceMLP(SERModel):
    frontend = "functionals"

    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...] = (512,),
                 dropout: float = 0.5) -> None:
        super().__init__(in_features, num_classes)
        self.standardise = RowNorm(in_features, affine=False)
        self.mlp, self.embedding_dim = mlp_head(in_features, tuple(hidden), dropout)
        self.classifier: nn.Module = nn.Linear(self.embedding_dim, num_classes)

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        embedding = self.mlp(self.standardise(masked_mean(*self.check_input(x, lengths))))
        return {"embedding": embedding, "logits": self.classifier(embedding)}
