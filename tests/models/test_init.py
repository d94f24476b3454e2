"""``model.init``: Kaiming initialisation and zeroed residual branches, for any model."""

from __future__ import annotations

import pytest
import torch

from ssl_ser.config import ConfigError
from ssl_ser.job_loader import job_from_dict
from ssl_ser.models import build_model
from tests.models.conftest import NUM_CLASSES, TINY


def test_kaiming_scales_convolutions_by_their_fan_out() -> None:
    torch.manual_seed(0)
    default = build_model("pyresnet", in_features=32, num_classes=4, size="tiny")
    torch.manual_seed(0)
    model = build_model("pyresnet", in_features=32, num_classes=4, size="tiny", init=True)
    conv = model.stages[1][0].conv1  # 1x1, 32 -> 8 channels: fan-in 32, fan-out 8
    expected = (2 / conv.out_channels) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.15)
    # PyTorch's default is 1/sqrt(3 fan-in): five times smaller here
    assert default.stages[1][0].conv1.weight.std().item() < expected / 3
    # linear layers keep PyTorch's draw, and the draws come from a forked RNG: what follows the
    # build (dropout, crops, mixup) draws the same numbers with or without init
    assert torch.equal(model.classifier.weight, default.classifier.weight)
    after_init = torch.rand(4)
    torch.manual_seed(0)
    build_model("pyresnet", in_features=32, num_classes=4, size="tiny")
    assert torch.equal(torch.rand(4), after_init)


def test_zero_residual_starts_every_block_as_its_shortcut() -> None:
    model = build_model("resnet34_xvector", in_features=23, num_classes=4, size="tiny",
                        init={"zero_residual": True}).train()
    block = model.stages[0][0]  # stride 1, 4 -> 4 channels: an identity shortcut
    x = torch.rand(2, 4, 23, 10)
    lengths = torch.tensor([10, 10])
    y, _ = block(x, lengths)
    torch.testing.assert_close(y, x)
    assert all(bool((norm.weight == 0).all()) for norm in model.residual_norms())
    assert len(model.residual_norms()) == sum(len(stage) for stage in model.stages)


def test_wrappers_reach_their_base_networks_residual_branches() -> None:
    options = TINY["clustered"]["options"]
    model = build_model("clustered", in_features=32, num_classes=NUM_CLASSES, **options,
                        init={"scheme": "default", "zero_residual": True})
    norms = model.residual_norms()
    assert norms == model.base.residual_norms() and len(norms) == 4
    assert all(bool((norm.weight == 0).all()) for norm in norms)


def test_false_and_absent_leave_pytorchs_initialisation() -> None:
    torch.manual_seed(3)
    plain = build_model("pyresnet", in_features=32, num_classes=4, size="tiny").state_dict()
    torch.manual_seed(3)
    off = build_model("pyresnet", in_features=32, num_classes=4, size="tiny", init=False).state_dict()
    assert all(torch.equal(plain[k], off[k]) for k in plain)


def test_zero_residual_is_refused_for_a_model_without_residual_branches() -> None:
    with pytest.raises(ConfigError, match=r"model 'mlp': init.zero_residual: .*no residual branches"):
        build_model("mlp", in_features=12, num_classes=4, hidden=(16,), init={"zero_residual": True})


def test_a_misspelt_init_is_suggested() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'inti' \(did you mean 'init'\?\).*, init$"):
        build_model("pyresnet", in_features=32, num_classes=4, size="tiny", inti=True)


@pytest.mark.parametrize(("init", "message"), [
    ({"zero_residuals": True}, "zero_residual"),
    ({"scheme": "xavier"}, "scheme"),
    ("yes", "init must be true, false or a section"),
])
def test_a_wrong_init_is_one_line_naming_it(init: object, message: str) -> None:
    with pytest.raises(ConfigError, match="model 'pyresnet'") as err:
        build_model("pyresnet", in_features=32, num_classes=4, size="tiny", init=init)
    assert message in str(err.value)


def _job(model: dict) -> dict:
    return {"name": "x", "data": {"train": ["shards/train"]}, "model": {"name": "pyresnet", "size": "tiny", **model}}


def test_a_job_takes_init_for_any_model_and_checks_it_before_training() -> None:
    job_from_dict(_job({"init": {"zero_residual": True}}), check_data=False)
    with pytest.raises(ConfigError, match=r"model 'pyresnet': init: unknown key 'zero_residuals'"):
        job_from_dict(_job({"init": {"zero_residuals": True}}), check_data=False)
    with pytest.raises(ConfigError, match=r"unknown key 'model.inti' \(did you mean 'init'\?\)"):
        job_from_dict(_job({"inti": True}), check_data=False)
