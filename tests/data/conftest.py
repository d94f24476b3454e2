"""Fixtures for the data tests: tiny manifests of generated tones and the shard sets built from
them (never real corpora)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ssl_ser.data.manifest import Utterance, utterance, write_manifest

EMOTIONS = ("neutral", "happy", "angry", "sad")
MakeManifest = Callable[..., Path]


def tone_rows(folder: Path, seconds: Sequence[float], *, prefix: str = "utt",
              labelled: bool | Sequence[bool] = True, corpus: str = "tones",
              rate: int = 16_000) -> list[Utterance]:
    """One FLAC tone per entry of ``seconds`` (different pitch each) and its manifest row.

    Labelled rows get an emotion, a speaker and attributes; unlabelled ones get none.
    """
    rows = []
    flags = [labelled] * len(seconds) if isinstance(labelled, bool) else list(labelled)
    for i, (length, is_labelled) in enumerate(zip(seconds, flags)):
        path = folder / f"{prefix}_{i:03d}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(length * rate)) / rate
        rng = np.random.default_rng(i)
        wave = 0.3 * np.sin(2 * np.pi * (150 + 10 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(str(path), wave.astype(np.float32), rate, subtype="PCM_16")
        emotion = EMOTIONS[i % len(EMOTIONS)] if is_labelled else None
        rows.append(utterance(
            path, key=f"{prefix}-{i:03d}", corpus=corpus, speaker=f"s{i % 3}" if is_labelled else None,
            emotion=emotion, labelled=is_labelled, split="train",
            arousal=0.5 + 0.1 * (i % 4) if is_labelled else None,
            valence=0.2 if is_labelled else None, dominance=None))
    return rows


@pytest.fixture
def make_manifest(tmp_path: Path) -> MakeManifest:
    """``make_manifest(seconds, prefix="utt", labelled=True, name="m.jsonl")`` writes tones and a
    manifest for them under ``tmp_path`` and returns the manifest path."""

    def make(seconds: Sequence[float], *, prefix: str = "utt", labelled: bool | Sequence[bool] = True,
             name: str | None = None) -> Path:
        rows = tone_rows(tmp_path / "audio" / prefix, seconds, prefix=prefix, labelled=labelled)
        path = tmp_path / (name or f"{prefix}.jsonl")
        write_manifest(rows, path)
        return path

    return make


def _build(root: Path, name: str, seconds: Sequence[float], *, labelled: bool | Sequence[bool],
           max_count: int) -> Path:
    from ssl_ser.data.shards import build_shards

    rows = tone_rows(root / "audio" / name, seconds, prefix=name, labelled=labelled)
    write_manifest(rows, root / f"{name}.jsonl")
    build_shards(root / f"{name}.jsonl", root / name, max_count=max_count, workers=1, progress=False)
    return root / name


@pytest.fixture(scope="session")
def shard_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Read-only shard sets shared by the stream tests (copy one before damaging it):

    - ``many``: 40 samples in 5 shards, 0.1-0.5 s, every third unlabelled;
    - ``few``: 6 samples in 2 shards (fewer shards than 2 ranks x 2 workers);
    - ``labelled``/``unlabelled``: 24 samples each, 3 shards, for mixing;
    - ``varied``: 48 samples of 0.1-2.0 s in 3 shards, for bucketing.
    """
    root = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    return {
        "many": _build(root, "many", [0.1 + 0.01 * i for i in range(40)],
                       labelled=[i % 3 != 2 for i in range(40)], max_count=8),
        "few": _build(root, "few", [0.2] * 6, labelled=True, max_count=3),
        "labelled": _build(root, "labelled", [0.1] * 24, labelled=True, max_count=8),
        "unlabelled": _build(root, "unlabelled", [0.1] * 24, labelled=False, max_count=8),
        "varied": _build(root, "varied", list(rng.uniform(0.1, 2.0, size=48)), labelled=True,
                         max_count=16),
    }
