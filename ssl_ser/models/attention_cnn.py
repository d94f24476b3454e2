"""Attention-pooling CNN of Li et al. (2018) over mu-law spectrogram segments.

Input: a 2-s segment's ``[B, 400, 200]`` map (frequency x time, ``spectrogram_mulaw``).
Two parallel first convolutions see it differently: Conv1a with a 2 x 8 kernel (frequency x
time: temporal context) and Conv1b with 10 x 2 (spectral context); their outputs are
concatenated and go through four [3 x 3 conv, batch norm, ReLU, 2 x 2 max pooling] layers.
Attention pooling then turns the final map ``X`` (``C`` channels over positions ``p``) into
class scores: a 1 x 1 convolution gives one class-specific top-down map per class
(``TD_k = a_k . X``), another 1 x 1 convolution a class-agnostic bottom-up map passed through
a softmax over all (valid) positions (``B = softmax_p(b . X)``), and the score of class ``k``
is the spatial average of ``TD_k * B`` weighted by the softmax, ``sum_p TD_k(p) B(p)``
(the attention weights sum to 1, which keeps the scores on the logit scale). The embedding
is the same attention-weighted average of ``X`` itself, ``sum_p B(p) X(p)`` (``[B, C]``), so
the logits are the top-down layer applied to the embedding.

Sizes: ``full`` = 8 + 8 first-layer filters and 32/48/64/80 filters in the four 3x3 layers
(our reading of the paper's widths; configurable); ``tiny`` = 2 + 2 and 4/4/8/8.
Padded frames are masked after every layer and excluded from the softmax.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel, from_preset
from ssl_ser.models.layers import conv2d_time_lengths, mask_time, same_conv2d, time_mask

PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(first_channels=8, channels=(32, 48, 64, 80)),
    "tiny": dict(first_channels=2, channels=(4, 4, 8, 8)),
}


@MODELS.register("attention_cnn")
class AttentionCNN(SERModel):
    frontend = "spectrogram_mulaw"
    segment_seconds = 2.0
    classifier_prefix = "top_down."

    def __init__(self, in_features: int, num_classes: int, size: Literal["tiny", "full"] = "full",
                 first_channels: int | None = None, channels: tuple[int, ...] | None = None) -> None:
        super().__init__(in_features, num_classes)
        arch = from_preset(PRESETS, size, "attention_cnn", first_channels=first_channels, channels=channels)
        first, widths = arch["first_channels"], tuple(arch["channels"])
        # "Same" padding keeps both branches aligned so their outputs can be concatenated.
        self.conv1a = same_conv2d(1, first, (2, 8))
        self.conv1b = same_conv2d(1, first, (10, 2))
        self.norm1 = nn.BatchNorm2d(2 * first)
        self.convs = nn.ModuleList()
        cin = 2 * first
        for width in widths:
            self.convs.append(nn.Sequential(nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                            nn.ReLU()))
            cin = width
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.top_down = nn.Conv2d(cin, num_classes, 1)
        self.bottom_up = nn.Conv2d(cin, 1, 1)
        self.embedding_dim = cin

    def feature_map(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The last convolutional map ``[B, C, F', T']`` and its time lengths."""
        x, lengths = self.check_input(x, lengths)
        x = x.unsqueeze(1)
        x = torch.cat([self.conv1a(x), self.conv1b(x)], dim=1)
        x = mask_time(torch.relu(self.norm1(x)), lengths)
        for block in self.convs:
            # Mask before pooling too, so no pooling window mixes a padded frame into a valid one.
            x = mask_time(block(x), lengths)
            lengths = conv2d_time_lengths(self.pool, lengths)
            x = mask_time(self.pool(x), lengths)
        return x, lengths

    def attention(self, maps: Tensor, lengths: Tensor) -> Tensor:
        """Bottom-up attention ``[B, F', T']``: softmax over all valid positions (sums to 1)."""
        scores = self.bottom_up(maps).squeeze(1)
        scores = scores.masked_fill(~time_mask(lengths, maps.shape[-1])[:, None, :], float("-inf"))
        return scores.flatten(1).softmax(-1).view_as(scores)

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        maps, lengths = self.feature_map(x, lengths)
        weights = self.attention(maps, lengths).unsqueeze(1)
        logits = (self.top_down(maps) * weights).sum(dim=(2, 3))
        embedding = (maps * weights).sum(dim=(2, 3))
        return {"embedding": embedding, "logits": logits}

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        maps, lengths = self.feature_map(x, lengths)
        return (maps * self.attention(maps, lengths).unsqueeze(1)).sum(dim=(2, 3))
