"""Pooling of frame sequences ``[B, D, T]`` into fixed-size vectors, ignoring padded frames."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssl_ser.models.layers import time_mask


class MultiHeadAttentivePooling(nn.Module):
    """Multi-head attentive pooling of the CopyPaste x-vector network.

    Head ``h`` has a learnable centre ``mu_h`` and scale ``s_h``; its weight for frame ``t`` is
    ``w_{h,t} = softmax_t(-s_h ||x_t - mu_h||)`` over the row's valid frames, its output the
    ``w``-weighted mean of the frames, and the heads are concatenated: ``[B, D, T] -> [B, H*D]``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_heads = num_heads
        self.centers = nn.Parameter(torch.randn(num_heads, dim))
        self.scales = nn.Parameter(torch.ones(num_heads))

    @property
    def output_dim(self) -> int:
        return self.num_heads * self.dim

    def weights(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``[B, H, T]`` attention weights; each head's weights sum to 1 over valid frames."""
        # ||x - mu||^2 = ||x||^2 - 2 x.mu + ||mu||^2, without a [B, H, T, D] difference tensor;
        # in float32, as squared norms of wide frames overflow half precision.
        with torch.autocast(x.device.type, enabled=False):
            x, centers = x.float(), self.centers.float()
            sq = (x.pow(2).sum(1, keepdim=True) - 2 * torch.einsum("hd,bdt->bht", centers, x)
                  + centers.pow(2).sum(1)[None, :, None])
        distance = (sq.clamp(min=0) + 1e-6).sqrt()  # eps: the norm's gradient is undefined at 0
        scores = -self.scales[None, :, None] * distance
        scores = scores.masked_fill(~time_mask(lengths, x.shape[-1])[:, None, :], float("-inf"))
        return scores.softmax(-1)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        w = self.weights(x, lengths).to(x.dtype)
        return torch.einsum("bht,bdt->bhd", w, x).reshape(x.shape[0], self.output_dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}"
