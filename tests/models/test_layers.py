from __future__ import annotations

import pytest
import torch
from torch import nn

from ssl_ser.models.layers import (
    GradientReversal,
    MaskedBatchNorm2d,
    conv2d_time_lengths,
    conv_lengths,
    mask_time,
    masked_mean,
    reverse_gradient,
    same_conv2d,
)


@pytest.mark.parametrize("lambda_", [1.0, 0.5, 2.0, 0.0])
def test_gradient_reversal_multiplies_the_gradient_by_minus_lambda(lambda_: float) -> None:
    x = torch.randn(3, 5, requires_grad=True)
    upstream = torch.randn(3, 5)
    y = reverse_gradient(x, lambda_)
    assert torch.equal(y, x)  # identity forward
    y.backward(upstream)
    assert torch.equal(x.grad, upstream * -lambda_)


def test_gradient_reversal_module_lambda_can_change() -> None:
    layer = GradientReversal(1.0)
    x = torch.ones(4, requires_grad=True)
    layer.lambda_ = 0.25
    layer(x).sum().backward()
    assert torch.equal(x.grad, torch.full((4,), -0.25))


@pytest.mark.parametrize("layer", [
    nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.Conv2d(1, 1, 7, stride=2, padding=3),
    nn.Conv2d(1, 1, 5, padding=2),
    nn.Conv2d(1, 1, 1, stride=2), nn.MaxPool2d(2), nn.MaxPool2d(2, ceil_mode=True),
    nn.MaxPool2d(3, stride=2, padding=1), nn.MaxPool2d((2, 1), ceil_mode=True),
])
def test_conv_lengths_match_pytorch(layer: nn.Module) -> None:
    lengths = torch.arange(2, 40)
    expected = torch.tensor([layer(torch.zeros(1, 1, 4, int(n))).shape[-1] for n in lengths])
    assert torch.equal(conv2d_time_lengths(layer, lengths), expected)
    assert conv_lengths(4, 2, 2, ceil_mode=True) == 2 and conv_lengths(5, 2, 2, ceil_mode=True) == 3


def test_same_conv2d_keeps_the_size_for_even_kernels() -> None:
    x = torch.randn(1, 1, 11, 13)
    for kernel in [(2, 8), (10, 2), (3, 3)]:
        assert same_conv2d(1, 2, kernel)(x).shape == (1, 2, 11, 13)


def test_mask_time_and_masked_mean_ignore_padded_frames() -> None:
    x = torch.randn(2, 3, 6)
    lengths = torch.tensor([6, 2])
    masked = mask_time(x, lengths)
    assert torch.equal(masked[1, :, 2:], torch.zeros(3, 4)) and torch.equal(masked[0], x[0])
    torch.testing.assert_close(masked_mean(x, lengths)[1], x[1, :, :2].mean(-1))


def test_masked_batchnorm_counts_only_the_valid_frames_in_training() -> None:
    """A padded batch normalises like BatchNorm2d over its valid frames laid end to end, with
    the same running statistics; in eval mode, or without lengths, it is BatchNorm2d."""
    torch.manual_seed(0)
    x, lengths = torch.randn(2, 3, 4, 10), torch.tensor([10, 6])
    padded = mask_time(x, lengths)
    masked, reference = MaskedBatchNorm2d(3), nn.BatchNorm2d(3)
    got = masked.train()(padded, lengths)
    joined = reference.train()(torch.cat([x[0], x[1, :, :, :6]], -1).unsqueeze(0))[0]
    torch.testing.assert_close(got[0], joined[:, :, :10])
    torch.testing.assert_close(got[1, :, :, :6], joined[:, :, 10:])
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(masked, name), getattr(reference, name))
    plain = nn.BatchNorm2d(3)
    plain.load_state_dict(masked.state_dict())  # the same parameters and buffers
    torch.testing.assert_close(masked.eval()(padded, lengths), plain.eval()(padded))
    assert not torch.allclose(MaskedBatchNorm2d(3).train()(padded)[0], got[0])  # without lengths: zeros counted
