from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare

SES01 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()
C-E4:\tNeutral;\t()
C-F1:\tNeutral;\t(curious)
A-E3:\tval 3; act 2; dom  2;\t()
A-E4:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)
A-F1:\tval 3; act 2; dom  1;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M000\tang\t[1.5000, 4.0000, 4.5000]
C-E1:\tAnger;\t()
C-E3:\tAnger;\t()
C-M1:\tAnger; Frustration;\t()
A-E3:\tval 2; act 4; dom  4;\t()
A-E4:\tval 1; act 4; dom  5;\t(threatening, belligerent)
A-M1:\tval 1; act 5; dom  5;\t()

[14.8872 - 18.0175]\tSes01F_impro01_F001\texc\t[4.0000, 3.5000, 3.0000]
C-E2:\tExcited; Happiness;\t()
C-E3:\tExcited;\t()
C-F1:\tHappiness;\t()
A-E3:\tval 4; act 3; dom  3;\t()
A-E4:\tval 4; act 4; dom  3;\t()

[19.2900 - 20.8800]\tSes01F_impro01_F002\txxx\t[2.0000, 3.0000, 2.5000]
C-E2:\tFrustration;\t()
C-E3:\tNeutral;\t()
C-E4:\tAnger;\t()
A-E3:\tval 2; act 3; dom  2;\t()
"""

SES02 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[2.0000 - 4.5000]\tSes02M_script01_1_F003\tfru\t[2.0000, 3.5000, 3.0000]
C-E1:\tFrustration;\t()
A-E1:\tval 2; act 4; dom  3;\t()

[30.1000 - 31.0000]\tSes02M_script01_1_M010\tsad\t[1.5000, 2.0000, 2.0000]
C-E1:\tSadness;\t()
"""


def _tree(tmp_path: Path, write_audio) -> dict[str, Path]:
    release = tmp_path / "IEMOCAP_full_release"
    s1 = release / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    s2 = release / "Session2" / "sentences" / "wav" / "Ses02M_script01_1"
    for session, text, dialog in (("Session1", SES01, "Ses01F_impro01"),
                                  ("Session2", SES02, "Ses02M_script01_1")):
        folder = release / session / "dialog" / "EmoEvaluation"
        (folder / "Categorical").mkdir(parents=True)  # raters' files: not read
        (folder / "Categorical" / f"{dialog}_e1_cat.txt").write_text(f"{dialog}_F000 :Neutral; ()\n")
        (folder / f"{dialog}.txt").write_text(text)
    return {
        "f000": write_audio(s1 / "Ses01F_impro01_F000.wav", seconds=0.3),
        "m000": write_audio(s1 / "Ses01F_impro01_M000.flac", seconds=0.2, channels=2),
        "f001": write_audio(s1 / "Ses01F_impro01_F001.wav", seconds=0.25),
        "f002": write_audio(s1 / "Ses01F_impro01_F002.wav", seconds=0.1),
        "f003": write_audio(s2 / "Ses02M_script01_1_F003.wav", seconds=0.2, rate=22_050),
        "m004": write_audio(s2 / "Ses02M_script01_1_M004.wav", seconds=0.15),
        "junk": write_audio(s2 / "readme.wav", seconds=0.05),
    }


def test_iemocap_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    f = _tree(tmp_path, write_audio)
    rows = prepare("iemocap", tmp_path)  # the release's parent folder
    check_keys(rows)
    impro = dict(corpus="iemocap", split="Session1", dialog="Ses01F_impro01", scripted=False)
    script = dict(corpus="iemocap", split="Session2", dialog="Ses02M_script01_1", scripted=True)
    assert as_dicts(rows) == [
        expect(f["f000"], key="iemocap-Ses01F_impro01_F000", seconds=0.3, speaker="Ses01F",
               emotion="neutral", valence=2.5, arousal=2.5, dominance=2.5, labelled=True,
               gender="female", emotion_code="neu", start=6.2901, end=8.2357, **impro),
        expect(f["f001"], key="iemocap-Ses01F_impro01_F001", seconds=0.25, speaker="Ses01F",
               emotion="excited", valence=4.0, arousal=3.5, dominance=3.0, labelled=True,
               gender="female", emotion_code="exc", start=14.8872, end=18.0175, **impro),
        expect(f["f002"], key="iemocap-Ses01F_impro01_F002", seconds=0.1, speaker="Ses01F",
               emotion="no_agreement", valence=2.0, arousal=3.0, dominance=2.5, labelled=True,
               gender="female", emotion_code="xxx", start=19.29, end=20.88, **impro),
        expect(f["m000"], key="iemocap-Ses01F_impro01_M000", seconds=0.2, speaker="Ses01M",
               emotion="angry", valence=1.5, arousal=4.0, dominance=4.5, labelled=True,
               gender="male", emotion_code="ang", start=10.01, end=11.3925, **impro),
        expect(f["f003"], key="iemocap-Ses02M_script01_1_F003", seconds=0.2, rate=22_050,
               speaker="Ses02F", emotion="frustrated", valence=2.0, arousal=3.5, dominance=3.0,
               labelled=True, gender="female", emotion_code="fru", start=2.0, end=4.5, **script),
        expect(f["m004"], key="iemocap-Ses02M_script01_1_M004", seconds=0.15, speaker="Ses02M",
               labelled=False, gender="male", **script),
    ]
    text = logged()
    assert "1 evaluation line(s) have no audio file (e.g. Ses02M_script01_1_M010)" in text
    assert "skipped 1 file(s)" in text and "Ses02M_script01_1/readme.wav" in text


def test_iemocap_merge_excited_from_release_folder(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    rows = prepare("iemocap", tmp_path / "IEMOCAP_full_release", merge_excited=True)
    assert [(r.key[-4:], r.emotion, r.extra.get("emotion_code")) for r in rows] == [
        ("F000", "neutral", "neu"), ("F001", "happy", "exc"), ("F002", "no_agreement", "xxx"),
        ("M000", "angry", "ang"), ("F003", "frustrated", "fru"), ("M004", None, None)]


def test_iemocap_broken_evaluation_line(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    bad = tmp_path / "IEMOCAP_full_release" / "Session2" / "dialog" / "EmoEvaluation" / "Ses02M_script01_1.txt"
    bad.write_text(SES02.replace("[1.5000, 2.0000, 2.0000]", "[1.5000; 2.0000]"))
    with pytest.raises(CorpusError, match=r"Ses02M_script01_1.txt:7: not an IEMOCAP evaluation line"):
        prepare("iemocap", tmp_path)


def test_iemocap_without_sessions(tmp_path: Path) -> None:
    (tmp_path / "IEMOCAP_full_release" / "Documentation").mkdir(parents=True)
    with pytest.raises(CorpusError, match="iemocap: no Session1..5 folders in"):
        prepare("iemocap", tmp_path)
