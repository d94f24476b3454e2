"""Utterance statistics network: functionals of every feature band, then a small MLP.

The classical SER baseline (openSMILE-style functionals and a shallow classifier) as a model
of the toolkit: :class:`ssl_ser.functionals.Functionals` of the input map (per-band mean,
standard deviation, quantiles, mean absolute change; the level's mean, sd and maximum; with
``cepstra: N`` the same of the first N cepstral coefficients). A BatchNorm without affine
weights standardises them (the scales of a mean and of a change differ by orders of
magnitude), then dropout and an MLP (``hidden: []``: multinomial logistic regression).

Why it is in the toolkit: on RAVDESS under EmoBox's folds, a linear classifier on these
functionals of speaker-normalised log-mels beat every CNN recipe by about 0.1 UA
(``bench/recipes/ravdess_emobox``), so it is both a strong recipe and the baseline a CNN must
beat to show that it learns more than the level distribution of each band.
"""

from __future__ import annotations

from torch import Tensor, nn

from ssl_ser.functionals import QUANTILES, Functionals
from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel
from ssl_ser.models.layers import RowNorm, mlp_head


@MODELS.register("utterance_stats")
class UtteranceStats(SERModel):
    frontend = "logmel"

    def __init__(self, in_features: int, num_classes: int, quantiles: tuple[float, ...] = QUANTILES,
                 hidden: tuple[int, ...] = (256,), dropout: float = 0.3, cepstra: int = 0) -> None:
        super().__init__(in_features, num_classes)
        self.stats = Functionals(in_features, tuple(quantiles), cepstra, owner="model 'utterance_stats'")
        self.num_functionals = self.stats.num_functionals
        self.standardise = RowNorm(self.num_functionals, affine=False)
        self.mlp, self.embedding_dim = mlp_head(self.num_functionals, tuple(hidden), dropout)
        self.classifier: nn.Module = nn.Linear(self.embedding_dim, num_classes)

    def functionals(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``[B, F, T] -> [B, num_functionals]``, the statistics before standardisation."""
        return self.stats(*self.check_input(x, lengths))

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        embedding = self.mlp(self.standardise(self.functionals(x, lengths)))
        return {"embedding": embedding, "logits": self.classifier(embedding)}
