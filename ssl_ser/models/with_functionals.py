"""Any utterance model trained jointly with the utterance statistics network on the same features.

``model: {name: with_functionals, base: {name: pyresnet, size: tiny}, functionals: {hidden: [256]}}``
builds both on the job's front-end, drops their final layers and puts one classifier on their
two embeddings side by side (the model's embedding), trained as one model.

Why: on RAVDESS the per-band functionals alone beat the CNN recipes (``utterance_stats``), so
a CNN that must also rediscover them from 22k parameters and 960 clips wastes its capacity;
one classifier over both lets the CNN add what the functionals miss. Only the base's embedding
is used (its other outputs, if any, are not computed).

With ``bands: F`` the functionals come from the front-end instead: ``frontend: {name:
plus_functionals, ...}`` appends them to its base's F bands, where ``speaker_norm`` standardises
each one per speaker, which the model cannot do (it never sees the speaker). The base then takes
the first F rows, and an ``mlp`` head (options ``functionals``) takes the rest.

A segment model (``attention_cnn``) as the base scores whatever the job gives it: with
``plus_functionals`` that is whole utterances (the front-end refuses ``data.segment``), and its
attention pooling spans every valid frame.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssl_ser.config import ConfigError
from ssl_ser.models import MODELS, build_model
from ssl_ser.models.base import SERModel
from ssl_ser.models.mlp import UtteranceMLP
from ssl_ser.models.utterance_stats import UtteranceStats


@MODELS.register("with_functionals")
class WithFunctionals(SERModel):
    frontend = "logmel"  # the default base's (pyresnet); the job's frontend section decides

    def __init__(self, in_features: int, num_classes: int, base: dict[str, Any] | None = None,
                 functionals: dict[str, Any] | None = None, bands: int | None = None) -> None:
        super().__init__(in_features, num_classes)
        if bands is not None and not 0 < bands < in_features:
            raise ConfigError(f"model 'with_functionals': bands must lie in [1, {in_features - 1}] (the "
                              f"plus_functionals front-end's base bands), got {bands}")
        self.bands = bands
        options = dict(base if base is not None else {"name": "pyresnet", "size": "tiny"})
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError("model 'with_functionals': base needs a name, e.g. base: {name: pyresnet, size: tiny}")
        if name in ("with_functionals", "utterance_stats"):
            raise ConfigError(f"model 'with_functionals': base {name!r} already is the functionals network")
        self.base = build_model(name, in_features=bands or in_features, num_classes=num_classes, **options)
        self.functionals = (build_model("mlp", in_features=in_features - bands, num_classes=num_classes,
                                        **(functionals or {})) if bands
                            else build_model("utterance_stats", in_features=in_features, num_classes=num_classes,
                                             **(functionals or {})))
        assert isinstance(self.functionals, UtteranceMLP | UtteranceStats)
        # their own final layers would get no gradient; the joint classifier replaces them
        self.base.classifier = nn.Identity()
        self.functionals.classifier = nn.Identity()
        self.embedding_dim = self.base.embedding_dim + self.functionals.embedding_dim
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        if self.bands is None:
            return torch.cat([self.base.embed(x, lengths), self.functionals.embed(x, lengths)], 1)
        return torch.cat([self.base.embed(x[:, : self.bands], lengths),
                          self.functionals.embed(x[:, self.bands :], lengths)], 1)

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        embedding = self.embed(x, lengths)
        return {"embedding": embedding, "logits": self.classifier(embedding)}
