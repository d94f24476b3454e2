"""Speaker normalisation's check that speakers are not confounded with emotions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ssl_ser.speaker_norm import CONFOUNDED, SpeakerNorm, majority_share


def test_majority_share_of_balanced_and_of_one_emotion_speakers() -> None:
    every = [(s, e) for s in "ab" for e in ["angry", "sad", "happy", "neutral"]]
    assert majority_share(every) == pytest.approx(0.25)
    one_each = [("a", "angry")] * 9 + [("a", "sad")] + [("b", "sad")] * 10
    assert majority_share(one_each) == pytest.approx(0.95) and majority_share(one_each) > CONFOUNDED
    assert majority_share([]) is None


class Identity(torch.nn.Module):
    def forward(self, wave: torch.Tensor, lengths: torch.Tensor):
        return wave.unsqueeze(1), lengths


def batch(rows: list[tuple[str, str | None]]) -> SimpleNamespace:
    meta = [{"corpus": "c", "speaker": s, "emotion": e, "labelled": e is not None} for s, e in rows]
    b = SimpleNamespace(audio=torch.randn(len(rows), 8), lengths=torch.full((len(rows),), 8), meta=meta)
    b.to = lambda _device: b
    return b


def test_fit_measures_the_training_speakers_labelled_audio_only() -> None:
    batches = [batch([("1", "angry"), ("1", "angry"), ("2", "sad"), ("2", None)]),
               batch([("3", "sad"), ("3", "angry"), ("3", "happy")])]  # 3: a test speaker
    norm = SpeakerNorm.fit(Identity(), batches, torch.device("cpu"), global_speakers={"c/1", "c/2"})
    assert norm.speakers == ["c/1", "c/2", "c/3"]
    assert norm.majority_share == 1.0  # speakers 1 and 2 speak one emotion each
