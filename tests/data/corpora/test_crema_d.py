from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare

DEMOGRAPHICS = """ActorID,Age,Sex,Race,Ethnicity
1001,51,Male,Caucasian,Not Hispanic
1002,21,Female,Caucasian,Not Hispanic
"""


def _tree(root: Path, write_audio) -> dict[str, Path]:
    wav = root / "AudioWAV"
    files = {
        "a": write_audio(wav / "1001_DFA_ANG_XX.wav", seconds=0.3),
        "b": write_audio(wav / "1002_IEO_HAP_HI.flac", seconds=0.2, channels=2),
        "c": write_audio(wav / "1091_WSI_SAD_LO.wav", seconds=0.25, rate=44_100),
    }
    write_audio(wav / "1001_DFA_ANG.wav", seconds=0.05)  # level missing
    write_audio(wav / "1002_XYZ_ANG_HI.wav", seconds=0.05)  # no such sentence
    write_audio(root / "AudioMP3" / "1001_DFA_ANG_XX.wav", seconds=0.05)  # the same again: not read
    return files


def test_crema_d_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    f = _tree(tmp_path, write_audio)
    (tmp_path / "VideoDemographics.csv").write_text(DEMOGRAPHICS)
    rows = prepare("crema-d", tmp_path)
    check_keys(rows)
    assert as_dicts(rows) == [
        expect(f["a"], key="crema-d-1001_DFA_ANG_XX", corpus="crema-d", seconds=0.3,
               speaker="1001", emotion="angry", labelled=True, gender="male", age=51,
               sentence="DFA", text="Don't forget a jacket", intensity="unspecified"),
        expect(f["b"], key="crema-d-1002_IEO_HAP_HI", corpus="crema-d", seconds=0.2,
               speaker="1002", emotion="happy", labelled=True, gender="female", age=21,
               sentence="IEO", text="It's eleven o'clock", intensity="high"),
        expect(f["c"], key="crema-d-1091_WSI_SAD_LO", corpus="crema-d", seconds=0.25,
               rate=44_100, speaker="1091", emotion="sad", labelled=True, gender=None, age=None,
               sentence="WSI", text="We'll stop in a couple of minutes", intensity="low"),
    ]
    assert "skipped 2 file(s)" in logged()
    assert "AudioWAV/1001_DFA_ANG.wav, AudioWAV/1002_XYZ_ANG_HI.wav" in logged()


def test_crema_d_audiowav_as_root_without_demographics(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    rows = prepare("crema-d", tmp_path / "AudioWAV")
    assert [(r.speaker, r.emotion, r.extra["gender"]) for r in rows] == [
        ("1001", "angry", None), ("1002", "happy", None), ("1091", "sad", None)]


def test_crema_d_demographics_option(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "people.csv").write_text(DEMOGRAPHICS)
    rows = prepare("crema-d", tmp_path, demographics="meta/people.csv")
    assert [r.extra["gender"] for r in rows] == ["male", "female", None]
    with pytest.raises(CorpusError, match=r"demographics file .*nope.csv does not exist"):
        prepare("crema-d", tmp_path, demographics="nope.csv")
    (tmp_path / "meta" / "people.csv").write_text("id,sex\n1001,m\n")
    with pytest.raises(CorpusError, match=r"people.csv: expected columns ActorID,Age,Sex"):
        prepare("crema-d", tmp_path, demographics="meta/people.csv")
