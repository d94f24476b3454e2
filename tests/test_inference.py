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


def test_predictor_from_checkpoint_reproduces_the_loops_validation(
        demo_shards, make_tiny_job, tmp_path: Path) -> None:
    data = make_tiny_job(demo_shards, name="norm", train={"epochs": 2},
                         frontend={"name": "logmel", "speaker_norm": True})
    data["storage_path"] = str(tmp_path)
    run_local(job_from_dict(data), progress=False)
    last = json.loads((tmp_path / "norm" / "metrics.jsonl").read_text().splitlines()[-1])

    predictor, meta = Predictor.from_checkpoint(tmp_path / "norm", which="latest")
    assert predictor.speaker_norm is not None and meta["epoch"] == 2
    stream = make_stream(demo_shards.shards["valid"], mode="exact", batch_size=8, num_workers=0,
                         max_seconds=30.0)
    pred = predictor.score(predictor.predict(stream))
    for key in ("ua", "wa", "macro_f1", "loss"):
        assert pred.metrics[key] == pytest.approx(last[f"valid_{key}"], abs=1e-5), key

    # with a memo, the front-end runs on the first pass only and the scores stay the same
    calls: list[int] = []
    forward = predictor.frontend.forward
    predictor.frontend.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    memo: FeatureMemo = {}
    for first in (True, False):
        calls.clear()
        stream = make_stream(demo_shards.shards["valid"], mode="exact", batch_size=8, num_workers=0,
                             max_seconds=30.0)
        again = predictor.score(predictor.predict(stream, memo=memo))
        assert len(calls) == (len(memo) if first else 0)  # first: once per batch
        assert again.metrics == pred.metrics and np.array_equal(again.probs, pred.probs)
    assert len(memo) > 1


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
