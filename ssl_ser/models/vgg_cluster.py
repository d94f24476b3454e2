"""VGG-16 with a re-initialisable cluster head and an attribute regressor (DeepEmoCluster).

Input: a 128-band log-mel map ``[B, 128, T]`` (``logmel_deepemocluster``: z-normalised,
clipped to +/-3). The trunk is VGG-16's convolutional part with batch norm (13 3x3 layers in
stages of 2, 2, 3, 3, 3 with 64, 128, 256, 512, 512 filters, 2x2 max pooling after each
stage). Its map ``[B, C, F', T']`` is averaged over the valid frames (frequency is kept by
flattening it into the channels, so any utterance length works) and passed through VGG's two
fully connected layers, as in DeepCluster; their output is the embedding that is clustered.
Heads on the embedding:

- ``cluster_logits`` ``[B, K]``: the pseudo-label classifier; :meth:`reset_cluster_head`
  replaces it (new K, new weights), as DeepCluster does every epoch;
- ``attributes`` ``[B, 3]``: arousal, valence, dominance regressor;
- ``logits`` ``[B, num_classes]``: categorical emotion classifier.

Sizes: ``full`` = VGG-16 (4096-unit fully connected layers, dropout 0.5 before each as in
VGG); ``tiny`` = the same 13 layers with 4-16 filters and 32 units, and no dropout (ours: 0.5
on 64 -> 32 -> 32 units kept the tiny network from fitting RAVDESS, validation UA 0.23 against
0.34 without, bench/recipes/ravdess_emobox section 16). The default K (``num_clusters=10``) is
ours.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from ssl_ser.config import ConfigError
from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel, fresh_layer, from_preset
from ssl_ser.models.layers import (
    conv2d_time_lengths,
    conv_lengths,
    mask_time,
    masked_mean,
)

#: Convolutions per VGG-16 stage.
VGG16_STAGES = (2, 2, 3, 3, 3)

PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(widths=(64, 128, 256, 512, 512), fc_dim=4096, dropout=0.5),
    "tiny": dict(widths=(4, 8, 8, 16, 16), fc_dim=32, dropout=0.0),
}


@MODELS.register("vgg16_cluster")
class VGG16Cluster(SERModel):
    frontend = "logmel_deepemocluster"

    def __init__(self, in_features: int, num_classes: int, size: Literal["tiny", "full"] = "full",
                 widths: tuple[int, ...] | None = None, fc_dim: int | None = None, num_clusters: int = 10,
                 dropout: float | None = None) -> None:
        super().__init__(in_features, num_classes)
        arch = from_preset(PRESETS, size, "vgg16_cluster", widths=widths, fc_dim=fc_dim, dropout=dropout)
        widths = tuple(arch["widths"])
        if len(widths) != len(VGG16_STAGES):

            raise ConfigError(f"model 'vgg16_cluster': widths needs one width per VGG-16 stage "
                              f"({len(VGG16_STAGES)}), got {widths}")
        self.stages = nn.ModuleList()
        cin, height = 1, in_features
        for width, count in zip(widths, VGG16_STAGES):
            layers: list[nn.Module] = []
            for _ in range(count):
                layers.append(nn.Sequential(nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                            nn.ReLU()))
                cin = width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            self.stages.append(nn.ModuleList(layers))
            height = conv_lengths(height, 2, 2, ceil_mode=True)
        self.embedding_dim = int(arch["fc_dim"])
        p = float(arch["dropout"])
        self.fc = nn.Sequential(nn.Dropout(p), nn.Linear(cin * height, self.embedding_dim), nn.ReLU(),
                                nn.Dropout(p), nn.Linear(self.embedding_dim, self.embedding_dim), nn.ReLU())
        self.cluster_head = nn.Linear(self.embedding_dim, num_clusters)
        self.attributes = nn.Linear(self.embedding_dim, 3)
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

    @property
    def num_clusters(self) -> int:
        return self.cluster_head.out_features

    def reset_cluster_head(self, k: int) -> None:
        """A new cluster classifier with ``k`` outputs and fresh weights (optimisers must pick it up)."""
        self.cluster_head = fresh_layer(self.cluster_head, k)  # type: ignore[assignment]

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        x, lengths = self.check_input(x, lengths)
        x = x.unsqueeze(1)
        for stage in self.stages:
            for layer in stage.children():
                x = layer(x)
                if isinstance(layer, nn.MaxPool2d):
                    lengths = conv2d_time_lengths(layer, lengths)
                x = mask_time(x, lengths)
        return self.fc(masked_mean(x.flatten(1, 2), lengths))

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        embedding = self.embed(x, lengths)
        return {"embedding": embedding, "logits": self.classifier(embedding),
                "cluster_logits": self.cluster_head(embedding), "attributes": self.attributes(embedding)}
