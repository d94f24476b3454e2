"""Layers shared by the models: gradient reversal, time-axis masking helpers, MLP heads.

Models take zero-padded batches with per-row frame ``lengths``. CNNs keep padding from
leaking into valid frames by zeroing the time axis past each row's (reduced) length after
every layer that mixes neighbouring frames; :func:`conv_lengths` follows the lengths through
convolutions and poolings.
"""

from __future__ import annotations

from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-lambda``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, lambda_: float) -> Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * -ctx.lambda_, None


def reverse_gradient(x: Tensor, lambda_: float = 1.0) -> Tensor:
    """Gradient reversal (Ganin & Lempitsky 2015): ``x`` forward, ``-lambda * grad`` backward."""
    return _ReverseGradient.apply(x, lambda_)


class GradientReversal(nn.Module):
    """:func:`reverse_gradient` as a module; ``lambda_`` can be changed during training."""

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = float(lambda_)

    def forward(self, x: Tensor) -> Tensor:
        return reverse_gradient(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}"


@overload
def conv_lengths(lengths: Tensor, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                 ceil_mode: bool = False) -> Tensor: ...
@overload
def conv_lengths(lengths: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                 ceil_mode: bool = False) -> int: ...
def conv_lengths(lengths: Tensor | int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, ceil_mode: bool = False) -> Tensor | int:
    """Output sizes of a convolution / pooling along one axis (PyTorch's formula), at least 1.

    Works on a tensor of lengths or on a plain ``int`` size (e.g. the frequency axis).
    """
    span = lengths + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -((-span) // stride) + 1
        # PyTorch drops a last window that would start in the right padding.
        last_in_padding = (out - 1) * stride >= lengths + padding
        out = out - (last_in_padding.long() if isinstance(last_in_padding, Tensor) else int(last_in_padding))
    else:
        out = span // stride + 1
    return out.clamp(min=1) if isinstance(out, Tensor) else max(1, int(out))


def same_conv2d(cin: int, cout: int, kernel: tuple[int, int]) -> nn.Sequential:
    """A stride-1 convolution whose output has its input's size, for even kernels too
    (PyTorch's rule: the odd padding sample goes to the end of each axis)."""
    (kh, kw) = kernel
    pad = ((kw - 1) // 2, kw - 1 - (kw - 1) // 2, (kh - 1) // 2, kh - 1 - (kh - 1) // 2)
    return nn.Sequential(nn.ZeroPad2d(pad), nn.Conv2d(cin, cout, kernel))


def time_mask(lengths: Tensor, num_frames: int) -> Tensor:
    """``[B, num_frames]`` bool, True on valid frames."""
    return torch.arange(num_frames, device=lengths.device) < lengths[:, None]


def mask_time(x: Tensor, lengths: Tensor) -> Tensor:
    """Zero ``x [B, ..., T]`` past each row's length along the last axis."""
    mask = time_mask(lengths, x.shape[-1]).to(x.dtype)
    return x * mask.view(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1])


def mask_sequence(x: Tensor, lengths: Tensor) -> Tensor:
    """Zero the frames of a ``[B, T, D]`` sequence past each row's length."""
    return x * time_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)


def masked_mean(x: Tensor, lengths: Tensor) -> Tensor:
    """Mean over the valid frames of ``x [B, ..., T]`` -> ``[B, ...]``."""
    total = mask_time(x, lengths).sum(-1)
    return total / lengths.clamp(min=1).to(x.dtype).view(-1, *([1] * (total.dim() - 1)))


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics can count only the valid frames.

    Given ``lengths`` in ``train()`` mode, the batch mean and variance (and so the running
    statistics) are taken over each row's first ``lengths`` frames (the last axis) only: the
    zero padding of short utterances in long crops otherwise pulls every channel's statistics
    towards zero by the padded share. Without ``lengths``, or in ``eval()`` mode, it is
    ``nn.BatchNorm2d`` (same parameters and buffers, so checkpoints load either way).
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None or not self.training:
            return super().forward(x)
        mask = time_mask(lengths, x.shape[-1])[:, None, None, :].to(x.dtype)
        count = mask.sum() * x.shape[2]
        mean = (x * mask).sum((0, 2, 3)) / count
        var = (((x - mean[None, :, None, None]) * mask) ** 2).sum((0, 2, 3)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():  # PyTorch's update: unbiased variance, the default momentum
                momentum = 0.1 if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / (count - 1).clamp(min=1), momentum)
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


class ConvBlock(nn.Module):
    """Conv2d -> BatchNorm -> ReLU, re-masking the time axis; tracks the time lengths."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        lengths = conv2d_time_lengths(self.conv, lengths)
        return mask_time(torch.relu(self.norm(self.conv(x))), lengths), lengths


def conv2d_time_lengths(conv: nn.Conv2d | nn.MaxPool2d, lengths: Tensor) -> Tensor:
    """Time-axis (last axis) output lengths of a 2-D convolution or max pooling."""
    def last(v: Any) -> int:
        return v[-1] if isinstance(v, tuple) else v

    if isinstance(conv, nn.MaxPool2d):
        return conv_lengths(lengths, last(conv.kernel_size), last(conv.stride), last(conv.padding),
                            last(conv.dilation), conv.ceil_mode)
    if conv.padding == "same":
        return lengths
    return conv_lengths(lengths, conv.kernel_size[-1], conv.stride[-1], last(conv.padding), conv.dilation[-1])


class RowNorm(nn.BatchNorm1d):
    """BatchNorm over ``[B, C]`` rows that also takes a training batch of one row (the last
    batch of an epoch can be one utterance), normalising it with the running statistics."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def mlp_head(width: int, hidden: tuple[int, ...], dropout: float) -> tuple[nn.Sequential, int]:
    """Dropout, then per hidden width Linear -> RowNorm -> ReLU -> dropout; and the output width."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    for h in hidden:
        layers += [nn.Linear(width, h), RowNorm(h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    return nn.Sequential(*layers), width
