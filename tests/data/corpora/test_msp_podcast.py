from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare

LABELS = """FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set
MSP-PODCAST_0002_0033.wav,N,4.0,4.2,4.6,127,Female,Train
MSP-PODCAST_0002_0039.wav,X,2.8,3.6,3.0,127,Female,Development
MSP-PODCAST_0003_0012.wav,A,6.2,1.8,5.4,Unknown,Unknown,Test1
MSP-PODCAST_1187_0034.wav,C,3.4,2.2,4.0,1334,Male,Test2
MSP-PODCAST_9999_0001.wav,S,2.0,2.0,2.0,88,Male,Test3
"""


def _tree(root: Path, write_audio, labels: str = "labels_consensus.csv") -> dict[str, Path]:
    audios = root / "Audios"
    files = {
        "a": write_audio(audios / "MSP-PODCAST_0002_0033.wav", seconds=0.3),
        "b": write_audio(audios / "MSP-PODCAST_0002_0039.flac", seconds=0.2, channels=2),
        "c": write_audio(audios / "MSP-PODCAST_0003_0012.wav", seconds=0.25, rate=44_100),
        "d": write_audio(audios / "MSP-PODCAST_1187_0034.wav", seconds=0.1),
        "u": write_audio(audios / "MSP-PODCAST_5000_0001.wav", seconds=0.15),  # unlabelled
    }
    (root / "Labels").mkdir()
    (root / "Labels" / labels).write_text(LABELS)
    return files


def test_msp_podcast_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    f = _tree(tmp_path, write_audio)
    rows = prepare("msp-podcast", tmp_path)
    check_keys(rows)
    c = dict(corpus="msp-podcast")
    assert as_dicts(rows) == [
        expect(f["a"], key="msp-podcast-MSP-PODCAST_0002_0033", seconds=0.3, speaker="127",
               emotion="neutral", arousal=4.0, valence=4.2, dominance=4.6, labelled=True,
               split="Train", gender="female", **c),
        expect(f["b"], key="msp-podcast-MSP-PODCAST_0002_0039", seconds=0.2, speaker="127",
               emotion="no_agreement", arousal=2.8, valence=3.6, dominance=3.0, labelled=True,
               split="Development", gender="female", **c),
        expect(f["c"], key="msp-podcast-MSP-PODCAST_0003_0012", seconds=0.25, rate=44_100,
               speaker=None, emotion="angry", arousal=6.2, valence=1.8, dominance=5.4,
               labelled=True, split="Test1", gender=None, **c),
        expect(f["d"], key="msp-podcast-MSP-PODCAST_1187_0034", seconds=0.1, speaker="1334",
               emotion="contempt", arousal=3.4, valence=2.2, dominance=4.0, labelled=True,
               split="Test2", gender="male", **c),
        expect(f["u"], key="msp-podcast-MSP-PODCAST_5000_0001", seconds=0.15, labelled=False,
               gender=None, **c),
    ]
    assert "1 label row(s)" in logged() and "MSP-PODCAST_9999_0001" in logged()


def test_msp_podcast_early_spelling_and_option(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio, labels="labels_concensus.csv")
    assert sum(r.labelled for r in prepare("msp-podcast", tmp_path)) == 4
    (tmp_path / "Labels" / "labels_concensus.csv").rename(tmp_path / "mine.csv")
    with pytest.raises(CorpusError, match="label file not found"):
        prepare("msp-podcast", tmp_path)
    assert sum(r.labelled for r in prepare("msp-podcast", tmp_path, labels="mine.csv")) == 4


def test_msp_podcast_bad_label_files(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    table = tmp_path / "Labels" / "labels_consensus.csv"
    table.write_text(LABELS.replace(",Split_Set", ""))
    with pytest.raises(CorpusError, match="missing column.s. Split_Set"):
        prepare("msp-podcast", tmp_path)
    table.write_text(LABELS.replace(",A,6.2,", ",Q,6.2,"))
    with pytest.raises(CorpusError, match=r"labels_consensus.csv:4: EmoClass 'Q' is not one of"):
        prepare("msp-podcast", tmp_path)
    table.write_text(LABELS.replace(",A,6.2,", ",A,high,"))
    with pytest.raises(CorpusError, match=r"labels_consensus.csv:4: EmoAct must be a number"):
        prepare("msp-podcast", tmp_path)


def test_msp_podcast_needs_audios(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no Audios/ folder"):
        prepare("msp-podcast", tmp_path)
