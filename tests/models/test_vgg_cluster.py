from __future__ import annotations

import pytest
import torch
from torch import nn

from ssl_ser.models import build_model


def test_full_size_is_vgg16() -> None:
    with torch.device("meta"):
        model = build_model("vgg16_cluster", in_features=128, num_classes=4)
    layers = [m for m in model.stages.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    config = [m.out_channels if isinstance(m, nn.Conv2d) else "M" for m in layers]
    assert config == [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    assert all(m.kernel_size == (3, 3) for m in layers if isinstance(m, nn.Conv2d))
    linears = [m for m in model.fc if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [4096, 4096]
    assert linears[0].in_features == 512 * 4  # 128 mel bands / 2^5, times 512 channels


@pytest.mark.parametrize(("options", "expected"), [
    (dict(size="full"), 0.5),        # VGG's dropout before its 4096-unit layers
    (dict(size="tiny"), 0.0),        # none on the tiny network's 32 units
    (dict(size="tiny", dropout=0.3), 0.3),
    (dict(size="full", dropout=0.0), 0.0),
])
def test_dropout_follows_the_size_unless_given(options: dict, expected: float) -> None:
    with torch.device("meta"):
        model = build_model("vgg16_cluster", in_features=128, num_classes=4, **options)
    assert [m.p for m in model.fc if isinstance(m, nn.Dropout)] == [expected, expected]


def test_heads() -> None:
    model = build_model("vgg16_cluster", in_features=32, num_classes=4, size="tiny", num_clusters=6).eval()
    out = model(torch.randn(3, 32, 40), torch.tensor([40, 30, 20]))
    assert out["cluster_logits"].shape == (3, 6)
    assert out["attributes"].shape == (3, 3)
    assert out["logits"].shape == (3, 4)


def test_reset_cluster_head_changes_k_and_weights_only_there() -> None:
    torch.manual_seed(0)
    model = build_model("vgg16_cluster", in_features=32, num_classes=4, size="tiny", num_clusters=6).eval()
    x, lengths = torch.randn(2, 32, 40), torch.tensor([40, 33])
    before = model(x, lengths)
    old_head = model.cluster_head
    model.reset_cluster_head(9)
    after = model(x, lengths)
    assert after["cluster_logits"].shape == (2, 9) and model.num_clusters == 9
    assert model.cluster_head is not old_head
    for key in ("embedding", "logits", "attributes"):
        assert torch.equal(before[key], after[key])
    model.reset_cluster_head(6)  # same K, still new weights
    assert not torch.equal(model(x, lengths)["cluster_logits"], before["cluster_logits"])
