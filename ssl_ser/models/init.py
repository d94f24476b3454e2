"""Weight initialisation of any model (``model.init``), applied once the model is built.

PyTorch's per-layer defaults (Kaiming-uniform with ``a = sqrt(5)``, i.e. a gain of 1/sqrt(3)
for a ReLU) start deep ReLU networks with shrinking activations; torchvision's ResNets instead
use Kaiming-normal (fan-out, ReLU gain) for convolutions, unit norms, and optionally zero the
last BatchNorm of every residual branch so that each block starts as its shortcut (Goyal et
al. 2017, "Accurate, large minibatch SGD"). ``model.init: true`` takes that scheme;
``model.init: {zero_residual: true}`` adds the zeroed branches. Linear layers and transposed
convolutions keep PyTorch's initialisation. Weights loaded afterwards (``train.init_from``, a
resumed run, a checkpoint) replace what this sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from ssl_ser.config import ConfigError, config, from_dict

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


@config
class InitConfig:
    scheme: Literal["default", "kaiming"] = "kaiming"
    """``default`` keeps PyTorch's per-layer initialisation (only ``zero_residual`` applies)."""
    zero_residual: bool = False
    """Zero the scale of the last normalisation of every residual branch (the model's
    :meth:`~ssl_ser.models.base.SERModel.residual_norms`); refused for a model without any."""


def parse_init(value: bool | Mapping[str, Any] | InitConfig | None, *, what: str) -> InitConfig | None:
    """``model.init`` as written in a job: ``true``, ``false`` / absent, or a section."""
    if isinstance(value, InitConfig) or value is None:
        return value
    if isinstance(value, bool):
        return InitConfig() if value else None
    if isinstance(value, Mapping):
        return from_dict(InitConfig, value, source=f"{what}: init")
    raise ConfigError(f"{what}: init must be true, false or a section {{scheme, zero_residual}}, got {value!r}")


def initialise(model: nn.Module, cfg: InitConfig, residual_norms: list[nn.Module], *, what: str) -> None:
    """Re-initialise ``model``'s weights in place by ``cfg`` (``residual_norms``: the norms that
    end its residual branches). Draws from a forked RNG, so that a run with ``init`` sees the
    same dropout, crops and mixup draws as the same run without it."""
    if cfg.zero_residual:
        if not residual_norms:
            raise ConfigError(f"{what}: init.zero_residual: this model has no residual branches")
        if any(not isinstance(getattr(norm, "weight", None), nn.Parameter) for norm in residual_norms):
            raise ConfigError(f"{what}: init.zero_residual: a residual branch ends in a norm without a scale")
    with torch.random.fork_rng(devices=[]):
        if cfg.scheme == "kaiming":
            for module in model.modules():
                if isinstance(module, CONVOLUTIONS):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
                elif isinstance(module, NORMS):
                    if isinstance(module.weight, nn.Parameter):
                        nn.init.ones_(module.weight)
                    if isinstance(module.bias, nn.Parameter):
                        nn.init.zeros_(module.bias)
    for norm in residual_norms if cfg.zero_residual else []:
        nn.init.zeros_(norm.weight)  # type: ignore[arg-type]  # checked above
