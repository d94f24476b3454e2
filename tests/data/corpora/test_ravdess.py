from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare


def _tree(root: Path, write_audio) -> dict[str, Path]:
    speech, song = root / "Audio_Speech_Actors_01-24", root / "Audio_Song_Actors_01-24"
    return {
        "a": write_audio(speech / "Actor_01" / "03-01-05-02-01-02-01.wav", seconds=0.4),
        "b": write_audio(speech / "Actor_12" / "03-01-01-01-02-01-12.flac", seconds=0.3,
                         channels=2),
        "c": write_audio(speech / "Actor_12" / "03-01-08-02-02-02-12.wav", seconds=0.2,
                         rate=48_000),
        "song": write_audio(song / "Actor_02" / "03-02-03-01-01-01-02.wav", seconds=0.2),
        "bad": write_audio(speech / "Actor_01" / "03-01-09-01-01-01-01.wav", seconds=0.1),
        "junk": write_audio(speech / "Actor_01" / "take 2.wav", seconds=0.1),
    }


def test_ravdess_speech(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    f = _tree(tmp_path, write_audio)
    rows = prepare("ravdess", tmp_path)
    check_keys(rows)
    assert as_dicts(rows) == [
        expect(f["b"], key="ravdess-03-01-01-01-02-01-12", corpus="ravdess", seconds=0.3,
               speaker="12", emotion="neutral", labelled=True, gender="female",
               vocal_channel="speech", intensity="normal",
               statement="Dogs are sitting by the door", repetition=1, modality="audio"),
        expect(f["a"], key="ravdess-03-01-05-02-01-02-01", corpus="ravdess", seconds=0.4,
               speaker="01", emotion="angry", labelled=True, gender="male",
               vocal_channel="speech", intensity="strong",
               statement="Kids are talking by the door", repetition=2, modality="audio"),
        expect(f["c"], key="ravdess-03-01-08-02-02-02-12", corpus="ravdess", seconds=0.2,
               rate=48_000, speaker="12", emotion="surprised", labelled=True, gender="female",
               vocal_channel="speech", intensity="strong",
               statement="Dogs are sitting by the door", repetition=2, modality="audio"),
    ]
    text = logged()
    assert "skipped 2 file(s)" in text and "03-01-09-01-01-01-01.wav" in text and "take 2.wav" in text
    assert "left out 1 song file(s)" in text


def test_ravdess_with_song(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    rows = prepare("ravdess", tmp_path, include_song=True)
    song = [r for r in rows if r.extra["vocal_channel"] == "song"]
    assert [(r.key, r.speaker, r.emotion, r.extra["gender"]) for r in song] == [
        ("ravdess-03-02-03-01-01-01-02", "02", "happy", "female")]
    assert len(rows) == 4


def test_ravdess_only_song_says_so(tmp_path: Path, write_audio) -> None:
    write_audio(tmp_path / "Actor_02" / "03-02-03-01-01-01-02.wav", seconds=0.05)
    with pytest.raises(CorpusError, match="only song files; pass include_song=true"):
        prepare("ravdess", tmp_path)


def test_ravdess_same_recording_twice(tmp_path: Path, write_audio) -> None:
    write_audio(tmp_path / "Actor_01" / "03-01-05-02-01-02-01.wav", seconds=0.05)
    write_audio(tmp_path / "Actor_01" / "03-01-05-02-01-02-01.flac", seconds=0.05)
    with pytest.raises(CorpusError, match=r"both map to key 'ravdess-03-01-05-02-01-02-01'"):
        prepare("ravdess", tmp_path)
