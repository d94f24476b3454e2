"""Fixtures shared by every test: generated audio, never real corpora."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

WriteAudio = Callable[..., Path]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a 2-core machine: one intra-op thread is many times faster than threads
    fighting over the cores (and than pytest, Ray and DataLoader processes competing)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


@pytest.fixture(scope="session")
def demo_shards(tmp_path_factory: pytest.TempPathFactory):  # -> ssl_ser.demo.DemoPaths
    """A small synthetic corpus as shard sets (train_labelled, train_unlabelled, valid, test,
    noise), built once per test session with the project's own demo pipeline."""
    from ssl_ser.data.synthetic import SyntheticConfig
    from ssl_ser.demo import run_demo

    cfg = SyntheticConfig(speakers=5, valid_speakers=1, test_speakers=1, utterances_per_class=4,
                          unlabelled_speakers=2, unlabelled_per_speaker=12, noise_clips=4,
                          min_seconds=1.0, max_seconds=2.0, seed=0)
    return run_demo(tmp_path_factory.mktemp("demo"), cfg, progress=False, log=lambda _: None)


def tiny_job(shards, name: str = "tiny", **sections: object) -> dict:
    """A job config (as a dict) that trains a tiny model on ``demo_shards`` in seconds."""
    job: dict = {
        "name": name,
        "method": {"name": "supervised"},
        "frontend": {"name": "logmel"},
        "model": {"name": "resnet34_xvector", "size": "tiny"},
        "data": {"train": [str(shards.shards["train_labelled"])],
                 "valid": [str(shards.shards["valid"])],
                 "batch_size": 8, "crop_seconds": 1.5, "num_workers": 0, "shuffle_buffer": 50},
        "optim": {"name": "adam", "lr": 0.003},
        "train": {"epochs": 3, "seed": 0, "metric": "ua"},
        "debug": {"max_train_batches": 6, "max_eval_batches": None, "num_workers": 0},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(job.get(key), dict):
            job[key] = {**job[key], **value}
        else:
            job[key] = value
    return job


@pytest.fixture
def make_tiny_job():
    return tiny_job
