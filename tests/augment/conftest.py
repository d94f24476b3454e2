"""Fixtures for the augmentation tests: batches whose every sample says where it came from,
and small noise shard sets built from generated clips."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssl_ser.labels import IGNORE
from ssl_ser.targets import Targets

CLASSES = ["angry", "happy", "neutral", "sad"]
STRIDE = 2**17
"""Sample ``t`` of the utterance with id ``u`` holds ``u * STRIDE + t`` (exact in float32
for the sizes used here), so any piece of audio names its source and position."""


def coded(uid: int, length: int) -> torch.Tensor:
    return uid * STRIDE + torch.arange(length, dtype=torch.float32)


def decode(piece: torch.Tensor) -> tuple[int, int]:
    """(utterance id, start) of a piece cut from a coded utterance."""
    first = int(piece[0])
    return first // STRIDE, first % STRIDE


class CodedBatches:
    """Makes batches of coded utterances: ``make(labels, lengths)`` with fresh ids each time."""

    def __init__(self) -> None:
        self.next_id = 1
        self.audio: dict[str, torch.Tensor] = {}

    def make(self, labels: Sequence[str | None], lengths: Sequence[int], *,
             labelled: Sequence[bool] | None = None, extra: dict[str, Sequence[int]] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, Targets]:
        width = max(lengths)
        audio = torch.zeros(len(labels), width)
        keys = []
        for row, n in enumerate(lengths):
            uid = self.next_id
            self.next_id += 1
            key = f"u{uid}"
            audio[row, :n] = coded(uid, n)
            self.audio[key] = coded(uid, n)
            keys.append(key)
        label = torch.tensor([IGNORE if c is None else CLASSES.index(c) for c in labels])
        flags = [c is not None for c in labels] if labelled is None else list(labelled)
        attributes = torch.tensor([[float(i), math.nan, math.nan] for i in range(len(labels))])
        targets = Targets(keys=keys, label=label, attributes=attributes,
                          labelled=torch.tensor(flags, dtype=torch.bool),
                          extra={k: torch.tensor(list(v)) for k, v in (extra or {}).items()},
                          speakers=[f"corpus/s{uid % 3}" for uid in range(self.next_id - len(labels), self.next_id)])
        return audio, torch.tensor(list(lengths)), targets


@pytest.fixture
def batches() -> CodedBatches:
    return CodedBatches()


def write_clip(path: Path, wave: np.ndarray, rate: int = 16_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave.astype(np.float32), rate, subtype="PCM_16")
    return path


BuildShards = Callable[..., Path]


@pytest.fixture(scope="session")
def noise_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A noise shard set in the folder recipe's layout (``label_field=label``): 2 noise, 2 music
    and 4 speech clips of 0.5-1.5 s (different generated signals each)."""
    from ssl_ser.data.corpora import prepare
    from ssl_ser.data.manifest import write_manifest
    from ssl_ser.data.shards import build_shards

    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    rate = 16_000
    for i in range(2):
        noise = 0.2 * rng.standard_normal(int(0.5 * rate * (i + 1)))
        write_clip(root / "clips" / "noise" / f"n{i}.flac", noise)
    for i in range(2):
        t = np.arange(int(rate * (1.0 + 0.5 * i))) / rate
        write_clip(root / "clips" / "music" / f"m{i}.flac", 0.3 * np.sin(2 * np.pi * 440 * (i + 1) * t))
    for i in range(4):
        t = np.arange(int(rate * 0.8)) / rate
        wave = 0.3 * np.sin(2 * np.pi * (120 + 30 * i) * t) * (1 + np.sin(2 * np.pi * 4 * t))
        write_clip(root / "clips" / "speech" / f"s{i}.flac", wave + 0.01 * rng.standard_normal(t.size))
    rows = prepare("folder", root / "clips", label_field="label", corpus="noiseclips")
    write_manifest(rows, root / "noise.jsonl")
    build_shards(root / "noise.jsonl", root / "shards", max_count=3, workers=1, progress=False)
    return root / "shards"


@pytest.fixture(scope="session")
def speech_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled shard set (6 tones of 0.6-1.1 s, emotions and speakers) to make noisy copies of."""
    from ssl_ser.data.manifest import utterance, write_manifest
    from ssl_ser.data.shards import build_shards

    root = tmp_path_factory.mktemp("speech")
    rate = 16_000
    rows = []
    for i in range(6):
        t = np.arange(int(rate * (0.6 + 0.1 * i))) / rate
        path = write_clip(root / "audio" / f"t{i}.flac", 0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t))
        rows.append(utterance(path, key=f"tone-{i}", corpus="tones", speaker=f"s{i % 2}",
                              emotion=CLASSES[i % 4], split="test"))
    write_manifest(rows, root / "speech.jsonl")
    build_shards(root / "speech.jsonl", root / "shards", max_count=4, workers=1, progress=False)
    return root / "shards"
