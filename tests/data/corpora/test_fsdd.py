from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare


def test_fsdd_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    rec = tmp_path / "recordings"
    a = write_audio(rec / "0_george_0.wav", seconds=0.3, rate=8_000)
    b = write_audio(rec / "7_yweweler_49.flac", seconds=0.2, rate=8_000, channels=2)
    c = write_audio(rec / "3_jackson_12.wav", seconds=0.25, rate=16_000)
    write_audio(rec / "george_0.wav", seconds=0.05, rate=8_000)
    write_audio(tmp_path / "utils" / "9_theo_1.wav", seconds=0.05)  # outside recordings/: not read
    rows = prepare("fsdd", tmp_path)
    check_keys(rows)
    assert as_dicts(rows) == [
        expect(a, key="fsdd-0_george_0", corpus="fsdd", seconds=0.3, rate=8_000, speaker="george",
               labelled=False, digit=0, take=0),
        expect(c, key="fsdd-3_jackson_12", corpus="fsdd", seconds=0.25, speaker="jackson",
               labelled=False, digit=3, take=12),
        expect(b, key="fsdd-7_yweweler_49", corpus="fsdd", seconds=0.2, rate=8_000,
               speaker="yweweler", labelled=False, digit=7, take=49),
    ]
    assert "skipped 1 file(s)" in logged() and "recordings/george_0.wav" in logged()
    assert [r.key for r in prepare("fsdd", rec)] == [r.key for r in rows]  # recordings/ as root


def test_fsdd_missing_root(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"fsdd: root .*nowhere does not exist; expected FSDD's layout"):
        prepare("fsdd", tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CorpusError, match=r"file.txt is not a folder"):
        prepare("fsdd", tmp_path / "file.txt")
