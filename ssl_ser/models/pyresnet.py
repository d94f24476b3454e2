"""PyResNet (LSSED): a bottleneck ResNet with pyramid convolutions, pooled over time only.

Input: a 128-band log-mel map ``[B, 128, T]`` (``logmel``). The network is ResNet-50/101/152
(bottleneck counts ``[3, 4, 6, 3]`` / ``[3, 4, 23, 3]`` / ``[3, 8, 36, 3]``, widths 64-512,
expansion 4) in which the middle (second) convolution of every bottleneck is a pyramid
convolution (PyConv, Duta et al. 2020): parallel convolutions with growing kernels and groups
whose outputs are concatenated. As in PyConvResNet, the pyramid shrinks with depth: kernels
3/5/7/9 with groups 1/4/8/16 in stage 1, 3/5/7 with 1/4/8 in stage 2, 3/5 with 1/4 in stage 3
and a plain 3x3 in stage 4; the stem is a 7x7 stride-2 convolution and every stage starts
with stride 2. Pooling averages the last map over (valid) time only and keeps frequency: the
embedding is the flattened ``[C, F']`` map (``2048 x 4`` for 128 mel bands).

Sizes: ``full`` (with ``depth`` 50, 101 or 152); ``tiny`` = one bottleneck per stage with
widths 8-16 (groups are reduced to divide the channel counts). ``masked_norm: true`` makes
every BatchNorm's training statistics count the valid frames only
(:class:`~ssl_ser.models.layers.MaskedBatchNorm2d`); off by default (PyTorch's BatchNorm).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ssl_ser.config import ConfigError
from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel, from_preset
from ssl_ser.models.layers import MaskedBatchNorm2d, conv_lengths, mask_time, masked_mean

DEPTHS: dict[int, tuple[int, ...]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

#: (kernels, groups) of the pyramid convolution in each stage.
PYRAMIDS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((3, 5, 7, 9), (1, 4, 8, 16)), ((3, 5, 7), (1, 4, 8)), ((3, 5), (1, 4)), ((3,), (1,)))

EXPANSION = 4

PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(widths=(64, 128, 256, 512), stem_channels=64),
    "tiny": dict(widths=(8, 8, 16, 16), stem_channels=8, blocks=(1, 1, 1, 1)),
}


def pyramid_split(channels: int, levels: int) -> list[int]:
    """Output channels per pyramid level, as PyConv splits them (3 levels: 1/4, 1/4, 1/2)."""
    share = channels // 4 if levels >= 3 else channels // levels
    sizes = [share] * (levels - 1)
    return sizes + [channels - sum(sizes)]


class PyConv2d(nn.Module):
    """Pyramid convolution: parallel convolutions of several kernel sizes and groups, concatenated."""

    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...], groups: tuple[int, ...],
                 stride: int) -> None:
        super().__init__()
        self.levels = nn.ModuleList()
        for kernel, group, out in zip(kernels, groups, pyramid_split(cout, len(kernels)), strict=True):
            group = math.gcd(group, cin, out)  # narrow (tiny) networks cannot keep every group count
            self.levels.append(nn.Conv2d(cin, out, kernel, stride=stride, padding=kernel // 2, groups=group,
                                         bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([level(x) for level in self.levels], dim=1)


class PyBottleneck(nn.Module):
    """1x1 reduce -> pyramid convolution (strided) -> 1x1 expand, with a residual shortcut."""

    def __init__(self, cin: int, planes: int, stride: int, kernels: tuple[int, ...],
                 groups: tuple[int, ...], masked_norm: bool = False) -> None:
        super().__init__()
        cout = planes * EXPANSION
        self.stride = stride
        self.masked_norm = masked_norm
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.norm1 = MaskedBatchNorm2d(planes)
        self.conv2 = PyConv2d(planes, planes, kernels, groups, stride)
        self.norm2 = MaskedBatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.norm3 = MaskedBatchNorm2d(cout)
        self.shortcut: nn.Sequential | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), MaskedBatchNorm2d(cout))

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        counted = lengths if self.masked_norm else None  # the frames BatchNorm's statistics count
        y = mask_time(torch.relu(self.norm1(self.conv1(x), counted)), lengths)
        lengths = conv_lengths(lengths, 3, self.stride, 1)  # the same for every odd kernel
        counted = lengths if self.masked_norm else None
        y = mask_time(torch.relu(self.norm2(self.conv2(y), counted)), lengths)
        shortcut = x if self.shortcut is None else self.shortcut[1](self.shortcut[0](x), counted)
        y = torch.relu(self.norm3(self.conv3(y), counted) + shortcut)
        return mask_time(y, lengths), lengths


@MODELS.register("pyresnet")
class PyResNet(SERModel):
    frontend = "logmel"

    def __init__(self, in_features: int, num_classes: int, size: Literal["tiny", "full"] = "full",
                 depth: Literal[50, 101, 152] = 50, widths: tuple[int, ...] | None = None,
                 blocks: tuple[int, ...] | None = None, stem_channels: int | None = None,
                 dropout: float = 0.0, masked_norm: bool = False) -> None:
        super().__init__(in_features, num_classes)
        self.masked_norm = masked_norm
        arch = from_preset(PRESETS, size, "pyresnet", widths=widths, blocks=blocks, stem_channels=stem_channels)
        widths = tuple(arch["widths"])
        blocks = tuple(arch.get("blocks", DEPTHS[depth]))
        if not len(widths) == len(blocks) == len(PYRAMIDS):

            raise ConfigError(f"model 'pyresnet': widths and blocks need {len(PYRAMIDS)} entries (one per stage), "
                              f"got {widths} and {blocks}")
        self.depth = depth
        stem = arch["stem_channels"]
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 7, stride=2, padding=3, bias=False), MaskedBatchNorm2d(stem),
                                  nn.ReLU())
        height = conv_lengths(in_features, 7, 2, 3)
        self.stages = nn.ModuleList()
        cin = stem
        for planes, count, (kernels, groups) in zip(widths, blocks, PYRAMIDS):
            stage = nn.ModuleList()
            for j in range(count):
                stage.append(PyBottleneck(cin, planes, 2 if j == 0 else 1, kernels, groups, masked_norm))
                cin = planes * EXPANSION
            height = conv_lengths(height, 3, 2, 1)
            self.stages.append(stage)
        self.embedding_dim = cin * int(height)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        x, lengths = self.check_input(x, lengths)
        lengths = conv_lengths(lengths, 7, 2, 3)
        conv, norm, relu = self.stem
        x = mask_time(relu(norm(conv(x.unsqueeze(1)), lengths if self.masked_norm else None)), lengths)
        for stage in self.stages:
            for block in stage.children():
                x, lengths = block(x, lengths)
        return masked_mean(x, lengths).flatten(1)  # average over time, keep channels x frequency

    def residual_norms(self) -> list[nn.Module]:
        return [block.norm3 for stage in self.stages for block in stage.children()
                if isinstance(block, PyBottleneck)]

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        embedding = self.embed(x, lengths)
        return {"embedding": embedding, "logits": self.classifier(self.dropout(embedding))}
