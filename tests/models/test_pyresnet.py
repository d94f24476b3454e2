from __future__ import annotations

import pytest
import torch

from ssl_ser.models import build_model
from ssl_ser.models.pyresnet import PyBottleneck, pyramid_split


@pytest.mark.parametrize(("depth", "blocks"), [(50, [3, 4, 6, 3]), (101, [3, 4, 23, 3]), (152, [3, 8, 36, 3])])
def test_depths(depth: int, blocks: list[int]) -> None:
    with torch.device("meta"):
        model = build_model("pyresnet", in_features=128, num_classes=4, depth=depth)
    assert [sum(isinstance(b, PyBottleneck) for b in stage) for stage in model.stages] == blocks
    assert [stage[0].conv3.out_channels for stage in model.stages] == [256, 512, 1024, 2048]


def test_second_convolution_of_every_bottleneck_is_a_pyramid() -> None:
    with torch.device("meta"):
        model = build_model("pyresnet", in_features=128, num_classes=4)
    expected = [((3, 5, 7, 9), (1, 4, 8, 16)), ((3, 5, 7), (1, 4, 8)), ((3, 5), (1, 4)), ((3,), (1,))]
    for stage, (kernels, groups) in zip(model.stages, expected):
        for block in stage:
            levels = block.conv2.levels
            assert tuple(level.kernel_size[0] for level in levels) == kernels
            assert tuple(level.groups for level in levels) == groups
            assert sum(level.out_channels for level in levels) == block.conv1.out_channels


def test_pyramid_split() -> None:
    assert pyramid_split(64, 4) == [16, 16, 16, 16]
    assert pyramid_split(128, 3) == [32, 32, 64]
    assert pyramid_split(256, 2) == [128, 128]
    assert pyramid_split(512, 1) == [512]


@pytest.mark.parametrize(("in_features", "rows"), [(128, 4), (64, 2)])
def test_pooling_keeps_frequency(in_features: int, rows: int) -> None:
    with torch.device("meta"):
        model = build_model("pyresnet", in_features=in_features, num_classes=4)
    assert model.embedding_dim == 2048 * rows


def test_embedding_is_the_last_map_averaged_over_valid_time_only() -> None:
    torch.manual_seed(0)
    model = build_model("pyresnet", in_features=64, num_classes=4, size="tiny").eval()
    captured = {}
    model.stages[-1][-1].register_forward_hook(lambda _m, _i, out: captured.update(map=out[0], lengths=out[1]))
    x, lengths = torch.randn(2, 64, 100), torch.tensor([100, 37])
    emb = model.embed(x, lengths)
    maps, reduced = captured["map"], captured["lengths"]
    assert maps.shape[2] == 2 and reduced.tolist() == [4, 2]  # 64 bands -> 2 rows; 100 and 37 frames, / 32
    expected = torch.stack([maps[i, :, :, : reduced[i]].mean(-1).flatten() for i in range(2)])
    torch.testing.assert_close(emb, expected)
    assert model.embedding_dim == maps.shape[1] * maps.shape[2]


def test_masked_norm_makes_training_outputs_independent_of_the_padding() -> None:
    """With masked_norm a row's training-mode output does not depend on how much padding its
    batch carries (PyTorch's BatchNorm counts the padded zeros); checkpoints load either way."""
    torch.manual_seed(0)
    x, lengths = torch.randn(2, 32, 40), torch.tensor([40, 24])
    longer = torch.cat([x, torch.zeros(2, 32, 40)], -1)  # the same rows in a twice-as-long crop
    for masked in (True, False):
        torch.manual_seed(1)
        model = build_model("pyresnet", in_features=32, num_classes=4, size="tiny", masked_norm=masked).train()
        same = torch.allclose(model.embed(x, lengths), model.embed(longer, lengths), atol=1e-4)
        assert same == masked
    plain = build_model("pyresnet", in_features=32, num_classes=4, size="tiny")
    plain.load_state_dict(model.state_dict())
