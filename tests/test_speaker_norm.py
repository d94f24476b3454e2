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


def test_shrunk_mixes_each_speaker_with_the_pooled_statistics_by_utterances() -> None:
    torch.manual_seed(0)
    batches = [batch([("1", "angry")] * 1 + [("2", "sad")] * 9)]
    norm = SpeakerNorm.fit(Identity(), batches, torch.device("cpu"))
    assert norm.utterances == [1, 9] and norm.prior == 0.0
    same = norm.shrunk(0.0)
    torch.testing.assert_close(same.mean, norm.mean) and torch.testing.assert_close(same.std, norm.std)
    half = norm.shrunk(9.0)  # speaker 1: weight 1/10, speaker 2: 9/18
    for row, weight in [(0, 0.1), (1, 0.5)]:
        mean = weight * norm.mean[row] + (1 - weight) * norm.global_mean
        second = (weight * (norm.std[row] ** 2 + norm.mean[row] ** 2)
                  + (1 - weight) * (norm.global_std**2 + norm.global_mean**2))
        torch.testing.assert_close(half.mean[row], mean)
        torch.testing.assert_close(half.std[row], (second - mean**2).sqrt())
    towards = norm.shrunk(1e9, torch.zeros(1), torch.ones(1))  # an overwhelming prior: the given statistics
    torch.testing.assert_close(towards.mean, torch.zeros(2, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(towards.std, torch.ones(2, 1), atol=1e-6, rtol=0)
    state = half.state_dict()
    assert SpeakerNorm.from_state(state).prior == 9.0
    assert SpeakerNorm.from_state({k: v for k, v in state.items() if k != "prior"}).prior == 0.0  # old checkpoints
    with pytest.raises(ValueError, match="utterance counts"):
        SpeakerNorm.from_state(state).shrunk(1.0)


@pytest.mark.parametrize("section, message", [
    ({"name": "logmel", "speaker_prior": 5}, "speaker_prior needs frontend.speaker_norm: true"),
    ({"name": "logmel", "speaker_norm": True, "speaker_prior": -1}, "number of utterances >= 0"),
    ({"name": "logmel", "speaker_norm": True, "speaker_prior": "x"}, "number of utterances >= 0"),
    ({"name": "logmel", "speaker_norm": "yes"}, "speaker_norm must be true or false"),
])
def test_bad_speaker_norm_keys_are_one_line(section, message) -> None:
    from ssl_ser.config import ConfigError
    from ssl_ser.inference import frontend_section

    with pytest.raises(ConfigError, match=message):
        frontend_section(section)
    assert frontend_section({"name": "logmel"})[2] is None
    assert frontend_section({"name": "logmel", "speaker_norm": True})[2] == 0.0
    assert frontend_section({"name": "logmel", "speaker_norm": True, "speaker_prior": 5})[2] == 5.0
