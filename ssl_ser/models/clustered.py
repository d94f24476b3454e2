"""Any registered model with DeepEmoCluster's two extra heads on its embedding.

``model: {name: clustered, base: {name: pyresnet, size: tiny}, num_clusters: 16}`` builds the
``base`` model and adds, on its ``embedding``:

- ``cluster_logits`` ``[B, K]``: the pseudo-label classifier (:meth:`reset_cluster_head`
  replaces it, as DeepCluster does every epoch);
- ``attributes`` ``[B, 3]``: an arousal/valence/dominance regressor.

So the ``deepemocluster`` method can train any backbone, and a semi-supervised run can be
compared with the supervised run of the very same network (``bench/recipes/ravdess_semi``).
The base's outputs (``logits``, ``embedding``, anything else) pass through unchanged.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ssl_ser.config import ConfigError
from ssl_ser.models import MODELS, build_model
from ssl_ser.models.base import SERModel, fresh_layer


@MODELS.register("clustered")
class Clustered(SERModel):
    frontend = "logmel"  # the default base's (pyresnet); the job's frontend section decides
    classifier_prefix = "base.classifier."

    def __init__(self, in_features: int, num_classes: int, base: dict[str, Any] | None = None,
                 num_clusters: int = 10) -> None:
        super().__init__(in_features, num_classes)
        options = dict(base if base is not None else {"name": "pyresnet", "size": "tiny"})
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError("model 'clustered': base needs a name, e.g. base: {name: pyresnet, size: tiny}")
        if name == "clustered" or hasattr(MODELS.get(name), "reset_cluster_head"):
            raise ConfigError(f"model 'clustered': base {name!r} already has a cluster head; use it directly")
        cls = MODELS.get(name)
        if cls.segment_seconds is not None:
            raise ConfigError(f"model 'clustered': base {name!r} scores segments; the cluster head needs "
                              f"one embedding per utterance")
        if cls.classifier_prefix != "classifier.":
            raise ConfigError(f"model 'clustered': base {name!r} keeps its classifier at "
                              f"{cls.classifier_prefix!r}, not 'classifier.'")
        self.base = build_model(name, in_features=in_features, num_classes=num_classes, **options)
        self.embedding_dim = self.base.embedding_dim
        self.cluster_head = nn.Linear(self.embedding_dim, num_clusters)
        self.attributes = nn.Linear(self.embedding_dim, 3)

    @property
    def num_clusters(self) -> int:
        return self.cluster_head.out_features

    def reset_cluster_head(self, k: int) -> None:
        """A new cluster classifier with ``k`` outputs and fresh weights (optimisers must pick it up)."""
        self.cluster_head = fresh_layer(self.cluster_head, k)  # type: ignore[assignment]

    def reset_classifier(self, num_classes: int) -> None:
        self.base.reset_classifier(num_classes)
        self.num_classes = num_classes

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.base.embed(x, lengths)

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        out = dict(self.base(x, lengths))
        embedding = out["embedding"]
        out["cluster_logits"] = self.cluster_head(embedding)
        out["attributes"] = self.attributes(embedding)
        return out
