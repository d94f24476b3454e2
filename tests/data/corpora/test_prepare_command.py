from __future__ import annotations

from pathlib import Path

import soundfile as sf

from ssl_ser.cli import main
from ssl_ser.data.manifest import read_manifest


def test_prepare_writes_manifest_and_summary(tmp_path: Path, write_audio, capsys) -> None:
    root = tmp_path / "IEMOCAP_full_release" / "Session1"
    wav = root / "sentences" / "wav" / "Ses01F_impro01"
    write_audio(wav / "Ses01F_impro01_F000.wav", seconds=1.0)
    write_audio(wav / "Ses01F_impro01_F001.wav", seconds=0.5, rate=8_000)
    (wav / "Ses01F_impro01_M000.wav").write_bytes(b"RIFF broken")
    (root / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (root / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[1.0 - 2.0]\tSes01F_impro01_F000\texc\t[3.0, 4.0, 2.0]\nC-E1:\tExcited;\t()\n\n"
        "[3.0 - 4.0]\tSes01F_impro01_M000\tsad\t[1.0, 2.0, 2.0]\nC-E1:\tSadness;\t()\n")
    out = tmp_path / "out" / "iemocap.jsonl"

    code = main(["prepare", "iemocap", str(tmp_path), "--out", str(out),
                 "--option", "merge_excited=true"])

    assert code == 0
    rows = read_manifest(out)
    assert [(r.key, r.emotion, r.labelled, r.duration) for r in rows] == [
        ("iemocap-Ses01F_impro01_F000", "happy", True, 1.0),
        ("iemocap-Ses01F_impro01_F001", None, False, 0.5),
        ("iemocap-Ses01F_impro01_M000", "sad", True, None)]
    printed = capsys.readouterr().out
    assert f"wrote 3 rows to {out}" in printed
    assert "rows        3 (2 labelled, 1 unlabelled)" in printed
    assert "speakers    2" in printed
    assert "emotions    happy 1, sad 1" in printed
    assert "splits      Session1 3" in printed
    assert "rates       8000 1, 16000 1 (Hz)" in printed
    assert "hours       0.00 (per file 0.50-1.00 s, mean 0.75 s)" in printed
    assert "unreadable  1\n" in printed and "Ses01F_impro01_M000.wav: unreadable audio header" in printed
    assert sf.info(rows[0].audio).samplerate == 16_000


def test_prepare_list_and_errors(tmp_path: Path, capsys) -> None:
    assert main(["prepare", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "iemocap" in listing and "options: merge_excited=False" in listing
    assert main(["prepare", "list"]) == 0 and "ravdess" in capsys.readouterr().out

    assert main(["prepare", "ravdess", str(tmp_path / "none"), "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "ssl-ser prepare: error: ravdess: root" in capsys.readouterr().err
    assert main(["prepare", "ravdess", str(tmp_path)]) == 2
    assert "give CORPUS ROOT --out MANIFEST.jsonl" in capsys.readouterr().err
    assert main(["prepare", "ravdess", str(tmp_path), "-o", str(tmp_path / "m.jsonl"),
                 "--option", "include_song"]) == 2
    assert "--option 'include_song' is not of the form key=value" in capsys.readouterr().err
    assert not (tmp_path / "m.jsonl").exists()
