"""Helpers for the recipe tests (as fixtures: test modules cannot import a conftest under
``--import-mode=importlib``): full expected rows, key checks, captured warnings."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ssl_ser.data.manifest import Utterance


def _expect(audio: Path, *, key: str, corpus: str, seconds: float, rate: int = 16_000,
            speaker: str | None = None, emotion: str | None = None, labelled: bool,
            split: str | None = None, arousal: float | None = None, valence: float | None = None,
            dominance: float | None = None, **extra: Any) -> dict[str, Any]:
    """The complete row expected for a generated file (every field, so nothing goes unchecked)."""
    return dict(key=key, audio=str(audio.resolve()), corpus=corpus, speaker=speaker,
                emotion=emotion, arousal=arousal, valence=valence, dominance=dominance,
                labelled=labelled, split=split, duration=pytest.approx(seconds, abs=1e-3),
                sample_rate=rate, extra=extra)


def _as_dicts(rows: list[Utterance]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rows]


def _check_keys(rows: list[Utterance]) -> None:
    keys = [r.key for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for row in rows:
        row.validate()
        assert "." not in row.key and "/" not in row.key
        assert Path(row.audio).is_absolute()


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


@pytest.fixture
def expect() -> Callable[..., dict[str, Any]]:
    """``expect(audio_path, key=..., corpus=..., seconds=..., labelled=..., **fields_and_extra)``."""
    return _expect


@pytest.fixture
def as_dicts() -> Callable[[list[Utterance]], list[dict[str, Any]]]:
    return _as_dicts


@pytest.fixture
def check_keys() -> Callable[[list[Utterance]], None]:
    """Asserts keys sorted, unique, dot- and slash-free; audio paths absolute; rows valid."""
    return _check_keys


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """``logged()``: the text of every message (info and up) logged so far in the test."""
    caplog.set_level(logging.INFO)
    return lambda: _log_text(caplog)
