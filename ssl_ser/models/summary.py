"""Parameter counts and shape summaries of the registered models (``ssl-ser models``)."""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ssl_ser import SAMPLE_RATE
from ssl_ser.models import MODELS, SERModel, build_model

#: Classes assumed when none are given (the usual four-emotion setup).
DEFAULT_CLASSES = 4
#: Length of the example utterance of an utterance model.
EXAMPLE_SECONDS = 2.0


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's top-level parts, with module lists (stages, layer stacks) split into items."""
    rows: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            rows += [(f"{name}.{i}", item) for i, item in enumerate(child)]
        else:
            rows.append((name, child))
    return rows


def sizes(name: str) -> list[str]:
    """The ``size`` values a model accepts, from its constructor's annotation."""
    hint = typing.get_type_hints(MODELS.get(name).__init__).get("size")
    return list(typing.get_args(hint)) if hint is not None else []


def default_arguments(name: str) -> dict[str, int]:
    """``in_features`` from the model's front-end at its defaults, ``num_classes`` = 4."""
    # deferred: the registry imports every plug-in module; only when looked up
    from ssl_ser.features import build_frontend

    return {"in_features": build_frontend(MODELS.get(name).frontend).num_features, "num_classes": DEFAULT_CLASSES}


def build(name: str, options: dict[str, Any] | None = None, *, device: str | torch.device = "cpu") -> SERModel:
    """``name`` with default ``in_features``/``num_classes`` unless ``options`` give them."""
    arguments = {**default_arguments(name), **(options or {})}
    with torch.device(device):  # "meta" counts parameters without allocating them
        return build_model(name, **arguments)


def model_table() -> str:
    """One line per registered model: its front-end, input and parameter count per size."""
    header = ("model", "front-end", "input", "params by size")
    rows = []
    for name in MODELS.names():
        cls = MODELS.get(name)
        args = default_arguments(name)
        counts = [f"{size} {human(count_parameters(build(name, {'size': size}, device='meta')))}"
                  for size in sizes(name)]
        segment = f" x {cls.segment_seconds:g}s" if cls.segment_seconds else ""
        rows.append((name, cls.frontend, f"F={args['in_features']}{segment}", ", ".join(counts)))
    return _table(header, rows) + f"\n(num_classes={DEFAULT_CLASSES}; 'full' is the paper's network, the default)"


def example_wave(seconds: float, seed: int = 0) -> Tensor:
    """A speech-like test signal: noise and a tone under a syllable-rate (4 Hz) envelope."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.5 * (1 - torch.cos(2 * math.pi * 4 * t))
    carrier = 0.2 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(t.shape, generator=gen)
    return (envelope * carrier).unsqueeze(0)


def summarize(name: str, options: dict[str, Any] | None = None) -> str:
    """Per-block parameter counts and output shapes for one example through the model's front-end."""
    # deferred: the registry imports every plug-in module; only when looked up
    from ssl_ser.features import build_frontend

    model = build(name, options).eval()
    frontend = build_frontend(model.frontend).eval()
    seconds = model.segment_seconds or EXAMPLE_SECONDS
    wave = example_wave(seconds)
    shapes: dict[str, str] = {}
    handles = []
    for label, module in blocks(model):
        target = module
        while isinstance(target, nn.ModuleList) and len(target):
            target = target[-1]  # a stage is not called itself: report its last block
        handles.append(target.register_forward_hook(
            lambda _m, _i, out, label=label: shapes.__setitem__(label, _shape(out))))
    with torch.no_grad():
        feats, lengths = frontend(wave, torch.tensor([wave.shape[1]]))
        outputs = model(feats, lengths)
    for handle in handles:
        handle.remove()
    rows = [(label, f"{count_parameters(module):,}", shapes.get(label, "-")) for label, module in blocks(model)]
    rows.append(("total", f"{count_parameters(model):,}", ""))
    given = {k: v for k, v in (options or {}).items()}
    lines = [
        f"{name}: {type(model).__name__}, in_features={model.in_features}, num_classes={model.num_classes}"
        + (f", options {given}" if given else ""),
        f"front-end {model.frontend}: wave {list(wave.shape)} ({seconds:g} s) -> features {list(feats.shape)}",
        "",
        _table(("block", "params", "output"), rows),
        "",
        "outputs: " + ", ".join(f"{key} {list(value.shape)}" for key, value in outputs.items()),
        f"embedding_dim={model.embedding_dim}, classifier_prefix={model.classifier_prefix!r}",
    ]
    return "\n".join(lines)


def human(count: int) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def _shape(out: Any) -> str:
    if isinstance(out, Tensor):
        return str(list(out.shape))
    if isinstance(out, (tuple, list)) and out:
        first = out[0]
        if isinstance(first, PackedSequence):
            return f"packed {list(first.data.shape)}"
        if isinstance(first, Tensor):
            return str(list(first.shape))
    return "-"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *rows])
