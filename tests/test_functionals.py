"""The functionals front-end: one vector per utterance, which speaker normalisation then
standardises per speaker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ssl_ser.config import ConfigError
from ssl_ser.features import build_frontend
from ssl_ser.functionals import TEMPORAL, Functionals, temporal_functionals
from ssl_ser.speaker_norm import SpeakerNorm

BASE = {"name": "logmel", "n_mels": 16, "n_fft": 256, "hop_length": 128}


def test_the_front_end_is_the_functionals_of_its_base_one_frame_per_utterance() -> None:
    torch.manual_seed(0)
    fe = build_frontend("functionals", base=BASE, quantiles=(0.1, 0.5), cepstra=4).eval()
    base = build_frontend(**BASE).eval()
    wave, lengths = torch.randn(3, 8000), torch.tensor([8000, 5000, 1300])
    feats, frames = fe(wave, lengths)
    assert feats.shape == (3, (16 + 4) * 5 + 3, 1) and frames.tolist() == [1, 1, 1]
    assert fe.num_features == feats.shape[1] and fe.frames(123_456) == 1
    stats = Functionals(16, (0.1, 0.5), 4)
    for row, n in enumerate(lengths.tolist()):
        alone, alone_frames = base(wave[row:row + 1, :n], lengths[row:row + 1])
        torch.testing.assert_close(feats[row, :, 0], stats(alone, alone_frames)[0], atol=1e-5, rtol=1e-5)


def test_temporal_functionals_time_the_voiced_segments_and_pauses_of_the_speech_span() -> None:
    # silence, voiced 3, pause 2, voiced 2, silence; a row with nothing voiced; a padded row
    voiced = torch.tensor([[0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0], [0] * 12, [1] * 6 + [0] * 6]).bool()
    got = temporal_functionals(voiced, hop_seconds=0.5)
    assert TEMPORAL[0] == "speech_seconds" and got.shape == (3, len(TEMPORAL))
    # span 7 frames = 3.5 s, 5 voiced, 2 segments of 1.25 s on average, one pause of 1 s
    torch.testing.assert_close(got[0], torch.tensor([3.5, 5 / 7, 2 / 3.5, 1.25, 1.0, 1 / 3.5]))
    torch.testing.assert_close(got[1], torch.zeros(6))
    torch.testing.assert_close(got[2], torch.tensor([3.0, 1.0, 1 / 3.0, 3.0, 0.0, 0.0]))


def test_the_front_end_appends_the_timing_of_its_bases_vad() -> None:
    """Leading silence does not count, a pause does; a base without a VAD is refused."""
    quiet = lambda n, seed: 1e-4 * torch.randn(n, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    tone = lambda n: 0.3 * torch.sin(torch.arange(n) * 2 * torch.pi * 220 / 16000)  # noqa: E731
    speech = torch.cat([tone(8000), quiet(4000, 1), tone(8000)])  # 0.5 s, a 0.25-s pause, 0.5 s
    wave = torch.stack([torch.cat([quiet(12000, 0), speech]), torch.cat([speech, quiet(12000, 2)])])
    fe = build_frontend("functionals", base={**BASE, "vad": True}, temporal=True).eval()
    plain = build_frontend("functionals", base={**BASE, "vad": True}).eval()
    feats, _ = fe(wave, torch.tensor([wave.shape[1]] * 2))
    assert fe.num_features == plain.num_features + len(TEMPORAL) == feats.shape[1]
    torch.testing.assert_close(feats[:, : plain.num_features], plain(wave, torch.tensor([wave.shape[1]] * 2))[0])
    timing = feats[:, plain.num_features :, 0]
    torch.testing.assert_close(timing[0], timing[1], atol=0.02, rtol=0)  # the silence's place does not matter
    assert abs(float(timing[0, 0]) - 1.25) < 0.05 and abs(float(timing[0, 4]) - 0.25) < 0.05  # span, pause
    with pytest.raises(ConfigError, match="temporal needs a base with an energy VAD"):
        build_frontend("functionals", base={"name": "fbank"}, temporal=True)


def utterances(speakers: list[str]) -> SimpleNamespace:
    torch.manual_seed(len(speakers))
    gain = torch.tensor([0.5 if s == "a" else 2.0 for s in speakers])[:, None]  # two voices
    b = SimpleNamespace(audio=gain * torch.randn(len(speakers), 4000), lengths=torch.full((len(speakers),), 4000),
                        meta=[{"corpus": "c", "speaker": s} for s in speakers])
    b.to = lambda _device: b
    return b


def test_speaker_norm_standardises_each_functional_over_a_speakers_utterances() -> None:
    fe = build_frontend("functionals", base=BASE, quantiles=(0.5,))
    batches = [utterances(["a", "b", "a", "b"]), utterances(["a", "a", "b"])]
    norm = SpeakerNorm.fit(fe, batches, torch.device("cpu"))
    for speaker in ("a", "b"):
        rows = [fe.eval()(b.audio[i:i + 1], b.lengths[i:i + 1])[0] for b in batches
                for i, m in enumerate(b.meta) if m["speaker"] == speaker]
        vectors = torch.cat(rows)  # [n, D, 1]
        normed = norm(vectors, torch.ones(len(rows), dtype=torch.long), [f"c/{speaker}"] * len(rows))
        torch.testing.assert_close(normed.mean(0), torch.zeros_like(normed[0]), atol=1e-4, rtol=0)
        spread = normed.std(0, unbiased=False)[:, 0]
        assert ((spread - 1).abs() < 1e-3).float().mean() > 0.9  # functionals constant in a speaker stay 0


@pytest.mark.parametrize("name, options, message", [
    ("functionals", {"base": {"n_mels": 16}}, "base needs a name"),
    ("functionals", {"base": {**BASE, "specaugment": {"freq_mask": 2}}}, "without specaugment"),
    ("functionals", {"base": {"name": "functionals"}}, "frame-level"),
    ("functionals", {"base": {**BASE, "n_mel": 3}}, "n_mel"),
    ("functionals", {"cepstra": 17, "base": BASE}, "cepstra must lie in"),
    ("functionals", {"specaugment": {"freq_mask": 2}}, "specaugment"),
    ("plus_functionals", {"base": {"n_mels": 16}}, "base needs a name"),
    ("plus_functionals", {"base": {"name": "functionals"}}, "frame-level"),
    ("plus_functionals", {"base": {**BASE, "speaker_norm": True}}, "without speaker_norm"),
    ("plus_functionals", {"functionals": {"cepstra": 300}}, "cepstra must lie in"),
])
def test_bad_options_are_one_line(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build_frontend(name, **options)
    assert "\n" not in str(caught.value)


def test_plus_functionals_appends_the_vector_to_every_frame_of_its_base() -> None:
    torch.manual_seed(0)
    base = {"name": "mfcc", "n_mfcc": 13}
    fe = build_frontend("plus_functionals", base=base, functionals={"base": BASE, "quantiles": (0.5,)}).eval()
    wave, lengths = torch.randn(2, 8000), torch.tensor([8000, 4000])
    feats, frames = fe(wave, lengths)
    alone, alone_frames = build_frontend(**base).eval()(wave, lengths)
    vector, _ = build_frontend("functionals", base=BASE, quantiles=(0.5,)).eval()(wave, lengths)
    assert fe.num_features == feats.shape[1] == 13 + vector.shape[1] and fe.bands == 13
    torch.testing.assert_close(frames, alone_frames)
    torch.testing.assert_close(feats[:, :13], alone)
    for row, n in enumerate(frames.tolist()):
        torch.testing.assert_close(feats[row, 13:, :n], vector[row].expand(-1, n))
        assert not feats[row, :, n:].any()  # padding stays zero


def test_plus_functionals_augments_the_base_rows_only() -> None:
    base = {**BASE, "specaugment": {"freq_mask": 8, "n_freq": 2}}
    fe = build_frontend("plus_functionals", base=base, functionals={"base": BASE})
    wave, lengths = torch.randn(4, 8000), torch.tensor([8000] * 4)
    clean, _ = fe.eval()(wave, lengths)
    torch.manual_seed(1)
    masked, _ = fe.train()(wave, lengths)
    assert not torch.equal(masked[:, :16], clean[:, :16])
    torch.testing.assert_close(masked[:, 16:], clean[:, 16:])


def test_moments_are_each_rows_skewness_and_kurtosis() -> None:
    torch.manual_seed(0)
    x, lengths = torch.randn(2, 3, 50).exp(), torch.tensor([50, 31])  # skewed rows
    x[1, :, 31:] = 0
    plain, more = Functionals(3, (0.5,), 2), Functionals(3, (0.5,), 2, moments=True)
    out = more(x, lengths)
    assert out.shape[1] == more.num_functionals == plain.num_functionals + 2 * (3 + 2)
    torch.testing.assert_close(out[:, : plain.num_functionals], plain(x, lengths))
    for row, n in enumerate(lengths.tolist()):
        rows = torch.cat([x[row, :, :n], (x[row, :, :n].T @ more.dct).T])
        z = (rows - rows.mean(-1, keepdim=True)) / rows.std(-1, unbiased=False, keepdim=True)
        torch.testing.assert_close(out[row, -10:], torch.cat([(z**3).mean(-1), (z**4).mean(-1)]), atol=1e-4, rtol=1e-4)
    assert (out[:, -10:-7] > 0.5).all()  # a log-normal row is right-skewed
