"""Exporting a trained model for use outside the training stack: TorchScript or ONNX.

The exported graph takes a waveform and returns scores: ``wave [batch, samples]`` (float32,
16 kHz mono, every row the same length) -> ``probs [batch, classes]`` (softmax),
``embedding [batch, D]`` and, for models with an attribute head, ``attributes [batch, 3]``
(arousal, valence, dominance). Inside it: the front-end, speaker-wise normalisation with the
statistics pooled over the training speakers (an exported model has no speaker ids; this is
what ``predict`` does for unknown speakers), the model and the softmax. Segment models cut
the waveform into their segments inside the graph (``unfold``: ``seconds`` every
``eval_hop``, as in evaluation) and average the segments' outputs; their input must be at
least one segment long. Behind a front-end VAD they cut the windows from each row's voiced
frames instead, as evaluation does (:meth:`Predictor.segment_features`): every row gets as
many windows as its full frame count allows, and those past its voiced frames weigh 0 in the
mean (:func:`ssl_ser.segments.fixed_windows`). Batch size and length are dynamic in both
formats.

Export goes through :class:`WaveformScorer`, which calls the front-end's ``compute`` and the
model with its input checks replaced by plain masking (every row is full length by
construction; the checks read tensor values, which neither tracing nor ``torch.export`` can
follow). Every export is then checked against the PyTorch pipeline (:class:`Predictor`) on
random audio of several batch sizes and lengths, and refused if they differ.

What exports (``torch`` 2.11, ``onnxruntime`` 1.31), in both formats (the ONNX exporter is
the ``torch.export``-based one, ``dynamo=True``; the older TorchScript-based exporter cannot
export the complex STFT at all): every front-end and model pair the shipped recipes
(``jobs/*.yaml``) use, each checked in ``tests/test_export.py``:

- ``logmel``, ``logmel_deepemocluster``, ``spectrogram_mulaw``, ``spectrogram_daae``, and ``mfcc``
  with or without its energy VAD, with ``resnet34_xvector``, ``pyresnet``, ``attention_cnn``,
  ``vgg16_cluster`` and ``daae``;
- the energy VAD of ``mfcc`` and ``logmel`` keeps a data-dependent number of frames, which
  neither tracing nor ``torch.export`` can follow. In the export, every VAD of the front-end
  (its own, or its base's inside ``functionals``) packs the voiced frames to the left of a
  fixed-width map (as many frames as before the VAD, zeros after the voiced ones) with their
  count as the frame length: models and functionals are padding-invariant, so the scores are
  those of the training pipeline (:func:`ssl_ser.features.pack_frames_fixed`);
- the DAAE is exported through its emotion path (:class:`DAAEScores`): its decoder and
  adversarial heads (training-only outputs; the gradient reversal is a Python autograd function
  TorchScript cannot save) are left out, and the BLSTM runs without packed sequences, which
  ``torch.export`` cannot take: its final states are read at each row's last valid frame
  (:func:`blstm_final_states`), so a window shorter than the segment scores as in PyTorch.

Not exported: the Kaldi ``fbank`` front-end (no shipped recipe uses it): it computes row by row
with Python lengths, which a trace freezes, and ``aten::fft_rfft`` has no ONNX export. Export
such a model's features yourself as a pre-step, or retrain with ``logmel``.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_ser import SAMPLE_RATE, segments
from ssl_ser.errors import SslSerError
from ssl_ser.inference import Predictor
from ssl_ser.model_card import card_from_meta, write_card
from ssl_ser.models.daae import DAAE
from ssl_ser.speaker_norm import EPS

FORMATS = ("torchscript", "onnx")
#: What ONNX export and its check import (the `onnx` extra).
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")

#: (format, front-end or model name) -> why it cannot be exported.
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("torchscript", "fbank"): "the Kaldi fbank front-end computes row by row with Python lengths, "
                              "which a trace freezes to the example's shape",
    ("onnx", "fbank"): "the Kaldi fbank front-end computes row by row with Python lengths and uses "
                       "aten::fft_rfft, which has no ONNX export",
    **{(fmt, "ssl_encoder"): "the ssl_encoder front-end encodes row by row and memoises by content, which a "
                             "graph cannot hold; export its features as a pre-step, or the encoder itself "
                             "with torchaudio" for fmt in ("torchscript", "onnx")},
}

TOLERANCE = 1e-4
"""Largest accepted difference between the export and PyTorch (relative to the output's scale)."""


class ExportError(SslSerError):
    """A model that cannot be exported, or an export that does not reproduce PyTorch."""


class WaveformScorer(nn.Module):
    """Waveform -> (probs, embedding[, attributes]): front-end, global speaker normalisation,
    model and softmax, with in-graph segment windowing for segment models."""

    norm_mean: Tensor
    norm_std: Tensor

    def __init__(self, frontend: Any, model: nn.Module, *, norm: tuple[Tensor, Tensor] | None = None,
                 segment: tuple[int, int] | None = None, frame_segment: tuple[int, int] | None = None,
                 attributes: bool = False) -> None:
        # deferred: the registry imports every plug-in module; only when looked up
        from ssl_ser.features import VADFrontend

        super().__init__()
        frontend = copy.deepcopy(frontend)  # the predictor's own front-end stays as it was
        for module in frontend.modules():  # a VAD's frame selection, at a shape known in advance
            if isinstance(module, VADFrontend):
                module.fixed_width = True
        self.frontend: Any = frontend  # a registered front-end (compute)
        self.model = DAAEScores(model) if isinstance(model, DAAE) else model
        self.segment = segment  # (size, step) in samples: windows of the waveform
        self.frame_segment = frame_segment  # (size, step) in frames: windows of the voiced frames
        self.attributes = attributes
        self.normalise = norm is not None
        mean, std = norm if norm is not None else (torch.zeros(1), torch.ones(1))
        self.register_buffer("norm_mean", mean.detach().float().clone().reshape(1, -1, 1))
        self.register_buffer("norm_std", std.detach().float().clone().reshape(1, -1, 1))

    def forward(self, wave: Tensor) -> tuple[Tensor, ...]:
        from ssl_ser.features import mask_frames  # deferred: the registry imports every plug-in module

        batch = wave.shape[0]
        if self.segment is not None:
            size, step = self.segment
            wave = wave.unfold(1, size, step).reshape(-1, size)
        wave = wave.float()
        lengths = torch.ones_like(wave[:, 0], dtype=torch.long) * wave.shape[1]
        feats, frames = self.frontend.compute(wave, lengths)
        feats = mask_frames(feats, frames)
        if self.normalise:
            feats = mask_frames((feats - self.norm_mean) / (self.norm_std + EPS), frames)
        weights = None
        if self.frame_segment is not None:
            feats, frames, weights = segments.fixed_windows(feats, frames, *self.frame_segment)
        out = self.model(feats, frames)
        results = [F.softmax(out["logits"].float(), dim=-1), out["embedding"].float()]
        if self.attributes:
            results.append(out["attributes"].float())
        if self.segment is not None:  # utterance score = mean of its segments' scores
            results = [r.reshape(batch, -1, r.shape[-1]).mean(1) for r in results]
        if weights is not None:  # the same over the windows of the voiced frames
            results = [(r.reshape(batch, -1, r.shape[-1]) * weights[..., None]).sum(1)
                       / weights.sum(1, keepdim=True) for r in results]
        return tuple(results)


class DAAEScores(nn.Module):
    """The DAAE's emotion path, for export: encoder, deep branch, fusion, BLSTM and classifier
    (the BLSTM unpacked, :func:`blstm_final_states`); no decoder or adversarial heads, whose
    outputs only training uses."""

    def __init__(self, daae: nn.Module) -> None:
        super().__init__()
        self.daae: Any = daae  # the DAAE model: encode, fuse, deep, blstm, classifier

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        m = self.daae
        latent = m.encode(x, lengths)
        fused = m.fuse(m.deep(x, lengths), latent, lengths)
        embedding = blstm_final_states(m.blstm, fused, lengths)
        return {"embedding": embedding, "logits": m.classifier["fused"](embedding)}


def blstm_final_states(blstm: nn.LSTM, x: Tensor, lengths: Tensor) -> Tensor:
    """A one-layer BLSTM's final forward and backward states over each row's first ``lengths``
    frames of ``x [B, T, D]``, ``[B, 2H]``, as packing gives them, without packed sequences:
    the forward state is the forward output at the last valid frame; the backward state is the
    backward output at the first valid frame of the rows shifted right, so that their valid
    frames end the sequence and the backward pass starts on them."""
    hidden, steps = blstm.hidden_size, x.shape[1]
    last = (lengths - 1).clamp(min=0)
    shift = steps - lengths
    ahead = (torch.arange(steps, device=x.device)[None, :] - shift[:, None]) % steps  # position t reads t - shift
    right = x.gather(1, ahead[..., None].expand(-1, -1, x.shape[-1]))
    forward = _at(blstm(x)[0], last)[:, :hidden]
    backward = _at(blstm(right)[0], shift)[:, hidden:]
    return torch.cat([forward, backward], dim=-1)


def _at(seq: Tensor, index: Tensor) -> Tensor:
    """``seq[b, index[b]]`` for ``seq [B, T, D]``."""
    return seq.gather(1, index.view(-1, 1, 1).expand(-1, 1, seq.shape[-1])).squeeze(1)


@dataclass
class ExportReport:
    path: Path
    format: str
    outputs: list[str]
    classes: list[str]
    checks: list[dict[str, Any]] = field(default_factory=list)
    """Per checked input shape: the largest absolute difference of each output."""
    seconds: float = 0.0

    @property
    def max_abs_diff(self) -> float:
        return max((max(c["max_abs_diff"].values()) for c in self.checks), default=float("nan"))

    def summary(self) -> str:
        lines = [f"exported {self.format} model to {self.path} ({self.seconds:.1f} s); outputs: "
                 f"{', '.join(self.outputs)}; classes: {', '.join(self.classes)}"]
        for check in self.checks:
            diffs = ", ".join(f"{k} {v:.3g}" for k, v in check["max_abs_diff"].items())
            lines.append(f"  random audio {check['shape']}: max abs difference vs PyTorch: {diffs}")
        lines.append(f"max abs difference vs PyTorch: {self.max_abs_diff:.3g}")
        return "\n".join(lines)


def scorer_of(predictor: Predictor) -> WaveformScorer:
    """The exportable module of a predictor (moved to the CPU, in eval mode)."""
    frontend = predictor.frontend.cpu().eval()
    model = predictor.model.cpu().eval()
    norm = None
    if predictor.speaker_norm is not None:
        norm = (predictor.speaker_norm.global_mean.cpu(), predictor.speaker_norm.global_std.cpu())
    segment = frame_segment = None
    if predictor.windows_voiced_frames:
        frame_segment = predictor.window_frames(predictor.segment.eval_hop)
    elif predictor.segment is not None:
        segment = (int(round(predictor.segment.seconds * SAMPLE_RATE)),
                   int(round(predictor.segment.eval_hop * SAMPLE_RATE)))
    with torch.no_grad():
        probe = model(*_probe_features(frontend))
    return WaveformScorer(frontend, model, norm=norm, segment=segment, frame_segment=frame_segment,
                          attributes="attributes" in probe).eval()



def check_exportable(predictor: Predictor, fmt: str) -> None:
    """Refuse, before any work, a format/front-end/model combination known not to export."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":  # optional packages: say which, instead of a traceback half way

        missing = [m for m in ONNX_PACKAGES if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(f"ONNX export needs {', '.join(missing)}: pip install 'ssl-ser[onnx]' "
                              f"(or -e '.[onnx]' in a checkout)")
    for name in (_registered_name(predictor.frontend, "frontend"), _registered_name(predictor.model, "model")):
        reason = UNSUPPORTED.get((fmt, name or ""))
        if reason:
            raise ExportError(f"cannot export to {fmt}: {reason}")


def export_predictor(predictor: Predictor, path: str | Path, fmt: str, *, example_seconds: float | None = None,
                     check: bool = True, seed: int = 0, meta: dict[str, Any] | None = None) -> ExportReport:
    """Export ``predictor`` as ``fmt`` to ``path`` (plus ``path.json`` describing inputs and
    outputs), then check it against the PyTorch pipeline on random audio."""
    started = time.perf_counter()
    check_exportable(predictor, fmt)
    path = Path(path)
    predictor.device = torch.device("cpu")
    scorer = scorer_of(predictor)
    minimum = scorer.segment[0] if scorer.segment is not None else SAMPLE_RATE // 10
    seconds = example_seconds or max(3.0, 1.5 * minimum / SAMPLE_RATE)
    example = _random_audio(2, int(seconds * SAMPLE_RATE), seed)
    outputs = ["probs", "embedding"] + (["attributes"] if scorer.attributes else [])
    with torch.no_grad():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # the Python ints a trace records are checked below
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(scorer, (example,), check_trace=False)
            buffer = io.BytesIO()  # serialise first: a model error and a write error read differently
            try:
                torch.jit.save(traced, buffer)
            except RuntimeError as err:
                raise ExportError(f"TorchScript cannot save this model: {_first_line(err)}") from None
            _write_bytes(path, buffer.getvalue())
        else:
            _export_onnx(scorer, example, path, outputs, minimum)
    report = ExportReport(path=path, format=fmt, outputs=outputs, classes=list(predictor.labels.classes))
    if check:
        try:
            report.checks = verify(predictor, path, fmt, outputs, minimum, seed=seed + 1,
                                   lengths=(example.shape[1], int(example.shape[1] * 1.37) + 7))
        except ExportError:
            path.unlink(missing_ok=True)
            raise
    report.seconds = time.perf_counter() - started
    _write_sidecar(path, fmt, predictor, scorer, outputs, minimum, report, meta)
    return report


def verify(predictor: Predictor, path: Path, fmt: str, outputs: list[str], minimum: int, *, seed: int = 1,
           lengths: tuple[int, ...] = (48000, 65767), batches: tuple[int, ...] = (2, 1, 3)) -> list[dict[str, Any]]:
    """Run the export and the PyTorch :class:`Predictor` on the same random audio (several
    batch sizes and lengths); raise :class:`ExportError` if an output differs."""
    run = load_exported(path, fmt)
    checks = []
    for i, (batch, length) in enumerate(zip(batches, [*lengths, *lengths][: len(batches)])):
        wave = _random_audio(batch, max(length, minimum), seed + i)
        expected = predictor.outputs(wave, torch.full((batch,), wave.shape[1], dtype=torch.long), None)
        try:
            got = run(wave)
        except Exception as err:
            raise ExportError(f"the exported {fmt} model fails on input shape {list(wave.shape)}: "
                              f"{type(err).__name__}: {str(err)[:300]}") from None
        diffs = {}
        for name, value in zip(outputs, got):
            ref = expected["probs" if name == "probs" else name].float()
            if tuple(value.shape) != tuple(ref.shape):
                raise ExportError(f"the exported {fmt} model gives {name} of shape {list(value.shape)} for input "
                                  f"{list(wave.shape)}; PyTorch gives {list(ref.shape)}")
            diffs[name] = float((value - ref).abs().max())
            scale = max(1.0, float(ref.abs().max()))
            if not diffs[name] <= TOLERANCE * scale:
                raise ExportError(f"the exported {fmt} model differs from PyTorch on input {list(wave.shape)}: "
                                  f"max abs difference of {name} {diffs[name]:.3g}")
        checks.append({"shape": list(wave.shape), "max_abs_diff": diffs})
    return checks


def load_exported(path: str | Path, fmt: str, device: str | torch.device = "cpu") -> Any:
    """A callable ``wave [B, T] tensor -> tuple of output tensors (on the CPU)`` running the
    exported file on ``device`` (ONNX: the CUDA provider when asked for and installed)."""
    device = torch.device(device)
    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location=device).eval()

        def run_torchscript(wave: Tensor) -> tuple[Tensor, ...]:
            with torch.no_grad():
                return tuple(v.cpu() for v in module(wave.to(device)))

        return run_torchscript
    # deferred: the optional onnx extra
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), providers=providers)
    name = session.get_inputs()[0].name

    def run_onnx(wave: Tensor) -> tuple[Tensor, ...]:
        return tuple(torch.from_numpy(v) for v in session.run(None, {name: wave.cpu().numpy()}))

    return run_onnx


# --- helpers ---------------------------------------------------------------------------------

def _export_onnx(scorer: WaveformScorer, example: Tensor, path: Path, outputs: list[str], minimum: int) -> None:

    batch = torch.export.Dim("batch", min=1)
    samples = torch.export.Dim("samples", min=minimum, max=SAMPLE_RATE * 3600)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # e.g. "torchvision is not installed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(scorer, (example,), dynamo=True, input_names=["wave"],
                                        output_names=outputs, dynamic_shapes=({0: batch, 1: samples},),
                                        verbose=False)
            assert program is not None  # dynamo=True always returns the program
            data = program.model_proto.SerializeToString()  # weights inline, as one file
        except Exception as err:
            raise ExportError(f"ONNX export failed: {type(err).__name__}: {_first_line(err)}") from None
    _write_bytes(path, data)


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err.strerror or err}") from None


def _probe_features(frontend: nn.Module) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        wave = _random_audio(1, SAMPLE_RATE, 0)
        return frontend(wave, torch.tensor([SAMPLE_RATE]))


def _random_audio(batch: int, samples: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (0.1 * torch.randn(batch, samples, generator=generator)).clamp(-1, 1)


def _registered_name(component: nn.Module, kind: str) -> str | None:
    # deferred: the registry imports every plug-in module; only when looked up
    from ssl_ser.features import FRONTENDS
    from ssl_ser.models import MODELS

    registry = FRONTENDS if kind == "frontend" else MODELS
    for name in registry.names():
        if registry.get(name) is type(component):
            return name
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    for line in text.splitlines():
        if line.strip() and not line.startswith("Failed to export the model with torch.export"):
            return line.strip()[:300]
    return text[:300]


def _write_sidecar(path: Path, fmt: str, predictor: Predictor, scorer: WaveformScorer, outputs: list[str],
                   minimum: int, report: ExportReport, meta: dict[str, Any] | None) -> None:

    segment = predictor.segment
    info: dict[str, Any] = {
        "format": fmt, "file": path.name, "sample_rate": SAMPLE_RATE,
        "input": {"name": "wave", "shape": ["batch", "samples"], "dtype": "float32",
                  "min_samples": minimum, "note": "mono, 16 kHz, every row the same length"},
        "outputs": {name: {"probs": ["batch", "classes"], "embedding": ["batch", "D"],
                           "attributes": ["batch", "arousal/valence/dominance"]}[name] for name in outputs},
        "classes": list(predictor.labels.classes),
        "attributes": list(predictor.attributes) if scorer.attributes else [],
        "speaker_norm": "global (pooled training speakers)" if scorer.normalise else None,
        "segments": None if segment is None else {
            "seconds": segment.seconds, "hop": segment.eval_hop,
            "from": "voiced frames" if scorer.frame_segment is not None else "waveform",
            "pooling": "mean of segment outputs, inside the graph"},
        "checkpoint": (meta or {}).get("checkpoint"), "epoch": (meta or {}).get("epoch"),
        "checks": report.checks,
        "card": card_from_meta(meta, classes=list(predictor.labels.classes),
                               frontend=_registered_name(predictor.frontend, "frontend")),
    }
    path.with_name(path.name + ".json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    write_card(info["card"], path.with_name(path.name + ".md"))
