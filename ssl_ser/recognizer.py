"""Using a trained model from Python: :class:`Recognizer`.

    from ssl_ser.recognizer import Recognizer

    recognizer = Recognizer.from_run("demo_out/runs/demo")      # or .from_export("model.onnx")
    result = recognizer.predict("speech.wav")                    # or (waveform, sample_rate)
    result.label, result.probs, result.attributes               # class, posteriors, A/V/D

Audio may be a file path (any format soundfile reads), or a ``[samples]`` / ``[channels,
samples]`` array or tensor with its sample rate; it goes through :func:`ssl_ser.audio.check`
like every other entry point (refusals raise :class:`ssl_ser.audio.AudioRejected` with the
shard builder's reasons). Recordings longer than ``window`` seconds are scored in windows every
``hop`` seconds (see :mod:`ssl_ser.predict`). No Ray is involved; ``device`` picks where the
model runs (``cuda`` when available by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_ser import audio
from ssl_ser.errors import SslSerError
from ssl_ser.export import ExportError, load_exported
from ssl_ser.inference import Predictor
from ssl_ser.predict import (
    Prediction,
    PredictorScorer,
    Scorer,
    default_window,
    score_wave,
)

Audio = str | Path | tuple[np.ndarray | torch.Tensor, int]
"""A file path, or ``(waveform, sample_rate)``."""


@dataclass
class Refusal:
    """A file that could not be scored, with the reason every entry point gives."""

    path: str
    reason: str
    """One of :data:`ssl_ser.audio.REJECT_REASONS`."""
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": f"{self.reason}: {self.detail}", "reason": self.reason}


class Recognizer:
    """A trained model (checkpoint or exported file) that classifies recordings."""

    def __init__(self, scorer: Scorer, *, window: float | None = None, hop: float | None = None,
                 min_seconds: float = audio.MIN_SECONDS, info: dict[str, Any] | None = None) -> None:
        self.scorer = scorer
        self.window = window
        """Seconds scored at once; longer recordings are scored in windows (None: all at once)."""
        self.hop = hop
        """Seconds between windows (None: ``window``, no overlap)."""
        self.min_seconds = min_seconds
        self.info = info or {}
        """Where the model came from (checkpoint metadata or the export's description)."""

    @property
    def classes(self) -> list[str]:
        return list(self.scorer.classes)

    @property
    def attributes(self) -> list[str]:
        """The dimensional attributes the model predicts (empty for a categorical-only model)."""
        return list(self.scorer.attributes)

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def from_run(cls, path: str | Path, *, which: str = "best", device: str | torch.device | None = None,
                 window: float | None | str = "job", hop: float | None = None) -> Recognizer:
        """The model of a run directory (its ``best`` or ``latest`` checkpoint) or a checkpoint.

        ``window="job"`` uses the job's ``data.eval_max_seconds`` (as evaluation does)."""
        predictor, meta = Predictor.from_checkpoint(path, device=default_device(device), which=which)
        return cls(PredictorScorer(predictor), window=default_window(meta) if isinstance(window, str) else window,
                   hop=hop, info=meta)

    @classmethod
    def from_export(cls, path: str | Path, *, device: str | torch.device | None = None,
                    window: float | None = None, hop: float | None = None) -> Recognizer:
        """A TorchScript or ONNX file written by ``ssl-ser export`` (its ``FILE.json`` next to it)."""
        scorer = ExportedScorer(path, device=default_device(device))
        return cls(scorer, window=window, hop=hop, info=scorer.description)

    # --- scoring ------------------------------------------------------------------------------
    def predict(self, audio_or_path: Audio | np.ndarray | torch.Tensor, sample_rate: int | None = None, *,
                per_window: bool = False, embedding: bool = False, batch_size: int = 8) -> Prediction:
        """Scores of one recording: a path, or a waveform with its ``sample_rate``."""
        path, checked = self._checked(audio_or_path, sample_rate)
        result = score_wave(self.scorer, checked.wave, window=self.window, hop=self.hop, per_window=per_window,
                            embedding=embedding, batch_size=batch_size)
        result.path = path
        result.normalised_from_peak = checked.peak
        return result

    def predict_batch(self, items: Iterable[Audio], *, per_window: bool = False, embedding: bool = False,
                      batch_size: int = 8) -> list[Prediction]:
        """:meth:`predict` for each item (paths or ``(waveform, sample_rate)`` pairs), in order;
        the first refused item raises."""
        return [self.predict(item, per_window=per_window, embedding=embedding, batch_size=batch_size)
                for item in items]

    def predict_files(self, paths: Iterable[str | Path], *, per_window: bool = False, embedding: bool = False,
                      batch_size: int = 8) -> Iterator[Prediction | Refusal]:
        """One result per file, in order; a file that cannot be scored gives a :class:`Refusal`
        and the others are still scored (what ``ssl-ser predict`` writes)."""
        for path in paths:
            try:
                yield self.predict(str(path), per_window=per_window, embedding=embedding, batch_size=batch_size)
            except audio.AudioRejected as err:
                yield Refusal(str(path), err.reason, err.detail)

    def _checked(self, item: Any, sample_rate: int | None) -> tuple[str | None, audio.CheckedAudio]:
        if isinstance(item, tuple):
            item, sample_rate = item
        if isinstance(item, (str, Path)):
            if sample_rate is not None:
                raise SslSerError("give a sample rate only with a waveform; a file's rate is in its header")
            return str(item), audio.load_checked(item, min_seconds=self.min_seconds)
        if sample_rate is None:
            raise SslSerError("a waveform needs its sample rate: predict(wave, sample_rate)")
        wave = torch.as_tensor(np.asarray(item) if not isinstance(item, torch.Tensor) else item)
        if wave.dim() > 2 or (wave.dim() == 2 and wave.shape[0] > wave.shape[1]):
            raise SslSerError(f"a waveform must be [samples] or [channels, samples], got shape {list(wave.shape)}"
                              + (" (transpose a [samples, channels] array)" if wave.dim() == 2 else ""))
        return None, audio.check(wave.detach().cpu(), int(sample_rate), min_seconds=self.min_seconds)


class ExportedScorer:
    """An exported TorchScript or ONNX file as a :class:`~ssl_ser.predict.Scorer`."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:

        path = Path(path)
        sidecar = path.with_name(path.name + ".json")
        if not path.is_file():
            raise ExportError(f"no such exported model: {path}")
        if not sidecar.is_file():
            raise ExportError(f"{sidecar} is missing; it describes the export (ssl-ser export writes it)")
        self.description: dict[str, Any] = json.loads(sidecar.read_text())
        self.classes = list(self.description["classes"])
        self.attributes = list(self.description.get("attributes", []))
        self.outputs = list(self.description["outputs"])
        self.min_samples = int(self.description["input"]["min_samples"])
        self.device = torch.device(device)
        self._run = load_exported(path, self.description["format"], device=self.device)

    def __call__(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        if audio.shape[1] < self.min_samples:  # shorter than one segment: zero-padded, as a whole
            audio = torch.nn.functional.pad(audio, (0, self.min_samples - audio.shape[1]))
        return dict(zip(self.outputs, self._run(audio)))


def default_device(device: str | torch.device | None) -> torch.device:
    """``device``, or ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)

