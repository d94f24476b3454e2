from __future__ import annotations

import torch

from ssl_ser.models.pooling import MultiHeadAttentivePooling


def test_weights_sum_to_one_over_valid_frames_and_skip_padding() -> None:
    torch.manual_seed(0)
    pool = MultiHeadAttentivePooling(dim=5, num_heads=3)
    x = torch.randn(2, 5, 9)
    lengths = torch.tensor([9, 4])
    w = pool.weights(x, lengths)
    assert w.shape == (2, 3, 9)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3))
    assert torch.equal(w[1, :, 4:], torch.zeros(3, 5))


def test_matches_the_paper_formula() -> None:
    """w_{h,t} = softmax_t(-s_h ||x_t - mu_h||); head output = sum_t w_{h,t} x_t; heads concatenated."""
    torch.manual_seed(0)
    pool = MultiHeadAttentivePooling(dim=4, num_heads=2)
    with torch.no_grad():
        pool.scales.copy_(torch.tensor([0.7, 2.0]))
    x = torch.randn(1, 4, 6)
    out = pool(x, torch.tensor([6]))
    expected = []
    for h in range(2):
        scores = torch.stack([-pool.scales[h] * torch.linalg.vector_norm(x[0, :, t] - pool.centers[h])
                              for t in range(6)])
        w = scores.softmax(0)
        expected.append((x[0] * w).sum(-1))
    torch.testing.assert_close(out[0], torch.cat(expected).detach(), atol=1e-5, rtol=1e-5)


def test_padding_content_does_not_change_the_output() -> None:
    torch.manual_seed(0)
    pool = MultiHeadAttentivePooling(dim=3, num_heads=2)
    x = torch.randn(1, 3, 5)
    padded = torch.cat([x, 1e3 * torch.randn(1, 3, 4)], dim=-1)
    torch.testing.assert_close(pool(padded, torch.tensor([5])), pool(x, torch.tensor([5])))


def test_gradients_reach_centres_and_scales() -> None:
    pool = MultiHeadAttentivePooling(dim=3, num_heads=2)
    x = torch.randn(2, 3, 7, requires_grad=True)
    (pool(x, torch.tensor([7, 3])) * torch.randn(2, 6)).sum().backward()
    assert pool.centers.grad.abs().sum() > 0 and pool.scales.grad.abs().sum() > 0
    assert torch.equal(x.grad[1, :, 3:], torch.zeros(3, 4))
