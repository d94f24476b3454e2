"""Audio I/O: soundfile for decoding (torchaudio 2.11's ``load`` needs FFmpeg), torchaudio for
resampling. Everything inside the system is mono float32 at :data:`ssl_ser.SAMPLE_RATE`.

:func:`check` (and :func:`load_checked` for files) is the one gate every entry point puts audio
through: the shard builder, ``ssl-ser predict`` and :class:`ssl_ser.Recognizer`. It refuses audio
that would give a meaningless result, with a reason code from :data:`REJECT_REASONS` and a detail
in the same words everywhere, and scales float audio that exceeds full scale down to a peak of
1.0 instead of clipping it (the caller records the original peak).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ssl_ser import SAMPLE_RATE
from ssl_ser.errors import SslSerError

#: Audio files are recognised by these suffixes everywhere (corpus recipes, ``predict``): formats
#: libsndfile decodes. One list, so a file ``predict`` accepts is never silently left out of a manifest.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                            ".au", ".snd", ".caf", ".w64", ".rf64"})

#: Shorter audio is refused: a few frames say nothing about emotion.
MIN_SECONDS = 0.1

#: Why audio is refused; the shard builder's ``rejects.jsonl`` and predictions' errors use these.
REJECT_REASONS = ("missing", "unreadable", "empty", "non_finite", "too_short", "silent", "constant")


class AudioError(SslSerError):
    """A file or byte string that cannot be decoded as audio; the message says why."""


class AudioRejected(AudioError):
    """Audio that cannot be used; ``reason`` is one of :data:`REJECT_REASONS`, ``detail`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CheckedAudio:
    """Audio that passed :func:`check`: mono float32 at 16 kHz, every sample within [-1, 1]."""

    wave: torch.Tensor
    peak: float | None = None
    """The original peak when float audio beyond full scale was scaled down to 1.0, else None."""


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
        with sf.SoundFile(handle) as opened:  # not sf.read, which also seeks to frame 0
            data = opened.read(dtype="float32", always_2d=True)  # (2-3 % of a 2 s FLAC's decode)
            rate = opened.samplerate
    except Exception as err:
        name = "<bytes>" if isinstance(source, bytes) else str(source)
        raise AudioError(f"{name}: cannot decode audio ({err})") from None
    return np.ascontiguousarray(data.T), int(rate)


#: int16 PCM times this is exactly the float32 that :func:`decode` gives for 16-bit audio.
PCM16_SCALE = 1.0 / 32768


def decode_clip(source: bytes, length: int | None = None,
                start: Callable[[int], int] = lambda excess: 0,
                rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """:func:`decode` for readers that batch (the shard reader), in two ways cheaper:

    - audio at ``rate`` longer than ``length`` frames is read only from ``start(excess)`` (a
      frame in ``[0, excess]``, ``excess`` = frames beyond ``length``) for ``length`` frames:
      FLAC and WAV seek, so a short crop of a long utterance costs a short decode. ``start`` is
      called only then; audio at another rate is decoded whole (the caller resamples first);
    - 16-bit mono audio at ``rate`` (what shards hold) comes back as its int16 samples, half
      the bytes to move between processes; times :data:`PCM16_SCALE` they are exactly
      :func:`decode`'s float32. Anything else is float32 ``[channels, samples]``.
    """
    try:
        with sf.SoundFile(io.BytesIO(source)) as handle:
            at_rate = handle.samplerate == rate
            dtype = "int16" if at_rate and handle.channels == 1 and handle.subtype == "PCM_16" \
                else "float32"
            excess = -1 if length is None else handle.frames - length
            if at_rate and excess > 0 and handle.seekable():
                handle.seek(start(excess))
                data = handle.read(length, dtype=dtype, always_2d=True)
            else:
                data = handle.read(dtype=dtype, always_2d=True)
            found = int(handle.samplerate)
    except Exception as err:
        raise AudioError(f"<bytes>: cannot decode audio ({err})") from None
    return np.ascontiguousarray(data.T), found


def to_mono(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Downmix ``[channels, samples]`` to ``[samples]`` by averaging channels."""
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if wave.dim() == 2:
        return wave[0] if wave.shape[0] == 1 else wave.mean(dim=0)  # skip a reduction for mono
    return wave


def resample(wave: torch.Tensor, rate: int, target: int = SAMPLE_RATE) -> torch.Tensor:
    return wave if rate == target else AF.resample(wave, rate, target)


def load(source: str | Path | bytes, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Decode, downmix to mono and resample, unchecked; what enters the system goes through
    :func:`load_checked` (or :func:`check`) instead."""
    data, rate = decode(source)
    return resample(to_mono(data), rate, sample_rate)


def check(data: torch.Tensor | np.ndarray, rate: int, *, min_seconds: float = MIN_SECONDS,
          sample_rate: int = SAMPLE_RATE) -> CheckedAudio:
    """Downmix and resample ``[channels, samples]`` or ``[samples]`` audio at ``rate``, refusing
    (:class:`AudioRejected`) empty, non-finite, too short, silent or constant audio. Float audio
    has full scale 1.0; integer PCM (e.g. int16) is scaled by its type's full scale."""
    wave = torch.as_tensor(data)
    if not wave.is_floating_point() and wave.dtype != torch.bool:
        wave = wave.double() / (torch.iinfo(wave.dtype).max + 1)
    wave = wave.float()
    if wave.numel() == 0:
        raise AudioRejected("empty", "no audio samples")
    bad = ~torch.isfinite(wave)
    if bool(bad.any()):  # before resampling, which would smear them over their neighbours
        raise AudioRejected("non_finite", f"{int(bad.sum())} NaN/inf sample(s)")
    wave = resample(to_mono(wave), rate, sample_rate)
    seconds = wave.numel() / sample_rate
    if seconds < min_seconds:
        raise AudioRejected("too_short", f"{seconds:.3f} s < min {min_seconds} s")
    peak = float(wave.abs().max())
    if peak > 1.0:  # float audio beyond full scale: scaling keeps the waveform, clipping would not
        wave = wave / peak
    pcm = torch.round(wave * 32767.0)  # what a 16-bit shard stores
    if not bool(pcm.any()):
        raise AudioRejected("silent", "all samples are zero at 16-bit resolution")
    if float(pcm.min()) == float(pcm.max()):
        raise AudioRejected("constant", f"every sample has the value {float(pcm[0]) / 32767.0:+.4f} "
                                        f"(clipped or DC, no signal)")
    return CheckedAudio(wave, peak if peak > 1.0 else None)


def load_checked(path: str | Path, *, min_seconds: float = MIN_SECONDS) -> CheckedAudio:
    """:func:`check` a file: also refuses a missing (``missing``) or undecodable (``unreadable``) one."""
    if not Path(path).is_file():
        raise AudioRejected("missing", f"no such file: {path}")
    try:
        data, rate = decode(path)
    except AudioError as err:
        raise AudioRejected("unreadable", str(err)) from None
    return check(data, rate, min_seconds=min_seconds)


def is_audio_file(path: Path) -> bool:
    """Whether ``path``'s name says audio (:data:`AUDIO_SUFFIXES`), hidden files excluded."""
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


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
