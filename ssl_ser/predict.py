"""Scoring waveforms in windows: what ``ssl-ser predict`` and :class:`ssl_ser.recognizer.Recognizer` share.

A waveform (mono, 16 kHz, already through :func:`ssl_ser.audio.check`) longer than ``window``
seconds is scored in windows every ``hop`` seconds (the last window ends at the end of the
audio, so all of it is heard); its scores are the mean of the windows' scores, and
``per_window`` adds each window's own. Every window of one waveform has the same length, so
they are scored as one batch by any :class:`Scorer`: the PyTorch pipeline of a checkpoint
(:class:`PredictorScorer`) or an exported file. Segment models still cut each window into
their segments, as in training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ssl_ser import SAMPLE_RATE
from ssl_ser.audio import is_audio_file
from ssl_ser.data.manifest import ATTRIBUTES
from ssl_ser.errors import SslSerError
from ssl_ser.inference import Predictor


class PredictError(SslSerError):
    """Settings that cannot be used for scoring (e.g. a window that is not positive)."""


class Scorer(Protocol):
    """Equal-length waveform rows ``[B, T]`` -> ``probs [B, C]``, ``embedding [B, D]`` and, for
    models with an attribute head, ``attributes [B, 3]`` (arousal, valence, dominance)."""

    classes: list[str]
    attributes: list[str]
    """The attributes the model was trained on (a subset of ``ATTRIBUTES``)."""

    def __call__(self, audio: torch.Tensor) -> dict[str, torch.Tensor]: ...


class PredictorScorer:
    """A checkpoint's PyTorch pipeline (:class:`Predictor`) as a :class:`Scorer`."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.classes = list(predictor.labels.classes)
        self.attributes = list(predictor.attributes)

    def __call__(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        device = self.predictor.device
        lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long, device=device)
        return self.predictor.outputs(audio.to(device), lengths, None)


@dataclass
class WindowScores:
    start: float
    """Seconds from the start of the audio."""
    end: float
    label: str
    probs: dict[str, float]
    attributes: dict[str, float | None] | None = None


@dataclass
class Prediction:
    """What a model says about one recording: mean over its windows, and each window on request."""

    label: str
    """The most probable class."""
    probs: dict[str, float]
    """Class posteriors (mean over windows)."""
    duration: float
    """Seconds of audio scored (after resampling to 16 kHz)."""
    attributes: dict[str, float | None] | None = None
    """Arousal/valence/dominance (the ones the model was trained on), None without that head."""
    embedding: list[float] | None = None
    """The model's embedding (mean over windows), when asked for."""
    windows: list[WindowScores] = field(default_factory=list)
    """Each window's scores, when asked for and there is more than one window."""
    path: str | None = None
    normalised_from_peak: float | None = None
    """The original peak of float audio beyond full scale, which was scaled down to 1.0."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON row of ``ssl-ser predict`` (numbers rounded to 6 decimals)."""
        row: dict[str, Any] = {} if self.path is None else {"path": self.path}
        row.update(duration=round(self.duration, 4), pred=self.label, probs=_rounded(self.probs))
        if self.normalised_from_peak is not None:
            row["normalised_from_peak"] = round(self.normalised_from_peak, 6)
        if self.attributes is not None:
            row["attributes"] = self.attributes
        if self.embedding is not None:
            row["embedding"] = [round(v, 6) for v in self.embedding]
        if self.windows:
            row["windows"] = [{"start": round(w.start, 4), "end": round(w.end, 4), "pred": w.label,
                               "probs": _rounded(w.probs),
                               **({"attributes": w.attributes} if w.attributes is not None else {})}
                              for w in self.windows]
        return row


def find_audio(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the audio files (:data:`ssl_ser.audio.AUDIO_SUFFIXES`) under
    directories, recursively, sorted. Paths that do not exist (and broken links) are kept:
    scoring reports them as ``missing``."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if is_audio_file(p) and not p.is_dir())
        else:
            found.append(path)
    return found


def windows(num_samples: int, size: int, step: int) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges of ``size`` every ``step`` that cover ``num_samples``; the last
    one ends at the end (it may overlap its neighbour more). One range if the audio is short."""
    if size <= 0 or step <= 0:
        raise PredictError(f"window and hop must be positive (got {size} and {step} samples)")
    if num_samples <= size:
        return [(0, num_samples)]
    starts = list(range(0, num_samples - size + 1, step))
    if starts[-1] + size < num_samples:
        starts.append(num_samples - size)
    return [(s, s + size) for s in starts]


def score_wave(scorer: Scorer, wave: torch.Tensor, *, window: float | None = None,
               hop: float | None = None, per_window: bool = False, embedding: bool = False,
               batch_size: int = 8) -> Prediction:
    """Scores of one checked mono 16-kHz waveform (see the module docstring)."""
    n = int(wave.numel())
    size = n if window is None else max(1, int(round(window * SAMPLE_RATE)))
    step = size if hop is None else max(1, int(round(hop * SAMPLE_RATE)))
    spans = windows(n, size, step)
    outputs: dict[str, list[torch.Tensor]] = {}
    for first in range(0, len(spans), batch_size):
        audio = torch.stack([wave[s:e] for s, e in spans[first:first + batch_size]])
        for key, value in scorer(audio).items():
            outputs.setdefault(key, []).append(value.float().cpu())
    merged = {k: torch.cat(v) for k, v in outputs.items()}
    classes = scorer.classes
    has_attributes = "attributes" in merged and bool(scorer.attributes)

    def attributes(values: torch.Tensor) -> dict[str, float | None] | None:
        return _attributes(values, scorer.attributes) if has_attributes else None

    probs = merged["probs"].mean(0)
    result = Prediction(label=classes[int(probs.argmax())], probs=_named(classes, probs), duration=n / SAMPLE_RATE,
                        attributes=attributes(merged["attributes"].mean(0)) if has_attributes else None)
    if embedding and "embedding" in merged:
        result.embedding = [float(v) for v in merged["embedding"].mean(0)]
    if per_window and len(spans) > 1:
        result.windows = [WindowScores(start=s / SAMPLE_RATE, end=e / SAMPLE_RATE,
                                       label=classes[int(merged["probs"][i].argmax())],
                                       probs=_named(classes, merged["probs"][i]),
                                       attributes=attributes(merged["attributes"][i]) if has_attributes else None)
                          for i, (s, e) in enumerate(spans)]
    return result


def default_window(meta: dict[str, Any]) -> float | None:
    """The job's ``data.eval_max_seconds``: evaluation's bound on what is scored at once."""
    value = meta.get("job", {}).get("data", {}).get("eval_max_seconds")
    return float(value) if value else None


def _named(classes: Sequence[str], values: torch.Tensor) -> dict[str, float]:
    return {c: float(v) for c, v in zip(classes, values)}


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in values.items()}


def _attributes(values: torch.Tensor, names: Sequence[str]) -> dict[str, float | None]:
    out = {}
    for name in names:
        v = float(values[ATTRIBUTES.index(name)])
        out[name] = v if math.isfinite(v) else None
    return out
