from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare


def _tree(tmp_path: Path, write_audio) -> dict[str, Path]:
    return {
        "a": write_audio(tmp_path / "data" / "clips" / "a.wav", seconds=0.3),
        "b": write_audio(tmp_path / "data" / "clips" / "b.flac", seconds=0.2, channels=2),
        "c": write_audio(tmp_path / "elsewhere" / "c.wav", seconds=0.25, rate=44_100),
    }


def test_csv_mapped_columns(tmp_path: Path, write_audio, expect, as_dicts, check_keys) -> None:
    f = _tree(tmp_path, write_audio)
    table = tmp_path / "data" / "my list.csv"
    table.write_text(
        "path,label,spk,part,act,val,gender,path_ok\n"
        "clips/a.wav,Angry,s1,train,0.8,-0.5,f,yes\n"
        "clips/b.flac,,s2,,,,m,\n"
        f"{f['c']},happy,s1,test,0.3,0.9,,\n")
    rows = prepare("csv", table, audio="path", emotion="label", speaker="spk", split="part",
                   arousal="act", valence="val", corpus="mine")
    check_keys(rows)
    far = str(f["c"].with_suffix("")).strip("/").replace("/", "_").replace(".", "_")
    assert as_dicts(rows) == [
        expect(f["a"], key="mine-clips_a", corpus="mine", seconds=0.3, speaker="s1",
               emotion="Angry", labelled=True, split="train", arousal=0.8, valence=-0.5,
               gender="f", path_ok="yes"),
        expect(f["b"], key="mine-clips_b", corpus="mine", seconds=0.2, speaker="s2",
               labelled=False, gender="m", path_ok=None),
        expect(f["c"], key=f"mine-{far}", corpus="mine", seconds=0.25, rate=44_100, speaker="s1",
               emotion="happy", labelled=True, split="test", arousal=0.3, valence=0.9,
               gender=None, path_ok=None),
    ]


def test_csv_same_named_columns_tsv_and_key(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    table = tmp_path / "data" / "list.tsv"
    # "path" and "corpus" columns share names with utterance() arguments: they land in extra.
    table.write_text("key\taudio\temotion\tdominance\tpath\tcorpus\n"
                     "u1\tclips/a.wav\tsad\t\tp\tq\n"
                     "u2\tclips/b.flac\t\t4\tp2\tq2\n")
    rows = prepare("csv", table)
    assert [(r.key, r.corpus, r.emotion, r.dominance, r.labelled, r.extra) for r in rows] == [
        ("list-u1", "list", "sad", None, True, {"path": "p", "corpus": "q"}),
        ("list-u2", "list", None, 4.0, True, {"path": "p2", "corpus": "q2"})]


def test_csv_missing_files(tmp_path: Path, write_audio, logged) -> None:
    _tree(tmp_path, write_audio)
    table = tmp_path / "data" / "list.csv"
    table.write_text("audio\nclips/a.wav\nclips/gone.wav\n")
    with pytest.raises(CorpusError, match=r"1 audio file\(s\) listed in .*list.csv do not exist .*"
                                          r"clips/gone.wav \(line 3\); pass on_missing=skip"):
        prepare("csv", table)
    rows = prepare("csv", table, on_missing="skip")
    assert [r.key for r in rows] == ["list-clips_a"] and "clips/gone.wav (line 3)" in logged()


def test_csv_bad_tables(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    table = tmp_path / "data" / "list.csv"
    table.write_text("file,label\nclips/a.wav,sad\n")
    with pytest.raises(CorpusError, match=r"no 'audio' column; name the column .* \(columns: file, label\)"):
        prepare("csv", table)
    with pytest.raises(CorpusError, match=r"no column 'mood' for emotion; columns: file, label"):
        prepare("csv", table, audio="file", emotion="mood")
    table.write_text("audio,arousal\nclips/a.wav,high\n")
    with pytest.raises(CorpusError, match=r"list.csv:2: column 'arousal' must be a number, got 'high'"):
        prepare("csv", table)
    table.write_text("audio\n\n,\n")
    with pytest.raises(CorpusError, match=r"list.csv:3: empty audio path"):
        prepare("csv", table)
    with pytest.raises(CorpusError, match=r"csv: .*data is a folder; expected a CSV file"):
        prepare("csv", tmp_path / "data")
