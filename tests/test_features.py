"""Front-ends: sizes, padding, mu-law, VAD, normalisation, SpecAugment, options."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from ssl_ser.config import ConfigError
from ssl_ser.features import (
    FRONTENDS,
    FrontendError,
    build_frontend,
    mu_law,
    mu_law_inverse,
    warp_bins,
)
from ssl_ser.registry import UnknownNameError

SR = 16_000
#: Front-ends that build from their defaults; ``ssl_encoder`` needs weights on disk and has the
#: same checks (padding, short rows) in tests/test_ssl_encoder.py.
BUILT_BY_NAME = [name for name in FRONTENDS.names() if name != "ssl_encoder"]


@pytest.fixture(autouse=True)
def one_thread():
    """Small transforms on a shared 2-core machine run fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tone(seconds: float, freq: float = 220.0, amplitude: float = 0.3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    return amplitude * torch.sin(2 * math.pi * freq * t) + 0.01 * torch.randn(t.shape, generator=gen)


def batch(lengths: list[int], garbage: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Tones of different pitch, zero-padded (or padded with loud noise if ``garbage``)."""
    total = max(lengths)
    rows = []
    for i, n in enumerate(lengths):
        pad = 0.9 * torch.randn(total - n) if garbage else torch.zeros(total - n)
        rows.append(torch.cat([tone(n / SR, freq=180.0 + 70 * i, seed=i), pad]))
    return torch.stack(rows), torch.tensor(lengths)


@pytest.mark.parametrize(("name", "options", "seconds", "shape"), [
    ("mfcc", {"vad": False}, 2.0, (23, 200)),
    ("logmel", {}, 2.0, (128, 62)),
    ("logmel_deepemocluster", {}, 2.0, (128, 62)),
    ("spectrogram_mulaw", {}, 2.0, (400, 200)),
    ("spectrogram_daae", {}, 0.265, (129, 32)),
    ("spectrogram_daae", {}, 2.0, (129, 242)),
    ("fbank", {}, 2.0, (80, 198)),
])
def test_documented_output_sizes(name: str, options: dict, seconds: float, shape: tuple[int, int]) -> None:
    frontend = build_frontend(name, **options).eval()
    n = int(round(seconds * SR))
    feats, lengths = frontend(tone(seconds).unsqueeze(0).repeat(2, 1), torch.tensor([n, n]))
    assert feats.shape == (2, *shape)
    assert frontend.num_features == shape[0]
    assert frontend.frames(n) == shape[1] and lengths.tolist() == [shape[1]] * 2
    assert feats.dtype == torch.float32 and lengths.dtype == torch.int64


@pytest.mark.parametrize("name", BUILT_BY_NAME)
def test_rows_in_a_padded_batch_equal_rows_computed_alone(name: str) -> None:
    frontend = build_frontend(name).eval()
    lengths = [16000, 11000, 5300]
    wave, lens = batch(lengths, garbage=True)
    feats, frame_lengths = frontend(wave, lens)
    for row, n in enumerate(lengths):
        alone, alone_len = frontend(wave[row : row + 1, :n], lens[row : row + 1])
        assert int(frame_lengths[row]) == int(alone_len[0])
        m = int(alone_len[0])
        torch.testing.assert_close(feats[row : row + 1, :, :m], alone[:, :, :m], atol=1e-4, rtol=1e-4)
        assert torch.equal(feats[row, :, m:], torch.zeros_like(feats[row, :, m:]))  # padding is zero


def test_mu_law_matches_the_formula_and_inverts() -> None:
    x = torch.linspace(-1, 1, 201, dtype=torch.float64)
    expected = torch.tensor([math.copysign(math.log(1 + 255 * abs(v)) / math.log(256), v) if v else 0.0
                             for v in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(mu_law(x), expected)
    torch.testing.assert_close(mu_law_inverse(mu_law(x)), x)
    assert mu_law(torch.tensor(1.0)) == 1.0 and mu_law(torch.tensor(-1.0)) == -1.0
    torch.testing.assert_close(mu_law(torch.tensor([0.5]), mu=3.0), torch.tensor([math.log(2.5) / math.log(4)]))


def test_mulaw_spectrogram_is_scaled_then_companded() -> None:
    frontend = build_frontend("spectrogram_mulaw").eval()
    wave, lengths = batch([32000, 20000])
    feats, frame_lengths = frontend(wave, lengths)
    for row in range(2):
        valid = feats[row, :, : frame_lengths[row]]
        assert valid.min() >= 0 and torch.isclose(valid.max(), torch.tensor(1.0))  # the peak maps to 1
    # Undoing the companding gives the magnitude spectrogram scaled by its peak.
    magnitude = frontend.spectrogram(wave[:1, :32000])[0, :400, :200]
    torch.testing.assert_close(mu_law_inverse(feats[0]), magnitude / magnitude.max(), atol=1e-5, rtol=1e-4)


def test_vad_removes_the_silent_part() -> None:
    """0.5 s tone, 0.5 s near-silence, 0.5 s tone: the frames of the silence are dropped."""
    quiet = 1e-4 * torch.randn(8000, generator=torch.Generator().manual_seed(0))
    wave = torch.cat([tone(0.5), quiet, tone(0.5, seed=1)]).unsqueeze(0)
    lengths = torch.tensor([wave.shape[1]])
    frontend = build_frontend("mfcc").eval()
    voiced = frontend.voiced(wave, lengths)[0]
    assert voiced.shape == (150,)
    assert voiced[:48].all() and voiced[103:].all()  # the tones (frame t is centred on t * 10 ms)
    assert not voiced[56:95].any()  # well inside the silence
    feats, new_lengths = frontend(wave, lengths)
    assert new_lengths.tolist() == [int(voiced.sum())] and 100 <= int(voiced.sum()) < 115
    everything, _ = build_frontend("mfcc", vad=False).eval()(wave, lengths)
    torch.testing.assert_close(feats[0], everything[0][:, voiced])  # kept frames, in order


def test_a_log_mel_vad_keeps_the_voiced_frames_after_normalising() -> None:
    """The same decisions as the MFCC's at the same framing; off by default; Kaldi's order
    (normalise over every frame, clip, then select), so an export can pack the frames later."""
    quiet = 1e-4 * torch.randn(8000, generator=torch.Generator().manual_seed(0))
    wave = torch.cat([tone(0.5), quiet, tone(0.5, seed=1)]).unsqueeze(0)
    lengths = torch.tensor([wave.shape[1]])
    options = dict(n_mels=40, n_fft=512, win_length=400, hop_length=160, normalize=True, clip=3.0)
    frontend = build_frontend("logmel", vad=True, **options).eval()
    voiced = frontend.voiced(wave, lengths)[0]
    torch.testing.assert_close(voiced, build_frontend("mfcc").eval().voiced(wave, lengths)[0])
    feats, new_lengths = frontend(wave, lengths)
    everything, all_lengths = build_frontend("logmel", **options).eval()(wave, lengths)
    assert all_lengths.tolist() == [150] and new_lengths.tolist() == [int(voiced.sum())]
    assert 100 <= int(voiced.sum()) < 115  # the two tones
    torch.testing.assert_close(feats[0], everything[0][:, voiced])
    assert build_frontend("logmel").vad is None
    with pytest.raises(ConfigError, match="front-end 'logmel': vad: proportion"):
        build_frontend("logmel", vad={"proportion": 1.5})
    with pytest.raises(ConfigError, match="front-end 'logmel': vad: .*treshold"):
        build_frontend("logmel", vad={"treshold": 4.0})


def test_a_trimming_vad_keeps_the_pause_between_the_first_and_the_last_voiced_frame() -> None:
    """Silence, tone, a pause, tone, silence: ``trim`` drops only the two ends, the pause stays."""
    quiet = lambda seed: 1e-4 * torch.randn(8000, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    wave = torch.cat([quiet(0), tone(0.5), quiet(1), tone(0.5, seed=1), quiet(2)]).unsqueeze(0)
    lengths = torch.tensor([wave.shape[1]])
    options = dict(n_mels=40, n_fft=512, win_length=400, hop_length=160)
    trimmed = build_frontend("logmel", vad={"trim": True}, **options).eval()
    voiced = trimmed.voiced(wave, lengths)[0]
    first, last = int(voiced.nonzero().min()), int(voiced.nonzero().max())
    assert 40 <= first <= 52 and 195 <= last <= 210 and not voiced[110:140].any()  # the tones' edges; the pause
    feats, new_lengths = trimmed(wave, lengths)
    everything, _ = build_frontend("logmel", **options).eval()(wave, lengths)
    assert new_lengths.tolist() == [last - first + 1]
    torch.testing.assert_close(feats[0], everything[0][:, first : last + 1])
    selected, selected_lengths = build_frontend("logmel", vad=True, **options).eval()(wave, lengths)
    assert int(selected_lengths) == int(voiced.sum()) < int(new_lengths)


@pytest.mark.parametrize("name", ["spectrogram_mulaw", "spectrogram_daae"])
def test_the_paper_spectrograms_take_the_same_vad(name: str) -> None:
    """The segment models' front-ends: off by default; with ``vad`` the map keeps the voiced
    frames of the full map, computed first (the mu-law peak and the per-bin normalisation are
    the whole clip's), and ``trim`` keeps their span."""
    quiet = lambda seed: 1e-4 * torch.randn(8000, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    wave = torch.cat([quiet(0), tone(0.5), quiet(1), tone(0.5, seed=1), quiet(2)]).unsqueeze(0)
    lengths = torch.tensor([wave.shape[1]])
    options = {"normalize": True} if name == "spectrogram_daae" else {}
    assert build_frontend(name).vad is None
    everything, all_lengths = build_frontend(name, **options).eval()(wave, lengths)
    frontend = build_frontend(name, vad=True, **options).eval()
    voiced = frontend.voiced(wave, lengths)[0]
    assert 0.3 < float(voiced.float().mean()) < 0.5  # the two tones of 2.5 s
    feats, new_lengths = frontend(wave, lengths)
    assert new_lengths.tolist() == [int(voiced.sum())] < all_lengths.tolist()
    torch.testing.assert_close(feats[0], everything[0][:, voiced])
    first, last = int(voiced.nonzero().min()), int(voiced.nonzero().max())
    trimmed, trimmed_lengths = build_frontend(name, vad={"trim": True}, **options).eval()(wave, lengths)
    torch.testing.assert_close(trimmed[0], everything[0][:, first : last + 1])
    with pytest.raises(ConfigError, match=f"front-end '{name}': vad: .*treshold"):
        build_frontend(name, vad={"treshold": 4.0})


def test_vad_keeps_every_frame_of_a_row_with_no_voiced_frame() -> None:
    wave = torch.stack([tone(1.0), torch.zeros(16000)])
    feats, lengths = build_frontend("mfcc").eval()(wave, torch.tensor([16000, 16000]))
    assert lengths.tolist()[1] == 100 and torch.isfinite(feats).all()


def test_mfcc_mean_normalisation_over_valid_frames() -> None:
    wave, lengths = batch([16000, 9000])
    feats, frame_lengths = build_frontend("mfcc", vad=False).eval()(wave, lengths)
    for row in range(2):
        valid = feats[row, :, : frame_lengths[row]]
        torch.testing.assert_close(valid.mean(-1), torch.zeros(23), atol=1e-4, rtol=0)
        assert valid.abs().max() > 1  # not all zeros


def test_deepemocluster_setting_is_z_normalised_and_clipped() -> None:
    wave, lengths = batch([32000, 16000])
    plain, frame_lengths = build_frontend("logmel").eval()(wave, lengths)
    feats, _ = build_frontend("logmel_deepemocluster").eval()(wave, lengths)
    assert plain.min() < -3 and feats.abs().max() <= 3.0
    for row in range(2):
        valid = plain[row, :, : frame_lengths[row]]
        z = (valid - valid.mean(-1, keepdim=True)) / valid.std(-1, unbiased=False, keepdim=True)
        torch.testing.assert_close(feats[row, :, : frame_lengths[row]], z.clamp(-3, 3), atol=1e-4, rtol=1e-4)


def test_specaugment_masks_only_in_training() -> None:
    torch.manual_seed(0)
    frontend = build_frontend("logmel", specaugment={"freq_mask": 20, "time_mask": 10})
    wave, lengths = batch([32000, 32000, 20000])
    clean, frame_lengths = frontend.eval()(wave, lengths)
    torch.testing.assert_close(frontend(wave, lengths)[0], clean)  # eval: deterministic, no masks
    masked, masked_lengths = frontend.train()(wave, lengths)
    assert torch.equal(masked_lengths, frame_lengths)
    changed = masked != clean
    assert changed.any() and torch.equal(masked[changed], torch.zeros(int(changed.sum())))  # masks are zeros
    assert not torch.equal(changed[0], changed[1])  # independent masks per example
    assert torch.equal(masked[2, :, frame_lengths[2]:], torch.zeros_like(masked[2, :, frame_lengths[2]:]))


def test_warp_bins_stretches_the_feature_axis() -> None:
    ramp = torch.arange(5.0)[None, :, None].expand(3, 5, 2)  # bin f holds f
    out = warp_bins(ramp, torch.tensor([1.0, 2.0, 0.5]))
    torch.testing.assert_close(out[0], ramp[0])                                      # identity
    torch.testing.assert_close(out[1, :, 0], torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0]))  # f / 2
    torch.testing.assert_close(out[2, :, 0], torch.tensor([0.0, 2.0, 4.0, 4.0, 4.0]))  # 2 f, top bin repeats


def test_freq_warp_only_in_training_and_per_example() -> None:
    torch.manual_seed(0)
    frontend = build_frontend("logmel", n_mels=32, specaugment={"freq_warp": 0.2})
    wave, lengths = batch([32000, 32000])
    wave[1] = wave[0]
    clean, frame_lengths = frontend.eval()(wave, lengths)
    torch.testing.assert_close(frontend(wave, lengths)[0], clean)
    warped, _ = frontend.train()(wave, lengths)
    assert not torch.allclose(warped[0], clean[0]) and not torch.allclose(warped[0], warped[1])
    with pytest.raises(ConfigError, match="freq_warp"):
        build_frontend("logmel", specaugment={"freq_warp": 1.5})


def test_fbank_is_kaldi_fbank_with_mean_subtraction() -> None:
    wave, lengths = batch([16000, 12000])
    feats, frame_lengths = build_frontend("fbank").eval()(wave, lengths)
    reference = kaldi.fbank(wave[1:2, :12000] * 32768, num_mel_bins=80, energy_floor=0.0, window_type="hamming",
                            sample_frequency=SR)
    reference = reference - reference.mean(0)
    assert frame_lengths.tolist() == [98, 73]
    torch.testing.assert_close(feats[1, :, :73], reference.T, atol=1e-4, rtol=1e-4)


def test_fbank_dithers_only_in_training() -> None:
    frontend = build_frontend("fbank", dither=1.0)
    wave, lengths = batch([8000])
    assert torch.equal(frontend.eval()(wave, lengths)[0], frontend(wave, lengths)[0])
    assert not torch.equal(frontend.train()(wave, lengths)[0], frontend.eval()(wave, lengths)[0])


def test_short_rows_get_one_frame() -> None:
    for name in BUILT_BY_NAME:
        feats, lengths = build_frontend(name).eval()(torch.randn(2, 4000) * 0.1, torch.tensor([4000, 100]))
        assert int(lengths[1]) >= 1 and torch.isfinite(feats).all(), name


def test_unknown_and_bad_options_are_named() -> None:
    with pytest.raises(ConfigError) as err:
        build_frontend("mfcc", n_mfc=20)
    assert "'n_mfc'" in str(err.value) and "did you mean 'n_mfcc'" in str(err.value) and "vad" in str(err.value)
    with pytest.raises(ConfigError, match="hop_length"):
        build_frontend("logmel", hop_length="fast")
    with pytest.raises(ConfigError, match="frontend.specaugment.*freq_masks"):
        build_frontend("logmel", specaugment={"freq_masks": 3})
    with pytest.raises(ConfigError, match="num_bins"):
        build_frontend("spectrogram_mulaw", num_bins=1000)
    with pytest.raises(UnknownNameError, match="logmel"):
        build_frontend("log_mel")


def test_bad_batches_are_refused() -> None:
    frontend = build_frontend("logmel")
    with pytest.raises(FrontendError, match=r"\[batch, samples\]"):
        frontend(torch.zeros(16000), torch.tensor([16000]))
    with pytest.raises(FrontendError, match="lengths"):
        frontend(torch.zeros(2, 16000), torch.tensor([16000, 16001]))
    with pytest.raises(FrontendError, match="lengths"):
        frontend(torch.zeros(2, 16000), torch.tensor([16000]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_front_ends_run_on_the_gpu() -> None:
    wave, lengths = batch([16000, 12000])
    for name in BUILT_BY_NAME:
        frontend = build_frontend(name).eval()
        cpu, cpu_lengths = frontend(wave, lengths)
        gpu, gpu_lengths = frontend.cuda()(wave.cuda(), lengths.cuda())
        assert gpu.is_cuda and torch.equal(gpu_lengths.cpu(), cpu_lengths)
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)
