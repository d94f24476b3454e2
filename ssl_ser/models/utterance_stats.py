"""Utterance statistics network: functionals of every feature band, then a small MLP.

The classical SER baseline (openSMILE-style functionals and a shallow classifier) as a model
of the toolkit. For each of the F input bands, over the utterance's valid frames: the mean,
the standard deviation, the given quantiles (linear interpolation, as ``torch.quantile``) and
the mean absolute frame-to-frame change; for the band-averaged level: its mean, standard
deviation and maximum. With ``cepstra: N``, the same band functionals are also taken of the
first N cepstral coefficients of each frame (an orthonormal DCT over the bands: MFCCs when the
input is a log-mel map), whose quantiles describe the spectral envelope's shape rather than
each band's level. A BatchNorm without affine weights standardises these functionals (the
scales of a mean and of a change differ by orders of magnitude), then dropout and an MLP
(``hidden: []``: multinomial logistic regression on the functionals).

Why it is in the toolkit: on RAVDESS under EmoBox's folds, a linear classifier on these
functionals of speaker-normalised log-mels beat every CNN recipe by about 0.1 UA
(``bench/recipes/ravdess_emobox``), so it is both a strong recipe and the baseline a CNN must
beat to show that it learns more than the level distribution of each band.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import Tensor, nn

from ssl_ser.config import ConfigError
from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel
from ssl_ser.models.layers import masked_mean, time_mask


def masked_quantiles(x: Tensor, lengths: Tensor, qs: Tensor) -> Tensor:
    """``[B, F, T] -> [B, F, Q]``: quantiles ``qs`` of each row's valid frames, per feature,
    interpolated linearly between order statistics (``torch.quantile``'s default)."""
    valid = time_mask(lengths, x.shape[-1])[:, None, :]
    ordered = x.masked_fill(~valid, float("inf")).sort(-1).values
    position = qs.to(x.dtype)[None, :] * (lengths[:, None] - 1).to(x.dtype)  # [B, Q]
    below = position.floor().long()
    above = position.ceil().long()
    frac = (position - below.to(x.dtype))[:, None, :]
    index = lambda i: i[:, None, :].expand(-1, x.shape[1], -1)  # noqa: E731
    low, high = ordered.gather(-1, index(below)), ordered.gather(-1, index(above))
    return low + frac * (high - low)


class RowNorm(nn.BatchNorm1d):
    """BatchNorm over ``[B, C]`` rows that also takes a training batch of one row (the last
    batch of an epoch can be one utterance), normalising it with the running statistics."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


@MODELS.register("utterance_stats")
class UtteranceStats(SERModel):
    frontend = "logmel"
    qs: Tensor
    dct: Tensor | None

    def __init__(self, in_features: int, num_classes: int,
                 quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95),
                 hidden: tuple[int, ...] = (256,), dropout: float = 0.3, cepstra: int = 0) -> None:
        super().__init__(in_features, num_classes)
        if any(not 0.0 <= q <= 1.0 for q in quantiles):
            raise ConfigError(f"model 'utterance_stats': quantiles must lie in [0, 1], got {quantiles}")
        if not 0 <= cepstra <= in_features:
            raise ConfigError(f"model 'utterance_stats': cepstra must lie in [0, {in_features}] (the input's "
                              f"bands), got {cepstra}")
        self.register_buffer("qs", torch.tensor(quantiles, dtype=torch.float32), persistent=False)
        self.register_buffer("dct", AF.create_dct(cepstra, in_features, "ortho") if cepstra else None,
                             persistent=False)
        self.num_functionals = (in_features + cepstra) * (3 + len(quantiles)) + 3
        self.standardise = RowNorm(self.num_functionals, affine=False)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = self.num_functionals
        for h in hidden:
            layers += [nn.Linear(width, h), RowNorm(h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.mlp = nn.Sequential(*layers)
        self.embedding_dim = width
        self.classifier: nn.Module = nn.Linear(width, num_classes)

    def functionals(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``[B, F, T] -> [B, num_functionals]``, the statistics before standardisation."""
        x, lengths = self.check_input(x, lengths)
        level = x.mean(1)  # [B, T]: padded frames are zero here and masked below
        if self.dct is not None:  # padded frames stay zero
            x = torch.cat([x, torch.einsum("bft,fc->bct", x, self.dct.to(x.dtype))], 1)
        valid = time_mask(lengths, x.shape[-1])[:, None, :].to(x.dtype)
        count = lengths[:, None].to(x.dtype)
        mean = masked_mean(x, lengths)
        std = ((((x - mean[..., None]) * valid) ** 2).sum(-1) / count).clamp(min=1e-8).sqrt()
        change = ((x[..., 1:] - x[..., :-1]).abs() * valid[..., 1:]).sum(-1) / (count - 1).clamp(min=1)
        level_mean = masked_mean(level, lengths)[:, None]
        level_std = ((((level - level_mean) * valid[:, 0]) ** 2).sum(-1, keepdim=True) / count).clamp(
            min=1e-8).sqrt()
        level_max = level.masked_fill(valid[:, 0] == 0, float("-inf")).amax(-1, keepdim=True)
        quantiles = masked_quantiles(x, lengths, self.qs).flatten(1)
        return torch.cat([mean, std, quantiles, change, level_mean, level_std, level_max], 1)

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        embedding = self.mlp(self.standardise(self.functionals(x, lengths)))
        return {"embedding": embedding, "logits": self.classifier(embedding)}
