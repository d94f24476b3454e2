"""Label hiding for semi-supervised experiments: stratified, spread over speakers, seeded,
order-independent, hidden emotions kept for analysis only."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ssl_ser.data.hide_labels import hide_labels
from ssl_ser.data.manifest import Utterance
from ssl_ser.labels import HIDDEN, LabelSpace


def rows() -> list[Utterance]:
    """RAVDESS-shaped: 10 speakers, 8 rows of each emotion per speaker (4 of neutral), one
    row already unlabelled."""
    out = []
    for speaker in range(10):
        for emotion in ("angry", "happy", "neutral", "sad"):
            for take in range(4 if emotion == "neutral" else 8):
                out.append(Utterance(key=f"s{speaker:02d}-{emotion}-{take}", audio="/x.wav", corpus="ravdess",
                                     speaker=f"{speaker:02d}", emotion=emotion, arousal=0.5, labelled=True,
                                     duration=3.0, sample_rate=16000, extra={"intensity": "normal"}))
    out.append(Utterance(key="free", audio="/x.wav", corpus="ravdess", speaker="00", emotion=None, labelled=False,
                         duration=3.0, sample_rate=16000))
    return out


def test_a_stratified_share_keeps_its_labels_spread_over_speakers() -> None:
    labelled, hidden = hide_labels(rows(), keep=0.2, seed=0)
    per_emotion = Counter(r.emotion for r in labelled)
    assert per_emotion == {"angry": 16, "happy": 16, "sad": 16, "neutral": 8}  # round(0.2 x n) each
    assert len(labelled) + len(hidden) == len(rows()) and len(hidden) == 224 + 1
    per_speaker = Counter(r.speaker for r in labelled)
    assert len(per_speaker) == 10 and max(per_speaker.values()) - min(per_speaker.values()) <= 2
    for r in labelled:
        assert r.labelled and r.emotion and HIDDEN not in r.extra


def test_hidden_rows_lose_every_label_but_keep_it_for_analysis() -> None:
    _, hidden = hide_labels(rows(), keep=0.2, seed=0)
    space = LabelSpace("emotion", ["angry", "happy", "neutral", "sad"], {})
    for r in hidden:
        assert not r.labelled and r.emotion is None and r.arousal is None
        if r.key == "free":
            assert HIDDEN not in r.extra  # it had no label to keep
            continue
        assert r.extra == {"intensity": "normal", HIDDEN: r.key.split("-")[1]}
        assert space.encode_hidden({"corpus": r.corpus, "extra": r.extra}) == space.classes.index(r.extra[HIDDEN])


def test_the_split_is_seeded_and_independent_of_row_order() -> None:
    shuffled = rows()
    random.Random(1).shuffle(shuffled)
    same = {r.key for r in hide_labels(rows(), 0.2, seed=3)[0]}
    assert {r.key for r in hide_labels(shuffled, 0.2, seed=3)[0]} == same
    assert {r.key for r in hide_labels(rows(), 0.2, seed=4)[0]} != same
    assert [r.key for r in hide_labels(shuffled, 0.2, seed=3)[0]] == [r.key for r in shuffled if r.key in same]


def test_keep_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="keep"):
        hide_labels(rows(), 0.0)
    assert len(hide_labels(rows(), 1.0)[0]) == 280
