from __future__ import annotations

import torch
from torch import nn

from ssl_ser.models import build_model


def test_layers_follow_the_paper() -> None:
    model = build_model("attention_cnn", in_features=400, num_classes=4)
    assert model.conv1a[-1].kernel_size == (2, 8)  # frequency x time: temporal context
    assert model.conv1b[-1].kernel_size == (10, 2)  # spectral context
    assert len(model.convs) == 4
    for block in model.convs:
        kinds = [type(m) for m in block]
        assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] and block[0].kernel_size == (3, 3)
    assert model.pool.kernel_size == 2
    assert model.top_down.kernel_size == (1, 1) and model.top_down.out_channels == 4
    assert model.bottom_up.kernel_size == (1, 1) and model.bottom_up.out_channels == 1


def test_takes_a_two_second_mulaw_segment() -> None:
    model = build_model("attention_cnn", in_features=400, num_classes=4, size="tiny").eval()
    out = model(torch.rand(2, 400, 200), torch.tensor([200, 200]))
    assert out["logits"].shape == (2, 4) and out["embedding"].shape == (2, model.embedding_dim)


def test_bottom_up_attention_is_a_distribution_over_valid_positions() -> None:
    torch.manual_seed(0)
    model = build_model("attention_cnn", in_features=40, num_classes=4, size="tiny").eval()
    x = torch.randn(2, 40, 48)
    lengths = torch.tensor([48, 20])
    maps, reduced = model.feature_map(x, lengths)
    weights = model.attention(maps, reduced)
    torch.testing.assert_close(weights.sum(dim=(1, 2)), torch.ones(2))
    assert reduced.tolist() == [3, 2]
    assert torch.equal(weights[1, :, 2:], torch.zeros(weights.shape[1], weights.shape[2] - 2))


def test_class_scores_are_attention_weighted_top_down_maps() -> None:
    """sum_p TD_k(p) B(p), with TD = 1x1 conv of the map, equals the top-down layer on the embedding."""
    torch.manual_seed(0)
    model = build_model("attention_cnn", in_features=40, num_classes=3, size="tiny").eval()
    out = model(torch.randn(2, 40, 32), torch.tensor([32, 25]))
    weight = model.top_down.weight.view(3, -1)
    torch.testing.assert_close(out["logits"], out["embedding"] @ weight.T + model.top_down.bias)
