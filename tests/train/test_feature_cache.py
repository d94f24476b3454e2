"""Fold-level feature caching and mixup (``data.feature_cache``, ``train.mixup``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ssl_ser import segments
from ssl_ser.config import ConfigError
from ssl_ser.features import build_frontend
from ssl_ser.inference import Predictor
from ssl_ser.job_loader import job_from_dict
from ssl_ser.targets import Targets
from ssl_ser.train.feature_cache import FeatureBatch, FeatureCache
from ssl_ser.train.loop import permute_targets
from ssl_ser.train.runner import run_local, run_training


def _waves(lengths: list[int]) -> list[SimpleNamespace]:
    """Waveform batches of two rows each, like the exact stream's."""
    gen = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, len(lengths), 2):
        rows = lengths[start:start + 2]
        audio = torch.zeros(len(rows), max(rows))
        for j, n in enumerate(rows):
            audio[j, :n] = torch.randn(n, generator=gen) * 0.1
        keys = [f"u{start + j}" for j in range(len(rows))]
        batches.append(SimpleNamespace(keys=keys, audio=audio, lengths=torch.tensor(rows),
                                       meta=[{"emotion": "x", "labelled": True} for _ in rows]))
    for b in batches:
        b.to = lambda device, b=b: b  # already on the CPU
    return batches


