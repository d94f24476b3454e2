"""ResNet-34 x-vector network with multi-head attentive pooling (the CopyPaste paper's model).

The MFCC map ``[B, 23, T]`` is one input channel to a ResNet-34 of 2-D residual blocks
(block counts ``[3, 4, 6, 3]``, stage strides ``1, 2, 2, 2`` in both axes). The output map
``[B, C, F', T']`` is read as a sequence of ``C * F'``-dim frames, pooled by
:class:`~ssl_ser.models.pooling.MultiHeadAttentivePooling`, projected by a fully connected
embedding layer (the x-vector) and classified. The same network serves speaker pretraining
(``num_classes`` = speakers) and emotion fine-tuning (:meth:`reset_classifier`).

Sizes: ``full`` = ResNet-34 widths 64-512; ``thin`` = widths 16-128 (the "thin ResNet-34"
for small data); ``tiny`` = one block per stage, widths 4-16 (tests). Head count and
embedding size are our defaults (32 heads, 256 dims), configurable.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from ssl_ser.config import ConfigError
from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel, from_preset
from ssl_ser.models.layers import ConvBlock, conv_lengths, mask_time
from ssl_ser.models.pooling import MultiHeadAttentivePooling

PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(widths=(64, 128, 256, 512), blocks=(3, 4, 6, 3), num_heads=32, embedding_dim=256),
    "thin": dict(widths=(16, 32, 64, 128), blocks=(3, 4, 6, 3), num_heads=32, embedding_dim=256),
    "tiny": dict(widths=(4, 8, 8, 16), blocks=(1, 1, 1, 1), num_heads=2, embedding_dim=16),
}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        lengths = conv_lengths(lengths, 3, self.stride, 1)
        y = mask_time(torch.relu(self.norm1(self.conv1(x))), lengths)
        y = torch.relu(self.norm2(self.conv2(y)) + self.shortcut(x))
        return mask_time(y, lengths), lengths


def output_height(in_features: int, num_stages: int) -> int:
    """Feature-axis size after the stem and ``num_stages`` stages (all but the first stride 2)."""
    for _ in range(num_stages - 1):
        in_features = conv_lengths(in_features, 3, 2, 1)
    return in_features


@MODELS.register("resnet34_xvector")
class ResNetXVector(SERModel):
    frontend = "mfcc"

    def __init__(self, in_features: int, num_classes: int, size: Literal["tiny", "thin", "full"] = "full",
                 widths: tuple[int, ...] | None = None, blocks: tuple[int, ...] | None = None,
                 num_heads: int | None = None, embedding_dim: int | None = None) -> None:
        super().__init__(in_features, num_classes)
        arch = from_preset(PRESETS, size, "resnet34_xvector", widths=widths, blocks=blocks,
                           num_heads=num_heads, embedding_dim=embedding_dim)
        widths, blocks = tuple(arch["widths"]), tuple(arch["blocks"])
        if len(widths) != len(blocks):

            raise ConfigError(f"model 'resnet34_xvector': widths {widths} and blocks {blocks} differ in length")
        self.stem = ConvBlock(1, widths[0])
        self.stages = nn.ModuleList()
        cin = widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            stage = nn.ModuleList()
            for j in range(count):
                stage.append(BasicBlock(cin, width, stride=2 if i > 0 and j == 0 else 1))
                cin = width
            self.stages.append(stage)
        frame_dim = widths[-1] * output_height(in_features, len(widths))
        self.pooling = MultiHeadAttentivePooling(frame_dim, int(arch["num_heads"]))
        self.embedding_dim = int(arch["embedding_dim"])
        self.embedding = nn.Linear(self.pooling.output_dim, self.embedding_dim)
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

    def frames(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The trunk's output as a frame sequence ``[B, C * F', T']`` with its lengths."""
        x, lengths = self.check_input(x, lengths)
        maps, lengths = self.stem(x.unsqueeze(1), lengths)
        for stage in self.stages:
            for block in stage.children():
                maps, lengths = block(maps, lengths)
        return maps.flatten(1, 2), lengths

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.embedding(self.pooling(*self.frames(x, lengths)))

    def residual_norms(self) -> list[nn.Module]:
        return [block.norm2 for stage in self.stages for block in stage.children()
                if isinstance(block, BasicBlock)]

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        embedding = self.embed(x, lengths)
        return {"embedding": embedding, "logits": self.classifier(torch.relu(embedding))}
