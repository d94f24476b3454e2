"""Predictor: rebuilt from a checkpoint it scores exactly like the loop did; speaker norm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_ser.data.stream import make_stream
from ssl_ser.inference import FeatureMemo, Predictor
from ssl_ser.job_loader import job_from_dict
from ssl_ser.speaker_norm import SpeakerNorm, speaker_keys
from ssl_ser.train.runner import run_local


@pytest.fixture(scope="module")
def trained_run(demo_shards, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch run with speaker normalisation; its last epoch's validation row is in metrics.jsonl."""
    from tests.conftest import tiny_job

    data = tiny_job(demo_shards, name="norm", train={"epochs": 2},
                    frontend={"name": "logmel", "speaker_norm": True})
    data["storage_path"] = str(tmp_path_factory.mktemp("inference"))
    run_local(job_from_dict(data), progress=False)
    return Path(data["storage_path"]) / "norm"


def _valid_stream(demo_shards):
    return make_stream(demo_shards.shards["valid"], mode="exact", batch_size=8, num_workers=0, max_seconds=30.0)


def test_predictor_from_checkpoint_reproduces_the_loops_validation(demo_shards, trained_run: Path) -> None:
    last = json.loads((trained_run / "metrics.jsonl").read_text().splitlines()[-1])
    predictor, meta = Predictor.from_checkpoint(trained_run, which="latest")
    assert predictor.speaker_norm is not None and meta["epoch"] == 2
    pred = predictor.score(predictor.predict(_valid_stream(demo_shards)))
    for key in ("ua", "wa", "macro_f1", "loss"):
        assert pred.metrics[key] == pytest.approx(last[f"valid_{key}"], abs=1e-5), key


def test_a_feature_memo_runs_the_front_end_on_the_first_pass_only(demo_shards, trained_run: Path) -> None:
    predictor, _ = Predictor.from_checkpoint(trained_run, which="latest")
    reference = predictor.score(predictor.predict(_valid_stream(demo_shards)))
    calls: list[int] = []
    forward = predictor.frontend.forward
    predictor.frontend.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    memo = FeatureMemo()
    for first in (True, False):
        calls.clear()
        again = predictor.score(predictor.predict(_valid_stream(demo_shards), memo=memo))
        assert len(calls) == (len(memo) if first else 0)  # first: once per batch
        assert again.metrics == reference.metrics and np.array_equal(again.probs, reference.probs)
    assert len(memo) > 1


def test_a_feature_memo_keeps_what_fits_its_budget_and_needs_keys() -> None:
    feats, frames = torch.zeros(2, 4, 8), torch.tensor([8, 5])  # 256 bytes
    memo = FeatureMemo(max_bytes=300)
    memo.put(("a", "b"), feats, frames)
    memo.put(("c", "d"), feats, frames)  # would pass the budget: computed every time instead
    assert len(memo) == 1 and memo.nbytes == 256 and memo.get(("c", "d")) is None
    predictor = Predictor(torch.nn.Identity(), torch.nn.Identity(), None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="utterance keys"):
        predictor.features(feats, frames, memo=memo)


def test_speaker_norm_gives_each_speaker_zero_mean_unit_variance(demo_shards) -> None:
    class Identity(torch.nn.Module):
        def forward(self, wave: torch.Tensor, lengths: torch.Tensor):
            frames = wave.unfold(1, 160, 160)  # [B, T', 160] -> 160 "features" per frame
            return frames.transpose(1, 2), lengths // 160

    stream = lambda: make_stream(demo_shards.shards["valid"], mode="exact", batch_size=4,  # noqa: E731
                                 num_workers=0)
    norm = SpeakerNorm.fit(Identity(), stream(), torch.device("cpu"))
    feats_all = []
    for batch in stream():
        feats, frames = Identity()(batch.audio, batch.lengths)
        out = norm(feats, frames, speaker_keys(batch.meta))
        for row in range(out.shape[0]):
            feats_all.append(out[row, :, : frames[row]])
    values = torch.cat(feats_all, dim=1)  # the valid set is one speaker
    assert len(norm.speakers) == 1
    assert values.mean(dim=1).abs().max() < 1e-3
    assert (values.std(dim=1, unbiased=False) - 1).abs().max() < 1e-2
    unknown = norm(torch.ones(1, 160, 3), torch.tensor([3]), [None])  # falls back to pooled stats
    assert torch.isfinite(unknown).all()
