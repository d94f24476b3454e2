"""What every recipe shares: the registry, option checking, missing roots, the emotion words."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from ssl_ser.data.corpora import CORPORA, EMOTIONS, CorpusError, prepare
from ssl_ser.registry import UnknownNameError

RECIPES = {"crema-d": "crema_d", "csv": "csv_table", "emodb": "emodb", "folder": "folder",
           "fsdd": "fsdd", "iemocap": "iemocap", "msp-podcast": "msp_podcast", "musan": "musan",
           "ravdess": "ravdess", "urdu": "urdu", "voxceleb": "voxceleb"}


def test_registered() -> None:
    assert set(RECIPES) <= set(CORPORA.names())
    with pytest.raises(UnknownNameError, match="unknown corpus recipe 'ravdes'. Did you mean 'ravdess'"):
        prepare("ravdes", ".")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_missing_root_is_named(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "not-there"
    with pytest.raises(CorpusError, match=rf"{name}: .*{missing} does not exist; expected "):
        prepare(name, missing)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_unknown_option_lists_allowed(tmp_path: Path, name: str) -> None:
    with pytest.raises(CorpusError, match=rf"{name}: unknown option\(s\) bogus, colour; allowed \(with defaults\): "):
        prepare(name, tmp_path, colour="red", bogus=1)


def test_option_values_are_checked_and_coerced(tmp_path: Path, write_audio) -> None:
    write_audio(tmp_path / "Actor_02" / "03-02-03-01-01-01-02.wav", seconds=0.05)
    assert len(prepare("ravdess", tmp_path, include_song="yes")) == 1  # YAML-ish truth values
    with pytest.raises(CorpusError, match=r"ravdess: option include_song=\[1\]: Input should be a valid boolean"):
        prepare("ravdess", tmp_path, include_song=[1])
    rows = prepare("folder", tmp_path, corpus=2024)  # a number given on the command line
    assert rows[0].corpus == "2024"


@pytest.mark.parametrize("module", sorted({"crema_d", "emodb", "iemocap", "msp_podcast", "ravdess", "urdu"}))
def test_emotion_words_are_shared(module: str) -> None:
    mapping = importlib.import_module(f"ssl_ser.data.corpora.{module}").EMOTIONS
    assert set(mapping.values()) <= set(EMOTIONS)
