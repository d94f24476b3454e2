from __future__ import annotations

from pathlib import Path

from ssl_ser.data.corpora import prepare


def test_urdu_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    a = write_audio(tmp_path / "Angry" / "SM1_F10_A010.wav", seconds=0.3)
    b = write_audio(tmp_path / "Sad" / "SF3_F2_S07.flac", seconds=0.2, channels=2)
    c = write_audio(tmp_path / "Neutral" / "SM27_F1_N01.wav", seconds=0.25, rate=44_100)
    write_audio(tmp_path / "Happy" / "SF3_F2_S08.wav", seconds=0.05)  # initial S in Happy/
    write_audio(tmp_path / "Happy" / "speaker3.wav", seconds=0.05)
    write_audio(tmp_path / "SM1_F10_A011.wav", seconds=0.05)  # no emotion folder
    rows = prepare("urdu", tmp_path)
    check_keys(rows)
    assert as_dicts(rows) == [
        expect(b, key="urdu-SF3_F2_S07", corpus="urdu", seconds=0.2, speaker="SF3",
               emotion="sad", labelled=True, gender="female"),
        expect(a, key="urdu-SM1_F10_A010", corpus="urdu", seconds=0.3, speaker="SM1",
               emotion="angry", labelled=True, gender="male"),
        expect(c, key="urdu-SM27_F1_N01", corpus="urdu", seconds=0.25, rate=44_100,
               speaker="SM27", emotion="neutral", labelled=True, gender="male"),
    ]
    assert "skipped 3 file(s)" in logged()
    assert "Happy/SF3_F2_S08.wav, Happy/speaker3.wav, SM1_F10_A011.wav" in logged()
