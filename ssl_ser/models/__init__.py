"""Models, picked by name from a job config (``model: {name: resnet34_xvector, ...options}``).

Each model module registers its class in :data:`MODELS`; modules are imported on first lookup.
Every model takes ``size`` (``tiny`` for tests and demos, ``full`` for the paper's network;
``resnet34_xvector`` also has ``thin``); options given explicitly override the size preset.
Every model also takes ``init`` (:mod:`ssl_ser.models.init`): how its weights start.
"""

from __future__ import annotations

from typing import Any

from ssl_ser.models.base import ModelInputError, SERModel
from ssl_ser.models.init import initialise, parse_init
from ssl_ser.registry import Registry

MODELS: Registry[type[SERModel]] = Registry("model", package="ssl_ser.models")

SHARED_OPTIONS = ("init",)
"""Options every model takes, handled here rather than by the model's class."""


def build_model(name: str, *, in_features: int, num_classes: int, init: Any = None,
                **options: Any) -> SERModel:
    """The model registered as ``name`` with validated ``options`` (unknown ones are refused),
    its weights initialised by ``init`` (:func:`~ssl_ser.models.init.parse_init`)."""
    # deferred: the registry imports every plug-in module; only when looked up
    from ssl_ser.features import validate_options

    what = f"model {name!r}"
    init_cfg = parse_init(init, what=what)  # before building: a wrong key costs no construction
    cls = MODELS.get(name)
    checked = validate_options(cls.__init__, dict(in_features=in_features, num_classes=num_classes, **options),
                               what=what, shared=SHARED_OPTIONS)
    model = cls(**checked)
    if init_cfg is not None:
        initialise(model, init_cfg, model.residual_norms(), what=what)
    return model


__all__ = ["MODELS", "SHARED_OPTIONS", "ModelInputError", "SERModel", "build_model"]
