"""Scoring new audio files with a trained model.

Any format soundfile reads, any sample rate and channel count: every file goes through
:func:`ssl_ser.audio.load` (decode, downmix, resample to 16 kHz), as in the shard build. A file
longer than ``window`` seconds is scored in windows every ``hop`` seconds (the last window
ends at the end of the file, so all of it is heard); its scores are the mean of the windows'
scores, and ``per_window`` adds each window's own. Segment models still cut each window into
their segments, as in training. Files without a speaker use the pooled training statistics of
speaker-wise normalisation. A file that cannot be read gives a row with an ``error`` field and
the others are still scored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from ssl_ser import SAMPLE_RATE
from ssl_ser.errors import SslSerError
from ssl_ser.inference import ATTRIBUTES, Predictor

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                            ".au", ".snd", ".caf", ".w64", ".rf64"})


class PredictError(SslSerError):
    """Input that cannot be scored (missing path, unreadable or empty audio); names the file."""


def find_audio(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the audio files (by suffix) under directories, recursively, sorted.
    Paths that do not exist are kept: scoring reports them like unreadable files."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
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


def score_wave(predictor: Predictor, wave: torch.Tensor, *, window: float | None = None,
               hop: float | None = None, per_window: bool = False, embeddings: bool = False,
               batch_size: int = 8) -> dict[str, Any]:
    """Scores of one mono 16-kHz waveform: class posteriors (mean over windows), attributes,
    embedding, and each window's posteriors on request."""
    n = int(wave.numel())
    if n == 0:
        raise PredictError("empty audio (no samples)")
    if not bool(torch.isfinite(wave).all()):
        raise PredictError("audio holds NaN or infinite samples")
    size = n if window is None else max(1, int(round(window * SAMPLE_RATE)))
    step = size if hop is None else max(1, int(round(hop * SAMPLE_RATE)))
    spans = windows(n, size, step)
    outputs: dict[str, list[torch.Tensor]] = {}
    for first in range(0, len(spans), batch_size):
        chunk = spans[first:first + batch_size]
        longest = max(e - s for s, e in chunk)
        audio = torch.zeros(len(chunk), longest)
        for row, (s, e) in enumerate(chunk):
            audio[row, : e - s] = wave[s:e]
        lengths = torch.tensor([e - s for s, e in chunk], dtype=torch.long)
        out = predictor.outputs(audio.to(predictor.device), lengths.to(predictor.device), None)
        for key, value in out.items():
            outputs.setdefault(key, []).append(value.float().cpu())
    merged = {k: torch.cat(v) for k, v in outputs.items()}
    classes = predictor.labels.classes
    probs = merged["probs"].mean(0)
    row: dict[str, Any] = {"duration": round(n / SAMPLE_RATE, 4), "pred": classes[int(probs.argmax())],
                           "probs": _named(classes, probs)}
    if "attributes" in merged and predictor.attributes:
        row["attributes"] = _attributes(merged["attributes"].mean(0), predictor.attributes)
    if embeddings and "embedding" in merged:
        row["embedding"] = [round(float(v), 6) for v in merged["embedding"].mean(0)]
    if per_window and len(spans) > 1:
        row["windows"] = []
        for i, (s, e) in enumerate(spans):
            item: dict[str, Any] = {"start": round(s / SAMPLE_RATE, 4), "end": round(e / SAMPLE_RATE, 4),
                                    "pred": classes[int(merged["probs"][i].argmax())],
                                    "probs": _named(classes, merged["probs"][i])}
            if "attributes" in row:
                item["attributes"] = _attributes(merged["attributes"][i], predictor.attributes)
            row["windows"].append(item)
    return row


def predict_files(predictor: Predictor, paths: Sequence[str | Path], *, window: float | None = None,
                  hop: float | None = None, per_window: bool = False, embeddings: bool = False,
                  batch_size: int = 8) -> Iterator[dict[str, Any]]:
    """One row per file, in order: ``{"path", "duration", "pred", "probs", ...}``, or
    ``{"path", "error"}`` for a file that could not be scored."""
    from ssl_ser.audio import AudioError, load

    for path in paths:
        try:
            if not Path(path).exists():
                raise PredictError("no such file")
            wave = load(path)
            yield {"path": str(path), **score_wave(predictor, wave, window=window, hop=hop,
                                                     per_window=per_window, embeddings=embeddings,
                                                     batch_size=batch_size)}
        except (AudioError, PredictError) as err:
            message = str(err)
            prefix = f"{path}: "
            yield {"path": str(path), "error": message[len(prefix):] if message.startswith(prefix) else message}


def default_window(meta: dict[str, Any]) -> float | None:
    """The job's ``data.eval_max_seconds``: evaluation's bound on what is scored at once."""
    value = meta.get("job", {}).get("data", {}).get("eval_max_seconds")
    return float(value) if value else None


def _named(classes: Sequence[str], values: torch.Tensor) -> dict[str, float]:
    return {c: round(float(v), 6) for c, v in zip(classes, values)}


def _attributes(values: torch.Tensor, names: Sequence[str]) -> dict[str, float | None]:
    out = {}
    for name in names:
        v = float(values[ATTRIBUTES.index(name)])
        out[name] = v if math.isfinite(v) else None
    return out
