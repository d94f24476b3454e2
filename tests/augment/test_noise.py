"""Noise augmentation: the mixed SNR matches the target, padding is untouched, the fraction of
noised utterances, categories (babble from several speech clips), the bank read from shards,
and the noisy copy of a shard set (`ssl-ser shards noisy`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from ssl_ser.augment.augmenter import Augmenter, check_augment
from ssl_ser.augment.draws import Draws
from ssl_ser.augment.noise import (
    NoiseAugment,
    NoiseBank,
    NoiseSampler,
    clip_category,
    measured_snr,
    scale_for_snr,
)
from ssl_ser.augment.noisy_copy import noisy_copy
from ssl_ser.config import ConfigError
from ssl_ser.data.shard_index import read_index

from .conftest import CodedBatches


def speechlike(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16_000
    return (0.2 * torch.sin(2 * torch.pi * 180 * t) * (1 + torch.sin(2 * torch.pi * 3 * t))
            + 0.01 * torch.randn(n, generator=g))


def synthetic_bank(speech: int = 4) -> NoiseBank:
    g = torch.Generator().manual_seed(0)
    clips = [("n0", "noise", torch.randn(3000, generator=g)),
             ("n1", "noise", 0.1 * torch.randn(9000, generator=g)),
             ("m0", "music", torch.sin(torch.arange(5000) * 0.1))]
    clips += [(f"s{i}", "speech", speechlike(4000 + 500 * i, i)) for i in range(speech)]
    return NoiseBank.from_clips(clips)


def make_noise(bank: NoiseBank, **options: object) -> NoiseAugment:
    cfg = check_augment({"noise": {"shards": ["unused"], **options}}).noise
    assert cfg is not None
    return NoiseAugment(cfg, bank)


@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0, -3.0, 20.0])
def test_mixed_snr_matches_the_target_over_the_valid_part(batches: CodedBatches, snr: float) -> None:
    aug = make_noise(synthetic_bank(), snrs=[snr], fraction=1.0)
    lengths = torch.tensor([16_000, 6_000, 11_000, 2_500])
    clean = torch.zeros(4, 16_000)
    for row, n in enumerate(lengths.tolist()):
        clean[row, :n] = speechlike(n, 10 + row)
    targets = batches.make(["happy"] * 4, lengths.tolist())[2]
    for call in range(5):
        out, out_lengths, out_targets = aug(clean, lengths, targets, Draws(0, 0, call, "noise"))
        assert out_targets is targets and torch.equal(out_lengths, lengths)
        assert len(aug.last) == 4
        for row, n in enumerate(lengths.tolist()):
            added = out[row, :n] - clean[row, :n]
            assert added.abs().max() > 0
            assert measured_snr(clean[row, :n], added) == pytest.approx(snr, abs=0.5)
            assert not out[row, n:].any()  # padding stays zero
    assert {r.category for r in aug.last} <= {"noise", "music", "babble"}
    assert not torch.equal(out, clean) and clean[0, 0] == speechlike(16_000, 10)[0]  # input untouched


def test_scale_for_snr_is_exact_and_refuses_silence() -> None:
    x, z = speechlike(8000, 1), torch.randn(8000)
    gain = scale_for_snr(x, z, 7.0)
    assert gain is not None
    assert measured_snr(x, gain * z) == pytest.approx(7.0, abs=1e-3)
    assert scale_for_snr(torch.zeros(100), z[:100], 5.0) is None
    assert scale_for_snr(x[:100], torch.zeros(100), 5.0) is None


def test_fraction_of_noised_utterances(batches: CodedBatches) -> None:
    aug = make_noise(synthetic_bank(), fraction=0.3)
    augmenter = Augmenter({"noise": aug}, seed=5)
    audio = torch.stack([speechlike(800, i) for i in range(8)])
    lengths = torch.full((8,), 800)
    targets = batches.make(["happy"] * 8, [800] * 8)[2]
    for _ in range(250):
        augmenter(audio, lengths, targets)
    assert aug.stats.utterances == 2000
    # binomial sd at n=2000 is about 0.010
    assert aug.stats.noised / aug.stats.utterances == pytest.approx(0.3, abs=0.04)
    assert set(aug.stats.by_category) == {"noise", "music", "babble"}


def test_categories_weights_and_babble() -> None:
    bank = synthetic_bank(speech=5)
    sampler = NoiseSampler(bank, snrs=[5.0], categories={"babble": 1.0}, category_snrs={"babble": [15.0]},
                           babble_clips=(3, 4))
    rng = random.Random(0)
    for _ in range(30):
        category, snr, noise, clips = sampler.draw(2000, rng)
        assert (category, snr) == ("babble", 15.0)
        assert 3 <= len(clips) <= 4 and len(set(clips)) == len(clips)
        assert all(c.startswith("s") for c in clips)
        assert noise.shape == (2000,)
    with pytest.raises(ConfigError, match="no clips for \\['music'\\]"):
        NoiseSampler(NoiseBank.from_clips([("n", "noise", torch.randn(100))]), snrs=[0.0],
                     categories={"music": 1.0}, category_snrs={})
    with pytest.raises(ConfigError, match="unknown category"):
        NoiseSampler(bank, snrs=[0.0], categories={"traffic": 1.0}, category_snrs={})


def test_short_clips_repeat_to_cover_long_utterances() -> None:
    bank = NoiseBank.from_clips([("n", "noise", torch.arange(1.0, 11.0))])
    piece = bank.piece("noise", 0, 25, random.Random(3))
    assert piece.shape == (25,)
    start = int(piece[0]) - 1
    expected = (torch.arange(25) + start) % 10 + 1
    assert torch.equal(piece, expected.float())


def test_clip_category_rules() -> None:
    assert clip_category({"extra": {"subset": "music"}}) == "music"  # MUSAN
    assert clip_category({"extra": {"label": "Speech"}}) == "speech"  # folder recipe
    assert clip_category({"extra": {"label": "nonspeech100"}}) == "noise"
    assert clip_category({"speaker": "spk1", "extra": {}}) == "speech"
    assert clip_category({"extra": {"noise": "pink"}}) == "noise"  # the synthetic corpus


def test_bank_from_shards(noise_shards: Path) -> None:
    bank = NoiseBank.from_shards([str(noise_shards)])
    assert bank.kinds == {"noise": 2, "music": 2, "speech": 4}
    assert bank.categories() == ["noise", "music", "babble"]
    assert sum(bank.lengths["music"]) == 16_000 + 24_000
    small = NoiseBank.from_shards([str(noise_shards)], max_bank_seconds=1.0)
    assert sum(sum(v) for v in small.lengths.values()) <= 16_000
    aug = NoiseAugment.from_config(check_augment({"noise": {"shards": [str(noise_shards)]}}).noise)
    assert aug.sampler.names == ["noise", "music", "babble"]


def test_missing_noise_shards_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="augment.noise.shards.*nowhere"):
        check_augment({"noise": {"shards": [str(tmp_path / "nowhere")]}}, check_data=True)


def read_shard_set(path: Path) -> dict[str, tuple[dict, torch.Tensor]]:
    from ssl_ser.data.stream import make_stream

    out = {}
    for batch in make_stream(str(path), mode="exact", batch_size=1, num_workers=0, rank=0, world_size=1):
        out[batch.keys[0]] = (batch.meta[0], batch.audio[0, :int(batch.lengths[0])])
    return out


def test_noisy_copy_keeps_keys_and_labels_and_is_reproducible(speech_shards: Path, noise_shards: Path,
                                                              tmp_path: Path) -> None:
    report = noisy_copy(str(speech_shards), [str(noise_shards)], tmp_path / "a", snrs=[10.0], seed=1,
                        progress=False)
    assert report.samples == 6 and report.rejected == 0
    clean, noisy = read_shard_set(speech_shards), read_shard_set(tmp_path / "a")
    assert set(noisy) == set(clean)
    for key, (meta, wave) in noisy.items():
        clean_meta, clean_wave = clean[key]
        for name in ("emotion", "speaker", "corpus", "split", "labelled"):
            assert meta[name] == clean_meta[name]
        assert wave.numel() == clean_wave.numel()
        assert meta["extra"]["noisy"]["snr"] == 10.0
        # 16-bit storage adds a little quantisation noise of its own
        assert measured_snr(clean_wave, wave - clean_wave) == pytest.approx(10.0, abs=0.5)
    index = read_index(tmp_path / "a")
    assert index.emotions == read_index(speech_shards).emotions
    assert not (tmp_path / "a" / ".noisy-work").exists()
    # the same seed gives the same audio and noise records; another seed other noise
    noisy_copy(str(speech_shards), [str(noise_shards)], tmp_path / "b", snrs=[10.0], seed=1, progress=False)
    noisy_copy(str(speech_shards), [str(noise_shards)], tmp_path / "c", snrs=[10.0], seed=2, progress=False)
    again, other = read_shard_set(tmp_path / "b"), read_shard_set(tmp_path / "c")
    for key, (meta, wave) in noisy.items():
        assert torch.equal(again[key][1], wave)
        assert again[key][0]["extra"]["noisy"] == meta["extra"]["noisy"]
    assert any(not torch.equal(other[k][1], noisy[k][1]) for k in noisy)


def test_noisy_command(speech_shards: Path, noise_shards: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    from ssl_ser.cli import main

    out = tmp_path / "noisy"
    argv = ["shards", "noisy", str(speech_shards), str(noise_shards), str(out), "--snr", "0", "--snr", "5",
            "--categories", "noise,music", "--seed", "3", "--quiet"]
    assert main(argv) == 0
    assert "6 samples written" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "noisy-manifest.jsonl").read_text().splitlines()]
    assert {r["extra"]["noisy"]["snr"] for r in rows} <= {0.0, 5.0}
    assert {r["extra"]["noisy"]["category"] for r in rows} <= {"noise", "music"}
    assert main(argv) == 2  # refused, named: the copy is not overwritten without --overwrite
    assert "already holds a shard set" in capsys.readouterr().err
