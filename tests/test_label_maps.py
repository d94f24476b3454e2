"""The shipped label maps (ssl_ser/resources/label_maps): every recipe's emotion vocabulary is
mapped or explicitly dropped, and the maps encode as documented."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from ssl_ser.config import from_dict, read_yaml
from ssl_ser.data.corpora import CORPORA, EMOTIONS
from ssl_ser.job_loader import job_from_dict
from ssl_ser.labels import (
    IGNORE,
    LabelConfig,
    LabelError,
    LabelSpace,
    build_label_space,
)

MAPS = Path(__file__).resolve().parents[1] / "ssl_ser" / "resources" / "label_maps"
FOUR = ["angry", "happy", "neutral", "sad"]
#: Recipes whose rows never carry an emotion.
NO_EMOTION = {"fsdd", "voxceleb", "musan"}
#: Recipes for any folder or table: their corpus name is the user's, so '*' covers them.
GENERIC = {"folder", "csv"}


def recipe_vocabulary(name: str) -> set[str]:
    """The emotion words a recipe can write."""
    if name == "synthetic":
        return set(importlib.import_module("ssl_ser.data.synthetic").EMOTIONS)
    module = importlib.import_module(CORPORA.get(name).__module__)
    words = set(module.EMOTIONS.values())
    if name == "iemocap":
        words.add("happy")  # merge_excited
    return words


def space(map_name: str, **options: object) -> LabelSpace:
    cfg = from_dict(LabelConfig, {"classes": FOUR, "mapping_file": str(MAPS / f"{map_name}.yaml"), **options})
    return build_label_space(cfg)


@pytest.mark.parametrize("map_name", ["four_class", "four_class_quadrant"])
def test_every_recipe_vocabulary_is_mapped_or_dropped(map_name: str) -> None:
    raw = read_yaml(MAPS / f"{map_name}.yaml")["mapping"]
    assert set(raw) - {"*"} <= set(CORPORA.names()), "tables must be named after recipes"
    labels = space(map_name)
    for name in CORPORA.names():
        if name in NO_EMOTION:
            continue
        corpus, vocabulary = ("*", set(EMOTIONS)) if name in GENERIC else (name, recipe_vocabulary(name))
        table = labels.mapping.get(corpus)
        assert table is not None, f"{map_name}: no table for recipe {name!r}"
        if table.quadrant is not None:
            continue  # every labelled row of these corpora has arousal and valence
        missing = vocabulary - set(table.labels)
        assert not missing, f"{map_name}: {corpus} labels {sorted(missing)} neither mapped nor dropped"
        for word in vocabulary:
            index = labels.encode({"corpus": corpus, "emotion": word})
            assert index == IGNORE or labels.classes[index] == table.labels[word]


def test_no_emotion_recipes_really_write_no_emotion(tmp_path: Path, write_audio) -> None:
    write_audio(tmp_path / "fsdd" / "recordings" / "3_george_0.wav", seconds=0.2, rate=8000)
    rows = CORPORA.get("fsdd")(tmp_path / "fsdd")
    assert rows and all(r.emotion is None for r in rows)


def test_four_class_choices() -> None:
    labels = space("four_class")
    enc = lambda corpus, word: labels.encode({"corpus": corpus, "emotion": word})  # noqa: E731
    assert labels.classes[enc("ravdess", "calm")] == "neutral"
    assert labels.classes[enc("iemocap", "excited")] == "happy"
    assert labels.classes[enc("crema-d", "angry")] == "angry"
    assert labels.classes[enc("my_folder", "calm")] == "neutral"  # the '*' table
    assert enc("ravdess", "fearful") == IGNORE and enc("emodb", "boredom") == IGNORE
    assert labels.dropped["ravdess:fearful"] == 1 and labels.dropped["emodb:boredom"] == 1
    assert enc("fsdd", None) == IGNORE
    with pytest.raises(LabelError, match="corpus 'urdu'.*'fearful'"):
        enc("urdu", "fearful")  # URDU has no fear: a label outside its table is an error
    lenient = space("four_class", unmapped="drop")
    assert lenient.encode({"corpus": "urdu", "emotion": "fearful"}) == IGNORE
    assert lenient.dropped["urdu:fearful"] == 1


def test_quadrant_map_uses_each_corpus_scale() -> None:
    labels = space("four_class_quadrant")

    def enc(corpus: str, arousal: float, valence: float, word: str = "frustrated") -> str:
        return labels.classes[labels.encode({"corpus": corpus, "emotion": word,
                                             "arousal": arousal, "valence": valence})]

    assert (enc("iemocap", 4, 4), enc("iemocap", 4, 2), enc("iemocap", 2, 2), enc("iemocap", 2, 4)) \
        == ("happy", "angry", "sad", "neutral")
    assert enc("msp-podcast", 3.5, 5.0, "no_agreement") == "neutral"  # 1-7 scale: 3.5 is low
    assert enc("iemocap", 3.5, 5.0) == "happy"  # 1-5 scale: 3.5 is high
    assert labels.encode({"corpus": "iemocap", "emotion": None}) == IGNORE  # unlabelled
    assert labels.classes[labels.encode({"corpus": "ravdess", "emotion": "calm"})] == "neutral"


def test_jobs_name_shipped_maps(tmp_path: Path) -> None:
    job = job_from_dict({"name": "x", "data": {"train": ["nowhere"],
                                                "labels": {"classes": FOUR, "mapping_file": "four_class"}}},
                        base_dir=tmp_path, check_data=False)
    assert Path(job.data.labels.mapping_file) == MAPS / "four_class.yaml"
