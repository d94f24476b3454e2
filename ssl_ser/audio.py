"""Audio I/O: soundfile for decoding (torchaudio 2.11's ``load`` needs FFmpeg), torchaudio for
resampling. Everything inside the system is mono float32 at :data:`ssl_ser.SAMPLE_RATE`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ssl_ser import SAMPLE_RATE
from ssl_ser.errors import SslSerError


class AudioError(SslSerError):
    """A file or byte string that cannot be decoded as audio; the message says why."""


def info(path: str | Path) -> tuple[float, int]:
    """(duration in seconds, sample rate) from the file header, without decoding."""
    try:
        meta = sf.info(str(path))
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise AudioError(f"{path}: unreadable audio header ({err})") from None
    return float(meta.frames) / meta.samplerate, int(meta.samplerate)


def decode(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Decode a file path or encoded bytes to float32 ``[channels, samples]`` and its rate."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
        data, rate = sf.read(handle, dtype="float32", always_2d=True)
    except Exception as err:
        name = "<bytes>" if isinstance(source, bytes) else str(source)
        raise AudioError(f"{name}: cannot decode audio ({err})") from None
    return np.ascontiguousarray(data.T), int(rate)


def to_mono(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Downmix ``[channels, samples]`` to ``[samples]`` by averaging channels."""
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if wave.dim() == 2:
        return wave[0] if wave.shape[0] == 1 else wave.mean(dim=0)  # skip a reduction for mono
    return wave


def resample(wave: torch.Tensor, rate: int, target: int = SAMPLE_RATE) -> torch.Tensor:
    return wave if rate == target else AF.resample(wave, rate, target)


def load(source: str | Path | bytes, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Decode, downmix to mono and resample: the one way audio enters the system."""
    data, rate = decode(source)
    return resample(to_mono(data), rate, sample_rate)


def encode_flac(wave: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit FLAC bytes of a mono waveform in [-1, 1]."""
    buf = io.BytesIO()
    data = np.asarray(wave, dtype=np.float32)
    sf.write(buf, np.clip(data, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def write(path: str | Path, wave: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono waveform; the format follows the suffix (.wav, .flac)."""
    sf.write(str(path), np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), sample_rate,
             subtype="PCM_16")
