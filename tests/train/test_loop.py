"""The one loop in debug mode: trains, checkpoints, resumes exactly, refuses bad resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ssl_ser import checkpoint as ckpt
from ssl_ser.config import ConfigError
from ssl_ser.job_loader import job_from_dict
from ssl_ser.train.loop import Loop
from ssl_ser.train.runner import run_local, run_training


def _job(demo_shards, make_tiny_job, tmp_path: Path, **sections):
    data = make_tiny_job(demo_shards, **sections)
    data["storage_path"] = str(tmp_path / "runs")
    return job_from_dict(data)


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_state(ckpt.find_checkpoint(run, "latest"))["model"]


def test_debug_run_trains_checkpoints_and_logs(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    job = _job(demo_shards, make_tiny_job, tmp_path)
    metrics = run_training(job, debug=True)
    run = tmp_path / "runs" / "tiny"
    assert metrics["epoch"] == 3 and 0.0 <= metrics["valid_ua"] <= 1.0
    assert {"valid_wa", "valid_macro_f1", "valid_weighted_f1", "train_loss"} <= set(metrics)
    assert (run / "config.yaml").is_file()
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    kept = sorted(p.name for p in run.glob("checkpoint_epoch-*"))
    assert len(kept) <= job.train.num_to_keep + 1 and "checkpoint_epoch-000003" in kept
    meta = ckpt.load_meta(run / "checkpoint_epoch-000003")
    assert meta["labels"]["classes"] == sorted(meta["labels"]["classes"])
    state = ckpt.load_state(run / "checkpoint_epoch-000003")  # weights_only=True inside
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "step", "method"} <= set(state)


def test_interrupted_and_resumed_debug_run_equals_an_uninterrupted_one(
        demo_shards, make_tiny_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _job(demo_shards, make_tiny_job, tmp_path, name="whole")
    run_local(whole, progress=False)

    cut = _job(demo_shards, make_tiny_job, tmp_path, name="cut")
    original = Loop._log_epoch

    def interrupt_after_first_epoch(self: Loop, metrics: dict) -> None:
        original(self, metrics)
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt  # after the epoch-1 checkpoint, like Ctrl-C or a kill

    monkeypatch.setattr(Loop, "_log_epoch", interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_local(cut, progress=False)
    monkeypatch.setattr(Loop, "_log_epoch", original)
    assert not (tmp_path / "runs" / "cut" / "checkpoint_epoch-000002").exists()
    torch.manual_seed(12345)  # a resumed process starts with other RNG states
    run_local(cut, progress=False)

    a, b = _final_weights(tmp_path / "runs" / "whole"), _final_weights(tmp_path / "runs" / "cut")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    def history(name: str) -> list[dict]:
        rows = [json.loads(x) for x in (tmp_path / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]

    assert history("whole") == history("cut")


def test_resuming_with_a_changed_model_is_refused_unless_forced(
        demo_shards, make_tiny_job, tmp_path: Path) -> None:
    job = _job(demo_shards, make_tiny_job, tmp_path, train={"epochs": 1})
    run_training(job, debug=True)
    changed = _job(demo_shards, make_tiny_job, tmp_path, train={"epochs": 2},
                   model={"name": "resnet34_xvector", "size": "tiny", "embedding_dim": 24})
    with pytest.raises(ckpt.CheckpointError, match="model"):
        run_training(changed, debug=True)
    with pytest.raises(ckpt.CheckpointError, match="--resume: no checkpoint"):
        run_training(_job(demo_shards, make_tiny_job, tmp_path, name="fresh"), debug=True, resume=True)


def test_config_errors_name_the_key(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train.epocs"):
        _job(demo_shards, make_tiny_job, tmp_path, train={"epocs": 2})
    with pytest.raises(ConfigError, match="model.sise"):
        _job(demo_shards, make_tiny_job, tmp_path, model={"name": "resnet34_xvector", "sise": "tiny"})
    with pytest.raises(ConfigError, match="method.name.*'supervized'"):
        _job(demo_shards, make_tiny_job, tmp_path, method={"name": "supervized"})
    with pytest.raises(ConfigError, match="data.valid"):
        _job(demo_shards, make_tiny_job, tmp_path, data={"valid": [str(tmp_path / "missing")]})
    with pytest.raises(ConfigError, match="train.metric 'uar'"):
        _job(demo_shards, make_tiny_job, tmp_path, train={"metric": "uar"})


@pytest.mark.parametrize("frontend", [
    {"name": "functionals"},
    {"name": "plus_functionals", "base": {"name": "logmel", "n_mels": 16}},
])
def test_segments_are_refused_for_a_front_end_that_describes_whole_utterances(
        demo_shards, make_tiny_job, tmp_path: Path, frontend) -> None:
    job = _job(demo_shards, make_tiny_job, tmp_path, frontend=frontend,
               data={"segment": {"seconds": 0.5, "train_hop": 0.25, "eval_hop": 0.25}})
    with pytest.raises(ConfigError, match=f"data.segment: front-end '{frontend['name']}' describes whole utterances"):
        run_local(job, progress=False)


def test_a_truncated_training_shard_is_skipped_counted_and_reported(
        demo_shards, make_tiny_job, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    shards = tmp_path / "train"
    shutil.copytree(demo_shards.shards["train_labelled"], shards)
    victim = sorted(shards.glob("shard-*.tar"))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    job = _job(demo_shards, make_tiny_job, tmp_path, train={"epochs": 1},
               data={"train": [str(shards)], "samples_per_epoch": 64})
    metrics = run_training(job, debug=True)
    assert metrics["train_shards_failed"] == 1  # one shard, however often it was drawn
    assert f"train: skipped 1 missing or broken shard(s) ({victim})" in capsys.readouterr().out
    events = [json.loads(x) for x in (tmp_path / "runs" / "tiny" / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], e.get("stage"), e.get("failed_shards")) for e in events] == [
        ("started", None, None), ("data_unread", "train", [str(victim)])]


def test_a_missing_validation_shard_is_recorded_in_metrics_and_events(
        demo_shards, make_tiny_job, tmp_path: Path) -> None:
    from ssl_ser.data.shard_index import read_index
    from ssl_ser.data.shards import build_shards

    valid = tmp_path / "valid"
    build_shards(demo_shards.manifests["valid"], valid, max_count=4, workers=1, progress=False)
    gone = valid / "shard-000001.tar"
    gone.unlink()
    job = _job(demo_shards, make_tiny_job, tmp_path, train={"epochs": 1}, data={"valid": [str(valid)]})
    metrics = run_training(job, debug=True)
    lost = read_index(valid).raw["shards"][1]["samples"]
    assert metrics["eval_samples_unread"] == lost and metrics["valid_n"] == read_index(valid).samples - lost
    _, event = [json.loads(x) for x in (tmp_path / "runs" / "tiny" / "events.jsonl").read_text().splitlines()]
    assert event["event"] == "data_unread" and event["stage"] == "evaluate"
    assert event["failed_shards"] == [str(gone)] and event["expected"] == read_index(valid).samples


def test_dropped_training_labels_are_reported_with_counts(
        demo_shards, make_tiny_job, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ssl_ser.train.loop import Loop
    from ssl_ser.train.session import LocalSession

    job = _job(demo_shards, make_tiny_job, tmp_path,
               data={"labels": {"classes": ["angry", "happy", "neutral"], "unmapped": "drop"}})
    Loop(job, LocalSession(tmp_path / "run", 1, "ua", "max"), debug=True, progress=False)
    out = capsys.readouterr().out
    from ssl_ser.data.histograms import class_histogram

    sad = class_histogram(job.data.train, "emotion")["sad"]
    assert sad > 0
    assert f"labels: {sad} training label(s) not mapped (unmapped: drop)" in out and f"synthetic:sad {sad}" in out
    job = _job(demo_shards, make_tiny_job, tmp_path, name="all_mapped")
    Loop(job, LocalSession(tmp_path / "run2", 1, "ua", "max"), debug=True, progress=False)
    assert "labels:" not in capsys.readouterr().out  # nothing dropped, nothing said


def test_a_job_the_cluster_cannot_place_is_refused(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    from ssl_ser.train.runner import check_resources

    job = _job(demo_shards, make_tiny_job, tmp_path, scaling={"num_workers": 2, "use_gpu": True})
    with pytest.raises(ConfigError, match="2 GPU, but the Ray cluster has 0"):
        check_resources(job, {"CPU": 16.0})
    check_resources(job, {"CPU": 16.0, "GPU": 2.0})
    small = _job(demo_shards, make_tiny_job, tmp_path, scaling={"num_workers": 3})
    with pytest.raises(ConfigError, match="3 CPU"):
        check_resources(small, {"CPU": 2.0})


def _logged_epochs(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_kill_between_checkpoint_and_log_line_still_logs_every_epoch_once(
        demo_shards, make_tiny_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(demo_shards, make_tiny_job, tmp_path, name="killed")
    run = tmp_path / "runs" / "killed"
    original = Loop._log_epoch

    def killed_before_logging_epoch_2(self: Loop, metrics: dict) -> None:
        if metrics["epoch"] == 2:
            raise KeyboardInterrupt  # the epoch-2 checkpoint is written, its log line is not
        original(self, metrics)

    monkeypatch.setattr(Loop, "_log_epoch", killed_before_logging_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_local(job, progress=False)
    monkeypatch.setattr(Loop, "_log_epoch", original)
    assert (run / "checkpoint_epoch-000002").is_dir() and _logged_epochs(run) == [1]
    with (run / "metrics.jsonl").open("a") as out:  # and a torn line from a kill mid-write
        out.write('{"epoch": 3, "train_lo')
    run_local(job, progress=False)
    assert _logged_epochs(run) == [1, 2, 3]
    saved = ckpt.load_meta(run / "checkpoint_epoch-000003")["history"]
    assert [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()] == saved


def test_a_damaged_latest_checkpoint_is_passed_over_for_the_one_before(
        demo_shards, make_tiny_job, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "runs" / "tiny"
    run_training(_job(demo_shards, make_tiny_job, tmp_path, train={"epochs": 2}), debug=True)
    state = run / "checkpoint_epoch-000002" / ckpt.STATE
    state.write_bytes(state.read_bytes()[:1000])
    capsys.readouterr()
    metrics = run_training(_job(demo_shards, make_tiny_job, tmp_path, train={"epochs": 3}), debug=True)
    assert metrics["epoch"] == 3
    out = capsys.readouterr().out
    assert ("warning: passing over damaged checkpoint checkpoint_epoch-000002, resuming from "
            "checkpoint_epoch-000001 instead (cannot load checkpoint") in out
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["started", "checkpoint_skipped", "resumed"]
    assert events[-1]["epoch"] == 1
    assert _logged_epochs(run) == [1, 2, 3]


def test_a_run_killed_before_its_first_checkpoint_starts_over_with_a_clean_log(
        demo_shards, make_tiny_job, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 9.0}\n')  # its checkpoint never landed
    run_training(_job(demo_shards, make_tiny_job, tmp_path, train={"epochs": 1}), debug=True)
    assert _logged_epochs(run) == [1] and json.loads((run / "metrics.jsonl").read_text())["train_loss"] != 9.0
    assert [json.loads(x)["event"] for x in (run / "events.jsonl").read_text().splitlines()] == ["started"]
