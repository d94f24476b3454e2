"""Picking models by name and refusing bad options or inputs clearly."""

from __future__ import annotations

import pytest
import torch

from ssl_ser.config import ConfigError
from ssl_ser.errors import SslSerError
from ssl_ser.models import ModelInputError, build_model
from ssl_ser.registry import UnknownNameError


def test_unknown_option_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        build_model("resnet34_xvector", in_features=23, num_classes=4, num_head=4)
    message = str(err.value)
    assert "'num_head'" in message and "did you mean 'num_heads'" in message and "embedding_dim" in message


def test_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="size"):
        build_model("pyresnet", in_features=128, num_classes=4, size="huge")
    with pytest.raises(ConfigError, match="depth"):
        build_model("pyresnet", in_features=128, num_classes=4, depth=34)
    with pytest.raises(ConfigError, match="model_dim"):
        build_model("daae", in_features=129, num_classes=4, size="tiny", model_dim=10, num_heads=4)


def test_values_from_yaml_are_coerced() -> None:
    model = build_model("resnet34_xvector", in_features=23, num_classes=4, size="tiny", widths=[2, 2, 4, 4])
    assert model.stages[0][0].conv1.out_channels == 2


def test_unknown_model_name() -> None:
    with pytest.raises(UnknownNameError, match="resnet34_xvector"):
        build_model("resnet34", in_features=23, num_classes=4)


def test_bad_inputs_raise_model_input_errors() -> None:
    model = build_model("resnet34_xvector", in_features=23, num_classes=4, size="tiny")
    with pytest.raises(ModelInputError, match=r"\[batch, 23, frames\]"):
        model(torch.randn(2, 40, 30), torch.tensor([30, 30]))
    with pytest.raises(ModelInputError, match="lengths"):
        model(torch.randn(2, 23, 30), torch.tensor([31, 30]))
    assert issubclass(ModelInputError, SslSerError)
