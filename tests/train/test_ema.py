"""Weight averaging (``train.ema_decay``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ssl_ser import checkpoint as ckpt
from ssl_ser.job_loader import job_from_dict
from ssl_ser.train.ema import WeightAverage
from ssl_ser.train.loop import Loop
from ssl_ser.train.runner import run_local


def test_the_average_follows_the_weights_with_a_ramped_decay_and_is_swapped_in_and_out() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ema = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()
    model(torch.randn(4, 2))  # BatchNorm statistics move and its batch count goes to 1
    ema.update(model)
    decay = min(0.9, 2 / 11)  # the first update's ramped decay
    expected = decay * start["0.weight"] + (1 - decay) * model.state_dict()["0.weight"]
    torch.testing.assert_close(ema.shadow["0.weight"], expected)
    assert int(ema.shadow["1.num_batches_tracked"]) == 1  # integers are copied, not averaged
    raw = model[0].weight.detach().clone()
    with ema.applied(model) as kept:
        torch.testing.assert_close(model[0].weight, expected)
        torch.testing.assert_close(kept["0.weight"], raw)
    torch.testing.assert_close(model[0].weight, raw)


def _job(demo_shards, make_tiny_job, tmp_path: Path, name: str):
    data = make_tiny_job(demo_shards, name=name, train={"epochs": 3, "seed": 0, "metric": "ua", "ema_decay": 0.9})
    data["storage_path"] = str(tmp_path / "runs")
    return job_from_dict(data)


def test_checkpoints_hold_the_average_and_a_resumed_run_equals_an_uninterrupted_one(
        demo_shards, make_tiny_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_local(_job(demo_shards, make_tiny_job, tmp_path, "whole"), progress=False)
    state = ckpt.load_state(ckpt.find_checkpoint(tmp_path / "runs" / "whole", "latest"))
    assert state["train_model"] and state["ema"]
    for key, value in state["model"].items():
        torch.testing.assert_close(value, state["ema"]["shadow"][key])
    assert any(not torch.equal(state["model"][k], state["train_model"][k]) for k in state["model"])

    original = Loop._log_epoch

    def interrupt_after_first_epoch(self: Loop, metrics: dict) -> None:
        original(self, metrics)
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt

    cut = _job(demo_shards, make_tiny_job, tmp_path, "cut")
    monkeypatch.setattr(Loop, "_log_epoch", interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_local(cut, progress=False)
    monkeypatch.setattr(Loop, "_log_epoch", original)
    run_local(cut, progress=False)
    other = ckpt.load_state(ckpt.find_checkpoint(tmp_path / "runs" / "cut", "latest"))
    for part in ("model", "train_model"):
        for key in state[part]:
            assert torch.equal(state[part][key], other[part][key]), (part, key)

    def history(name: str) -> list[dict]:
        rows = [json.loads(x) for x in (tmp_path / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]

    assert history("whole") == history("cut")