def test_cached_features_are_the_front_end_of_each_whole_utterance_in_eval_mode() -> None:
    frontend = build_frontend("logmel", n_mels=16, n_fft=256, hop_length=128,
                              specaugment={"freq_mask": 8, "time_mask": 8})
    frontend.train()
    lengths = [16000, 9000, 20000]
    batches = _waves(lengths)
    cache = FeatureCache.build(frontend, batches, torch.device("cpu"))
    assert frontend.training  # mode restored
    assert cache.keys == ["u0", "u1", "u2"]
    frontend.eval()
    for i, n in enumerate(lengths):
        wave = batches[i // 2].audio[i % 2, :n].unsqueeze(0)
        alone, frames = frontend(wave, torch.tensor([n]))
        assert cache.feats[i].shape == (16, int(frames[0]))
        torch.testing.assert_close(cache.feats[i], alone[0])


def _cache(frames: list[int]) -> FeatureCache:
    feats = [torch.arange(n, dtype=torch.float32).expand(3, n) + 1000 * i for i, n in enumerate(frames)]
    return FeatureCache([f"u{i}" for i in range(len(frames))], [{"i": i} for i in range(len(frames))], feats)


def test_an_epoch_shuffles_and_crops_reproducibly_and_each_epoch_differently() -> None:
    cache = _cache([50, 20, 80, 35, 60])

    def run(epoch: int) -> list[tuple[str, int, int]]:
        out = []
        for batch in cache.epoch(epoch, seed=3, batch_size=2, crop_frames=30):
            assert isinstance(batch, FeatureBatch) and batch.feats.shape[-1] <= 30
            for j, key in enumerate(batch.keys):
                n = int(batch.frames[j])
                first = int(batch.feats[j, 0, 0]) % 1000
                assert n == min(30, len(cache.feats[int(key[1:])][0]))
                # a crop is a contiguous window of the utterance, zero-padded after its frames
                torch.testing.assert_close(batch.feats[j, :, :n], cache.feats[int(key[1:])][:, first:first + n])
                assert not batch.feats[j, :, n:].any()
                out.append((key, n, first))
        return out

    first = run(0)
    assert sorted(k for k, _, _ in first) == sorted(cache.keys)  # every utterance once
    assert run(0) == first
    assert run(1) != first
    # the 20-frame utterance is shorter than the crop: always whole, from its start
    assert all((n, s) == (20, 0) for k, n, s in first if k == "u1")


def test_ranks_get_disjoint_equal_shares() -> None:
    cache = _cache([10] * 7)
    shares = [[k for b in cache.epoch(2, seed=0, batch_size=2, crop_frames=None, rank=r, world_size=2)
               for k in b.keys] for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 3
    assert not set(shares[0]) & set(shares[1])


def test_a_cached_epoch_gives_samples_per_epoch_crops_from_successive_shuffles() -> None:
    cache = FeatureCache([f"u{i}" for i in range(5)], [{"emotion": "x"}] * 5, [torch.randn(2, 9)] * 5)
    order = [k for b in cache.epoch(0, seed=0, batch_size=4, crop_frames=3, samples=12) for k in b.keys]
    assert len(order) == 12 and sorted(order[:5]) == sorted(order[5:10]) == [f"u{i}" for i in range(5)]
    assert len(cache.epoch(0, seed=0, batch_size=4, crop_frames=3, samples=12, world_size=2)) == 2  # 6 per rank
    assert [k for b in cache.epoch(0, seed=0, batch_size=4, crop_frames=3) for k in b.keys] == order[:5]


def test_feature_windows_cut_like_the_waveform_segments() -> None:
    feats = torch.randn(3, 4, 25)
    frames = torch.tensor([25, 7, 13])
    windows, lengths, owner = segments.windows(feats, frames, size=10, step=5)
    # same counts, lengths and owners as segments.split with the sizes in samples
    ref_windows, ref_lengths, ref_owner = segments.split(torch.zeros(3, 25), frames, 10.0, 5.0, sample_rate=1)
    assert owner.tolist() == ref_owner.tolist() and lengths.tolist() == ref_lengths.tolist()
    assert windows.shape == (len(owner), 4, 10)
    torch.testing.assert_close(windows[1], feats[0, :, 5:15])
    assert not windows[owner.tolist().index(1), :, 7:].any()


def test_specaugment_applies_to_given_features_only_in_training() -> None:
    frontend = build_frontend("logmel", n_mels=16, specaugment={"freq_mask": 8, "time_mask": 8})
    feats = torch.ones(4, 16, 40)
    frames = torch.tensor([40, 40, 30, 40])
    frontend.eval()
    assert torch.equal(frontend.augment(feats, frames), feats)
    frontend.train()
    torch.manual_seed(0)
    masked = frontend.augment(feats, frames)
    assert (masked == 0).any() and not masked[2, :, 30:].any()


def test_permuted_targets_follow_their_rows() -> None:
    t = Targets(keys=["a", "b", "c"], label=torch.tensor([0, 1, 2]), attributes=torch.zeros(3, 3),
                labelled=torch.tensor([True, False, True]), owner=torch.tensor([0, 0, 1]),
                speakers=["s1", "s2", "s3"])
    p = permute_targets(t, torch.tensor([2, 0, 1]))
    assert p.keys == ["c", "a", "b"] and p.label.tolist() == [2, 0, 1]
    assert p.owner is not None and p.owner.tolist() == [1, 0, 0] and p.speakers == ["s3", "s1", "s2"]


def _job(demo_shards, make_tiny_job, tmp_path: Path, **sections):
    data = make_tiny_job(demo_shards, **sections)
    data["storage_path"] = str(tmp_path / "runs")
    return job_from_dict(data)


def test_a_cached_run_trains_without_reading_the_training_shards_again(
        demo_shards, make_tiny_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl_ser.train.loop as loop_module

    def no_stream(*args, **kwargs):
        raise AssertionError("the training stream was read although the features are cached")

    monkeypatch.setattr(loop_module, "make_train_stream", no_stream)
    job = _job(demo_shards, make_tiny_job, tmp_path, name="cached",
               data={"feature_cache": True, "segment": {"seconds": 0.5, "train_hop": 0.25, "eval_hop": 0.25}},
               frontend={"name": "logmel", "speaker_norm": True, "speaker_prior": 2,
                         "specaugment": {"freq_mask": 8, "time_mask": 4}},
               train={"epochs": 3, "seed": 0, "metric": "ua", "mixup": 0.4})
    metrics = run_training(job, debug=True)
    predictor, _ = Predictor.from_checkpoint(tmp_path / "runs" / "cached")
    assert predictor.speaker_norm is not None and predictor.speaker_norm.prior == 2.0
    history = [json.loads(x) for x in (tmp_path / "runs" / "cached" / "metrics.jsonl").read_text().splitlines()]
    assert metrics["epoch"] == 3 and 0.0 <= metrics["valid_ua"] <= 1.0
    assert all(h["train_batches"] > 0 for h in history)


def test_a_cached_run_computes_the_validation_features_once(
        demo_shards, make_tiny_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three epochs call the front-end as often as one (the training cache's pass, then the
    validation batches in the first epoch only), and score validation as a run that recomputes them."""
    from ssl_ser.features import LogMel
    from ssl_ser.inference import FeatureMemo

    calls: list[int] = []
    forward = LogMel.forward
    monkeypatch.setattr(LogMel, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))

    def run(name: str, epochs: int) -> tuple[int, list[dict]]:
        calls.clear()
        job = _job(demo_shards, make_tiny_job, tmp_path, name=name, data={"feature_cache": True},
                   train={"epochs": epochs, "seed": 0, "metric": "ua"})
        run_training(job, debug=True)
        rows = [json.loads(x) for x in (tmp_path / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        return len(calls), [{k: v for k, v in r.items() if k.startswith("valid_")} for r in rows]

    once, _ = run("one", 1)
    kept, kept_scores = run("kept", 3)
    monkeypatch.setattr(FeatureMemo, "put", lambda self, *a: None)  # the memo never keeps anything
    recomputed, recomputed_scores = run("recomputed", 3)
    assert kept == once > 0 and recomputed > kept
    assert kept_scores == recomputed_scores


def test_feature_cache_refuses_waveform_augmentation(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    job = _job(demo_shards, make_tiny_job, tmp_path, data={"feature_cache": True},
               augment={"noise": {"shards": [str(demo_shards.shards["noise"])]}})
    with pytest.raises(ConfigError, match="feature_cache: augment"):
        run_local(job, progress=False)


def test_a_vad_with_segments_trains_on_cached_voiced_frames_and_refuses_crops_before_it(
        demo_shards, make_tiny_job, tmp_path: Path) -> None:
    segment = {"seconds": 0.5, "train_hop": 0.25, "eval_hop": 0.25}
    frontend = {"name": "logmel", "n_mels": 16, "vad": True}
    job = _job(demo_shards, make_tiny_job, tmp_path, frontend=frontend, data={"segment": segment})
    with pytest.raises(ConfigError, match=r"^data.segment: front-end 'logmel''s vad .* data.crop_seconds cuts"):
        run_local(job, progress=False)
    job = _job(demo_shards, make_tiny_job, tmp_path, name="vad_segments", frontend=frontend,
               data={"segment": segment, "feature_cache": True}, train={"epochs": 1, "metric": "ua"})
    assert run_training(job, debug=True)["epoch"] == 1


def test_mixup_must_not_be_negative(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mixup"):
        _job(demo_shards, make_tiny_job, tmp_path, train={"mixup": -0.1})
