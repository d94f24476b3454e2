from pathlib import Path

import pytest

from ssl_ser.config import from_dict
from ssl_ser.labels import (
    HIDDEN,
    IGNORE,
    LabelConfig,
    LabelError,
    LabelSpace,
    build_label_space,
)


def _cfg(**data: object) -> LabelConfig:
    return from_dict(LabelConfig, data)


def test_classes_default_to_sorted_training_labels() -> None:
    space = build_label_space(_cfg(), {"sad": 3, "angry": 5, "happy": 1})
    assert space.classes == ["angry", "happy", "sad"]
    assert space.encode({"corpus": "x", "emotion": "sad"}) == 2
    assert space.encode({"corpus": "x", "emotion": None}) == IGNORE


def test_per_corpus_tables_unify_labels_and_unmapped_names_corpus_and_label() -> None:
    cfg = _cfg(classes=["angry", "happy", "neutral", "sad"],
               mapping={"ravdess": {"labels": {"calm": "neutral", "fearful": None}},
                        "urdu": {"labels": {"Angry": "angry"}}})
    space = build_label_space(cfg)
    assert space.encode({"corpus": "ravdess", "emotion": "calm"}) == 2
    assert space.encode({"corpus": "ravdess", "emotion": "happy"}) == 1  # already a class
    assert space.encode({"corpus": "ravdess", "emotion": "fearful"}) == IGNORE
    assert space.dropped["ravdess:fearful"] == 1
    assert space.encode({"corpus": "urdu", "emotion": "Angry"}) == 0
    with pytest.raises(LabelError, match="corpus 'ravdess'.*'surprised'"):
        space.encode({"corpus": "ravdess", "emotion": "surprised"})


def test_unmapped_drop_counts_instead_of_failing() -> None:
    space = build_label_space(_cfg(classes=["a", "b"], unmapped="drop"))
    assert space.encode({"corpus": "c", "emotion": "z"}) == IGNORE
    assert space.encode({"corpus": "c", "emotion": "z"}) == IGNORE
    assert space.dropped["c:z"] == 2


def test_hidden_labels_are_encoded_without_counting_drops_or_failing() -> None:
    cfg = _cfg(classes=["angry", "neutral"], mapping={"ravdess": {"labels": {"calm": "neutral", "sad": None}}})
    space = build_label_space(cfg)
    row = lambda hidden: {"corpus": "ravdess", "emotion": None, "labelled": False,  # noqa: E731
                          "extra": {HIDDEN: hidden} if hidden else {}}
    assert space.encode_hidden(row("calm")) == 1 and space.encode_hidden(row("angry")) == 0
    assert space.encode_hidden(row("sad")) == IGNORE and space.encode_hidden(row("surprised")) == IGNORE
    assert space.encode_hidden(row(None)) == IGNORE
    assert space.encode(row("angry")) == IGNORE  # training never sees the hidden label
    assert not space.dropped


def test_quadrant_mapping_from_valence_and_arousal() -> None:
    cfg = _cfg(classes=["angry", "happy", "neutral", "sad"],
               mapping={"msp": {"quadrant": {"arousal": 4.0, "valence": 4.0}}})
    space = build_label_space(cfg)
    enc = lambda a, v: space.classes[space.encode({"corpus": "msp", "emotion": None, "arousal": a, "valence": v})]  # noqa: E731
    assert (enc(6, 6), enc(6, 2), enc(2, 2), enc(2, 6)) == ("happy", "angry", "sad", "neutral")


def test_mapping_to_an_unknown_class_is_refused_and_round_trip(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="maps to 'joy'"):
        build_label_space(_cfg(classes=["a"], mapping={"c": {"labels": {"x": "joy"}}}))
    (tmp_path / "map.yaml").write_text("mapping:\n  c:\n    labels: {x: a}\n")
    space = build_label_space(_cfg(classes=["a", "b"], mapping_file=str(tmp_path / "map.yaml")))
    assert space.encode({"corpus": "c", "emotion": "x"}) == 0
    space.save(tmp_path / "labels.json")
    again = LabelSpace.load(tmp_path / "labels.json")
    assert again.classes == space.classes and again.encode({"corpus": "c", "emotion": "x"}) == 0


def test_speaker_classes_are_qualified_by_corpus() -> None:
    space = build_label_space(_cfg(field="speaker"), {"ravdess/03": 2, "urdu/03": 1})
    assert space.classes == ["ravdess/03", "urdu/03"]
    assert space.encode({"corpus": "urdu", "speaker": "03"}) == 1
    assert space.encode({"corpus": "urdu", "speaker": None}) == IGNORE
