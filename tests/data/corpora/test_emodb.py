from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare


def test_emodb_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    root = tmp_path / "emodb"
    a = write_audio(root / "wav" / "03a01Fa.wav", seconds=0.5)
    b = write_audio(root / "wav" / "08b02Wc.flac", seconds=0.3, channels=2)  # re-encoded, stereo
    c = write_audio(root / "wav" / "16a05Lb.wav", seconds=0.25, rate=48_000)
    write_audio(root / "wav" / "notes.wav", seconds=0.1)  # not EmoDB's naming
    write_audio(root / "wav" / "99a01Fa.wav", seconds=0.1)  # no such speaker
    (root / "wav" / "._03a01Fa.wav").write_bytes(b"\0\0")  # macOS archive junk: ignored
    (root / "lablaut").mkdir()
    (root / "lablaut" / "03a01Fa.lablaut").write_text("0.0 a\n")

    rows = prepare("emodb", root)

    check_keys(rows)
    assert as_dicts(rows) == [
        expect(a, key="emodb-03a01Fa", corpus="emodb", seconds=0.5, speaker="03", emotion="happy",
               labelled=True, gender="male", text="a01", version="a"),
        expect(b, key="emodb-08b02Wc", corpus="emodb", seconds=0.3, speaker="08", emotion="angry",
               labelled=True, gender="female", text="b02", version="c"),
        expect(c, key="emodb-16a05Lb", corpus="emodb", seconds=0.25, rate=48_000, speaker="16",
               emotion="boredom", labelled=True, gender="female", text="a05", version="b"),
    ]
    assert "skipped 2 file(s)" in logged() and "wav/99a01Fa.wav, wav/notes.wav" in logged()


def test_emodb_every_letter(tmp_path: Path, write_audio) -> None:
    for letter in "WLEAFTN":
        write_audio(tmp_path / f"10a02{letter}a.wav", seconds=0.05)  # the wav/ folder itself as root
    emotions = [r.emotion for r in prepare("emodb", tmp_path)]
    assert emotions == ["fearful", "disgust", "happy", "boredom", "neutral", "sad", "angry"]


def test_emodb_nothing_found(tmp_path: Path, write_audio) -> None:
    write_audio(tmp_path / "wav" / "hello.wav", seconds=0.05)
    with pytest.raises(CorpusError, match=r"emodb: no usable audio files found under .*wav/03a01Fa.wav"):
        prepare("emodb", tmp_path)
