"""Protocols: fold construction for each, fold lists (by speaker, by key, shipped), refusals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ssl_ser.folds import (
    CvError,
    FoldList,
    Group,
    load_fold_list,
    make_folds,
    make_groups,
    parse_protocol,
)


def _rows(speakers: dict[str, int], corpus: str = "c", split: dict[str, str] | None = None) -> list[dict]:
    return [{"key": f"{s}-{i}", "corpus": corpus, "speaker": s, "split": (split or {}).get(s)}
            for s, n in speakers.items() for i in range(n)]


def _check_partition(groups: list[Group], folds) -> None:
    """Every group in exactly one of train/valid/test per fold; no speaker on two sides; every
    group tested exactly once over the folds."""
    by_name = {g.name: g for g in groups}
    tested = Counter()
    for fold in folds:
        sides = [set(fold.train), set(fold.valid), set(fold.test)]
        assert sum(map(len, sides)) == len(groups) and set().union(*sides) == set(by_name)
        speakers = [{by_name[g].speaker_id for g in side} for side in sides]
        assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
        tested.update(fold.test)
    assert tested == Counter(set(by_name))


def test_leave_one_speaker_out() -> None:
    rows = _rows({"a": 3, "b": 2, "c": 4, "d": 1}) + _rows({"a": 2}, corpus="other")
    groups = make_groups(rows)
    assert [(g.corpus, g.speaker, g.samples) for g in groups] == [
        ("c", "a", 3), ("c", "b", 2), ("c", "c", 4), ("c", "d", 1), ("other", "a", 2)]
    folds = make_folds(groups, "speaker", job_name="job", valid_speakers=1, seed=0)
    assert [f.held_out for f in folds] == [["c/a"], ["c/b"], ["c/c"], ["c/d"], ["other/a"]]  # a per corpus
    assert [f.name for f in folds] == [f"job-fold{i}" for i in range(5)]
    assert all(len(f.valid_speakers) == 1 and len(f.test) == 1 for f in folds)
    _check_partition(groups, folds)
    assert make_folds(groups, "speaker", valid_speakers=1, seed=0) == make_folds(groups, "speaker", seed=0)
    assert make_folds(groups, "speaker", seed=0) != make_folds(groups, "speaker", seed=5)  # other valid picks


def test_leave_one_session_out() -> None:
    sessions = {"F1": "Session1", "M1": "Session1", "F2": "Session2", "M2": "Session2", "F3": "Session3"}
    groups = make_groups(_rows({s: 2 for s in sessions}, corpus="iemocap", split=sessions))
    folds = make_folds(groups, "session", valid_speakers=2, seed=1)
    assert [f.held_out for f in folds] == [["iemocap/Session1"], ["iemocap/Session2"], ["iemocap/Session3"]]
    assert [len(f.test) for f in folds] == [2, 2, 1]
    assert all(len(f.valid_speakers) == 2 for f in folds)
    _check_partition(groups, folds)
    with pytest.raises(CvError, match="split field"):
        make_folds(make_groups(_rows({"a": 1, "b": 1})), "session")


def test_k_folds_grouped_by_speaker_are_balanced_and_deterministic() -> None:
    sizes = {"s1": 10, "s2": 8, "s3": 7, "s4": 5, "s5": 4, "s6": 3, "s7": 2}
    groups = make_groups(_rows(sizes))
    folds = make_folds(groups, 3, valid_speakers=1)
    _check_partition(groups, folds)
    # largest first, each to the fold with the fewest utterances so far (ties: lower index)
    assert [f.held_out for f in folds] == [["c/s1", "c/s6"], ["c/s2", "c/s5", "c/s7"], ["c/s3", "c/s4"]]
    assert [sum(g.samples for g in groups if g.name in f.test) for f in folds] == [13, 14, 12]
    assert make_folds(groups, 3, valid_speakers=1) == folds
    with pytest.raises(CvError, match="only 7 speakers"):
        make_folds(groups, 8)


def test_bad_protocols_and_data_are_refused() -> None:
    assert parse_protocol("Speaker") == "speaker" and parse_protocol("5") == 5
    for bad in ("speakers", "1", "x3"):
        with pytest.raises(CvError, match="--folds"):
            parse_protocol(bad)
    with pytest.raises(CvError, match="2 sample\\(s\\) of the training shards have no speaker"):
        make_groups(_rows({"a": 2}) + [{"key": "x", "corpus": "c", "speaker": None}] * 2)
    with pytest.raises(CvError, match="cannot hold out 2"):
        make_folds(make_groups(_rows({"a": 1, "b": 1, "c": 1})), "speaker", valid_speakers=2)
    with pytest.raises(CvError, match="only one speaker"):
        make_folds(make_groups(_rows({"a": 3})), "speaker", valid_speakers=0)


def _list(tmp_path: Path, text: str) -> FoldList:
    path = tmp_path / "folds.yaml"
    path.write_text(text)
    protocol = parse_protocol(str(path))
    assert isinstance(protocol, FoldList)
    return protocol


def test_a_fold_list_by_speaker_gives_exactly_its_folds(tmp_path: Path) -> None:
    groups = make_groups(_rows({s: 2 for s in ("01", "02", "03", "04", "05", "06")}, corpus="ravdess"))
    protocol = _list(tmp_path, "name: paper\ncorpus: ravdess\n"
                               "folds: [['03', '01'], ['02', 'ravdess/05'], ['04', '06']]\n")
    folds = make_folds(groups, protocol, job_name="j", valid_speakers=1, seed=0)
    assert [f.held_out for f in folds] == [["ravdess/01", "ravdess/03"], ["ravdess/02", "ravdess/05"],
                                           ["ravdess/04", "ravdess/06"]]
    _check_partition(groups, folds)
    assert all(not set(f.valid_speakers) & set(f.held_out) for f in folds)


def test_a_fold_list_by_key_keeps_speakers_together(tmp_path: Path) -> None:
    groups = make_groups(_rows({"a": 2, "b": 2, "c": 1}))
    keys = {g.name: [f"{g.speaker}-{i}" for i in range(g.samples)] for g in groups}
    protocol = _list(tmp_path, "name: k\nunit: key\nfolds: [[a-0, a-1, c-0], [b-0, b-1]]\n")
    folds = make_folds(groups, protocol, valid_speakers=0, keys=keys)
    assert [f.held_out for f in folds] == [["c/a", "c/c"], ["c/b"]]
    split = _list(tmp_path, "name: k\nunit: key\nfolds: [[a-0, c-0], [a-1, b-0, b-1]]\n")
    with pytest.raises(CvError, match="keys of speaker c/a are in folds \\[0, 1\\]"):
        make_folds(groups, split, valid_speakers=0, keys=keys)


@pytest.mark.parametrize("text, message", [
    ("name: x\nfolds: [[a, b], [c, zz]]\n", "speaker\\(s\\) zz are not in the data"),
    ("name: x\nfolds: [[a, b], [a]]\n", "speaker c/a is in folds 0 and 1"),
    ("name: x\nfolds: [[a], [b]]\n", "speaker\\(s\\) c/c of the data are in no fold"),
])
def test_fold_lists_that_do_not_fit_the_data_are_refused(tmp_path: Path, text: str, message: str) -> None:
    groups = make_groups(_rows({"a": 1, "b": 1, "c": 1}))
    with pytest.raises(CvError, match=message):
        make_folds(groups, _list(tmp_path, text), valid_speakers=0)


def test_bad_fold_list_files_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("name: one\nfolds: [[a]]\n")
    with pytest.raises(CvError, match="at least two non-empty folds"):
        load_fold_list(str(tmp_path / "one.yaml"))
    (tmp_path / "typo.yaml").write_text("name: t\nfold: [[a], [b]]\n")
    with pytest.raises(CvError, match="fold"):
        load_fold_list(str(tmp_path / "typo.yaml"))
    with pytest.raises(CvError, match="ravdess_emobox"):  # the message lists the shipped ones
        parse_protocol("no_such_list")


def test_the_shipped_emobox_ravdess_folds_test_every_actor_once() -> None:
    protocol = parse_protocol("ravdess_emobox")
    assert isinstance(protocol, FoldList) and len(protocol.folds) == 6
    groups = make_groups(_rows({f"{a:02d}": 60 for a in range(1, 25)}, corpus="ravdess"))
    folds = make_folds(groups, protocol, valid_speakers=2, seed=0)
    _check_partition(groups, folds)
    assert folds[0].held_out == ["ravdess/01", "ravdess/11", "ravdess/20", "ravdess/21"]
    assert [len(f.train) for f in folds] == [18] * 6
