"""Fixtures shared by every test: generated audio, never real corpora."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

WriteAudio = Callable[..., Path]


def tone(seconds: float = 1.0, rate: int = 16_000, freq: float = 220.0, channels: int = 1,
         amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    """A tone plus a little noise, ``[samples, channels]``; different seeds differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    mono = amplitude * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


@pytest.fixture
def write_audio() -> WriteAudio:
    """``write_audio(path, seconds=1.0, rate=16000, channels=1, freq=220.0, seed=0)`` writes a
    tone (format from the suffix: .wav or .flac), creating parent folders, and returns the path."""

    def write(path: str | Path, seconds: float = 1.0, rate: int = 16_000, channels: int = 1,
              freq: float = 220.0, seed: int = 0) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), tone(seconds, rate, freq, channels, seed=seed), rate, subtype="PCM_16")
        return path

    return write
