from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare


def _tree(root: Path, write_audio) -> dict[str, Path]:
    files = {
        "noise": write_audio(root / "noise" / "free-sound" / "noise-free-sound-0000.wav", seconds=0.3),
        "bible": write_audio(root / "noise" / "sound-bible" / "noise-sound-bible-0003.flac",
                             seconds=0.2, channels=2),
        "music": write_audio(root / "music" / "fma" / "music-fma-0001.wav", seconds=0.25,
                             rate=44_100),
        "speech": write_audio(root / "speech" / "librivox" / "speech-librivox-0000.wav", seconds=0.1),
    }
    write_audio(root / "noise" / "stray.wav", seconds=0.05)  # no source folder
    (root / "noise" / "free-sound" / "ANNOTATIONS").write_text("noise-free-sound-0000\n")
    (root / "README").write_text("MUSAN\n")
    return files


def test_musan_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    f = _tree(tmp_path, write_audio)
    rows = prepare("musan", tmp_path)
    check_keys(rows)
    assert as_dicts(rows) == [
        expect(f["music"], key="musan-music-fma-0001", corpus="musan", seconds=0.25, rate=44_100,
               labelled=False, subset="music", source="fma"),
        expect(f["noise"], key="musan-noise-free-sound-0000", corpus="musan", seconds=0.3,
               labelled=False, subset="noise", source="free-sound"),
        expect(f["bible"], key="musan-noise-sound-bible-0003", corpus="musan", seconds=0.2,
               labelled=False, subset="noise", source="sound-bible"),
        expect(f["speech"], key="musan-speech-librivox-0000", corpus="musan", seconds=0.1,
               labelled=False, subset="speech", source="librivox"),
    ]
    assert "skipped 1 file(s)" in logged() and "noise/stray.wav" in logged()


def test_musan_subsets(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    assert {r.extra["subset"] for r in prepare("musan", tmp_path, subsets="noise")} == {"noise"}
    assert {r.extra["subset"] for r in prepare("musan", tmp_path, subsets=["music", "speech"])} == {
        "music", "speech"}
    with pytest.raises(CorpusError, match="subsets must be some of noise, music, speech; got 'noize'"):
        prepare("musan", tmp_path, subsets="noize")


def test_musan_missing_subset_folder(tmp_path: Path, write_audio) -> None:
    write_audio(tmp_path / "noise" / "free-sound" / "noise-free-sound-0000.wav", seconds=0.05)
    with pytest.raises(CorpusError, match=r"no music/, speech/ folder in .*choose subsets"):
        prepare("musan", tmp_path)
    assert len(prepare("musan", tmp_path, subsets="noise")) == 1
