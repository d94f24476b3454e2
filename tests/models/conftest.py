"""Fixtures for the model tests: tiny configurations, padded batches and a combined loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_ser.models import SERModel, build_model

#: Per model: tiny build options and a small input size (features, frames) for fast tests.
TINY: dict[str, dict[str, Any]] = {
    "resnet34_xvector": dict(options=dict(size="tiny"), features=23, frames=40),
    "attention_cnn": dict(options=dict(size="tiny"), features=40, frames=32),
    "vgg16_cluster": dict(options=dict(size="tiny", dropout=0.0), features=32, frames=40),
    "pyresnet": dict(options=dict(size="tiny"), features=32, frames=40),
    "with_functionals": dict(options=dict(base={"name": "pyresnet", "size": "tiny"},
                                          functionals={"hidden": (8,), "dropout": 0.0}), features=32, frames=40),
    "utterance_stats": dict(options=dict(hidden=(16,), dropout=0.0), features=12, frames=20),
    "mlp": dict(options=dict(hidden=(16,), dropout=0.0), features=12, frames=12),
    "daae": dict(options=dict(size="tiny", num_speakers=3, num_corpora=2), features=64, frames=24),
    "clustered": dict(options=dict(base={"name": "pyresnet", "size": "tiny"}), features=32,
                      frames=40),
}
NUM_CLASSES = 4


@pytest.fixture
def tiny() -> dict[str, dict[str, Any]]:
    """The :data:`TINY` table (test modules cannot import this conftest under importlib mode)."""
    return TINY


@pytest.fixture(params=sorted(TINY))
def model_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def tiny_model() -> Callable[..., SERModel]:
    """``tiny_model(name, **overrides)``: the tiny configuration, seeded."""

    def make(name: str, **overrides: Any) -> SERModel:
        torch.manual_seed(0)
        spec = TINY[name]
        return build_model(name, in_features=spec["features"], num_classes=NUM_CLASSES,
                           **{**spec["options"], **overrides})

    return make


def smooth_spectra(count: int, features: int, gen: torch.Generator) -> Tensor:
    """``count`` smooth random spectral envelopes ``[count, features]`` (moving average of noise)."""
    noise = torch.randn(count, 1, features + 8, generator=gen)
    return F.avg_pool1d(noise, 9, stride=1).squeeze(1) * 3


def padded_batch(name: str, lengths: list[int], seed: int = 0, garbage: bool = False) -> tuple[Tensor, Tensor]:
    """Spectrogram-like random features ``[B, F, max(lengths)]``: each example has its own
    smooth spectral envelope (like a speaker / channel colour) plus three fixed smooth spectral
    shapes with random time courses, plus a little noise. Low rank and smooth like real
    spectrograms, so an autoencoder can learn them. Past each length: zeros, or large noise if
    ``garbage``."""
    gen = torch.Generator().manual_seed(seed)
    features, frames = TINY[name]["features"], max(lengths)
    shapes = smooth_spectra(3, features, torch.Generator().manual_seed(1234)).T  # shared by all batches
    courses = torch.randn(len(lengths), 3, frames, generator=gen)
    colour = smooth_spectra(len(lengths), features, gen).unsqueeze(-1)
    x = colour + shapes @ courses + 0.1 * torch.randn(len(lengths), features, frames, generator=gen)
    pad = torch.arange(frames) >= torch.tensor(lengths)[:, None]
    fill = 100 * torch.randn(x.shape, generator=gen) if garbage else torch.zeros_like(x)
    return torch.where(pad[:, None, :], fill, x), torch.tensor(lengths)


@pytest.fixture
def batch() -> Callable[..., tuple[Tensor, Tensor]]:
    return padded_batch


def combined_loss(outputs: dict[str, Tensor], x: Tensor, targets: dict[str, Tensor] | None = None,
                  keys: tuple[str, ...] | None = None) -> Tensor:
    """A loss over the model's outputs: cross-entropy for every ``*logits`` output, MSE for
    ``attributes`` and ``recon`` (against ``x``), and a random projection of ``embedding`` and
    ``latent`` (so their gradients are generic). ``keys`` restricts the outputs used."""
    targets = targets or {}
    total = x.new_zeros(())
    for key, value in outputs.items():
        if keys is not None and key not in keys:
            continue
        if key.endswith("logits"):
            target = targets.get(key, torch.arange(value.shape[0]) % value.shape[1])
            total = total + F.cross_entropy(value, target)
        elif key == "attributes":
            total = total + F.mse_loss(value, targets.get(key, torch.zeros_like(value)))
        elif key == "recon":
            total = total + F.mse_loss(value, x)
        else:
            gen = torch.Generator().manual_seed(1)
            total = total + (value * torch.randn(value.shape, generator=gen)).mean()
    return total


@pytest.fixture
def loss_fn() -> Callable[..., Tensor]:
    return combined_loss
