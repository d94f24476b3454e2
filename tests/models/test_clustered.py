from __future__ import annotations

import pytest
import torch

from ssl_ser.config import ConfigError
from ssl_ser.models import build_model


def make(**options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("clustered", in_features=32, num_classes=4,
                       **{"base": {"name": "pyresnet", "size": "tiny"}, "num_clusters": 6, **options}).eval()


def test_base_outputs_pass_through_and_heads_sit_on_its_embedding() -> None:
    model = make()
    x, lengths = torch.randn(3, 32, 40), torch.tensor([40, 30, 20])
    out = model(x, lengths)
    base = model.base(x, lengths)
    assert torch.equal(out["embedding"], base["embedding"]) and torch.equal(out["logits"], base["logits"])
    assert out["cluster_logits"].shape == (3, 6) and out["attributes"].shape == (3, 3)
    torch.testing.assert_close(out["cluster_logits"], model.cluster_head(base["embedding"]))


def test_reset_cluster_head_changes_only_the_cluster_head() -> None:
    model = make()
    x, lengths = torch.randn(2, 32, 40), torch.tensor([40, 33])
    before = model(x, lengths)
    model.reset_cluster_head(9)
    after = model(x, lengths)
    assert model.num_clusters == 9 and after["cluster_logits"].shape == (2, 9)
    for key in ("embedding", "logits", "attributes"):
        assert torch.equal(before[key], after[key])


def test_reset_classifier_reaches_the_base_and_state_keys_name_it() -> None:
    model = make()
    model.reset_classifier(7)
    assert model.num_classes == 7 and model(torch.randn(1, 32, 40), torch.tensor([40]))["logits"].shape == (1, 7)
    assert any(k.startswith(model.classifier_prefix) for k in model.state_dict())


@pytest.mark.parametrize("base, words", [
    ({"size": "tiny"}, "needs a name"),
    ({"name": "vgg16_cluster", "size": "tiny"}, "already has a cluster head"),
    ({"name": "attention_cnn", "size": "tiny"}, "scores segments"),
    ({"name": "pyresnet", "size": "tiny", "widths": 3}, "widths"),
])
def test_refuses_bases_it_cannot_wrap(base: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        build_model("clustered", in_features=32, num_classes=4, base=base)
