"""The interface every model implements, so trainers and methods can use any of them."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ssl_ser.config import ConfigError
from ssl_ser.errors import SslSerError


class ModelInputError(SslSerError, ValueError):
    """Features a model cannot take (wrong rank, feature dimension or lengths)."""


class SERModel(nn.Module):
    """A model over front-end features ``x [B, F, T]`` with frame ``lengths [B]``.

    ``forward`` returns a dict with at least ``"embedding" [B, D]`` and ``"logits"
    [B, num_classes]``; models with more heads add them. Padded frames (past ``lengths``) do
    not influence any output.
    """

    embedding_dim: int
    """D, the size of :meth:`embed`'s output."""
    classifier_prefix: ClassVar[str] = "classifier."
    """``state_dict`` key prefix of the final emotion/speaker layer (see :meth:`reset_classifier`)."""
    frontend: ClassVar[str]
    """Name of the front-end whose output this model is built for."""
    segment_seconds: ClassVar[float | None] = None
    """For segment models, the segment length they see; ``None`` for utterance models."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``[B, D]``: what clustering, t-SNE and x-vector extraction use."""
        return self.forward(x, lengths)["embedding"]

    def residual_norms(self) -> list[nn.Module]:
        """The normalisation layers that end residual branches (``model.init``'s
        ``zero_residual`` zeroes their scale); by default those of the SERModels inside this one."""
        return [norm for child in self.children() if isinstance(child, SERModel) for norm in child.residual_norms()]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final classification layer by a freshly initialised one (transfer learning)."""
        path = self.classifier_prefix.rstrip(".")
        parent_path, _, attr = path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self
        setattr(parent, attr, fresh_layer(getattr(parent, attr), num_classes))
        self.num_classes = num_classes

    def check_input(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Validate ``x [B, in_features, T]`` and its lengths; returns ``x`` with its padded frames
        zeroed (whatever the caller left there cannot leak in) and the lengths as int64."""
        if x.dim() != 3 or x.shape[1] != self.in_features:
            raise ModelInputError(f"{type(self).__name__} takes features [batch, {self.in_features}, frames], "
                                  f"got shape {list(x.shape)}")
        lengths = torch.as_tensor(lengths, device=x.device).long()
        if lengths.shape != (x.shape[0],):
            raise ModelInputError(f"lengths must have shape [{x.shape[0]}], got {list(lengths.shape)}")
        # reading values is impossible inside a trace/export (graphs see symbols, not numbers)
        tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
        if not tracing and lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[2]):
            raise ModelInputError(f"lengths must lie in [1, {x.shape[2]}] frames, got {lengths.tolist()}")
        mask = torch.arange(x.shape[2], device=x.device) < lengths[:, None]
        return x * mask.unsqueeze(1).to(x.dtype), lengths


def fresh_layer(old: nn.Module, out_features: int) -> nn.Module:
    """A new, randomly initialised copy of a Linear / Conv layer with ``out_features`` outputs,
    on the old layer's device and dtype."""
    if isinstance(old, nn.Linear):
        return nn.Linear(old.in_features, out_features, bias=old.bias is not None,
                         device=old.weight.device, dtype=old.weight.dtype)
    if isinstance(old, nn.Conv2d):
        return nn.Conv2d(old.in_channels, out_features, old.kernel_size, old.stride,  # type: ignore[arg-type]
                         old.padding, bias=old.bias is not None,  # type: ignore[arg-type]
                         device=old.weight.device, dtype=old.weight.dtype)
    raise TypeError(f"cannot re-initialise a {type(old).__name__} layer")


def from_preset(presets: dict[str, dict[str, Any]], size: str, model: str, **given: Any) -> dict[str, Any]:
    """The architecture options of ``size``; every option given explicitly (not None) overrides."""
    if size not in presets:

        raise ConfigError(f"model {model!r}: unknown size {size!r}; allowed: {', '.join(presets)}")
    return {**presets[size], **{k: v for k, v in given.items() if v is not None}}
