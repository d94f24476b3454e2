"""Weight initialisation of any model (``model.init``), applied once the model is built.

PyTorch's per-layer defaults (Kaiming-uniform with ``a = sqrt(5)``, i.e. a gain of 1/sqrt(3)
for a ReLU) start deep ReLU networks with shrinking activations; torchvision's ResNets instead
use Kaiming-normal (fan-out, ReLU gain) for convolutions, unit BatchNorm, and optionally zero
the last BatchNorm of every residual branch so that each block starts as the identity (Goyal
et al. 2017, "Accurate, large minibatch SGD"). ``model.init: true`` takes that scheme;
``model.init: {zero_residual: true}`` adds the zeroed branches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from torch import nn

from ssl_ser.config import ConfigError, config, from_dict


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
    end its residual branches)."""
    if cfg.scheme == "kaiming":
        for module in model.modules():
            if isinstance(module, nn.Conv1d | nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm):
                if module.weight is not None:
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)
    if cfg.zero_residual:
        if not residual_norms:
            raise ConfigError(f"{what}: init.zero_residual: this model has no residual branches")
        for norm in residual_norms:
            assert isinstance(norm.weight, nn.Parameter), f"{norm} has no scale to zero"
            nn.init.zeros_(norm.weight)
