"""Cross-validation runs: an end-to-end 2-fold run, resuming, fold jobs, the command, Ray,
and a fold list resolved against real shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssl_ser import checkpoint as ckpt
from ssl_ser.cli import main
from ssl_ser.cv import fold_job, fold_status, prepare, run_cv
from ssl_ser.data.shard_index import read_index
from ssl_ser.folds import CvError
from ssl_ser.job_loader import job_from_dict


def _cv_job(demo_shards, make_tiny_job, storage: Path):
    data = make_tiny_job(demo_shards, name="cvjob", frontend={"name": "logmel", "speaker_norm": True})
    data["data"]["valid"] = []
    data["train"] = {**data["train"], "epochs": 1}
    data["debug"] = {**data["debug"], "max_train_batches": 2}
    data["storage_path"] = str(storage)
    return job_from_dict(data)


def test_two_fold_debug_cv_runs_end_to_end_and_resumes(
        demo_shards, make_tiny_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _cv_job(demo_shards, make_tiny_job, tmp_path)
    logs: list[str] = []
    results = run_cv(job, 2, debug=True, valid_speakers=0, log=logs.append)
    cv_dir = tmp_path / "cvjob-cv-k2"
    source = read_index(demo_shards.shards["train_labelled"])
    assert results["folds_done"] == 2 and results["pooled"]["n"] == source.samples  # each once
    assert (cv_dir / "cv_results.json").is_file() and (cv_dir / "confusion.png").is_file()
    assert f"pooled (n = {source.samples})" in (cv_dir / "cv_report.txt").read_text()
    keys = [set(json.loads(line)["key"] for line in (cv_dir / f"cvjob-fold{i}" / "test" / "predictions.jsonl")
                .read_text().splitlines()) for i in (0, 1)]
    assert not keys[0] & keys[1] and len(keys[0] | keys[1]) == source.samples
    stats = results["mean_std"]["ua"]
    uas = [f["ua"] for f in results["folds"]]
    assert stats["mean"] == pytest.approx(sum(uas) / 2) and stats["folds"] == 2

    # speaker-wise normalisation: every fold's test speakers have their own statistics in the
    # checkpoint (fitted without labels during training) and evaluation used exactly those
    for fold in results["folds"]:
        state = ckpt.load_state(ckpt.find_checkpoint(cv_dir / fold["name"]))
        test_speakers = {s for s in fold["held_out"]}
        assert test_speakers <= set(state["speaker_norm"]["speakers"])
        summary = json.loads((cv_dir / fold["name"] / "test" / "metrics.json").read_text())
        assert summary["speaker_norm"] == {"from_checkpoint": len(test_speakers), "fitted_here": 0}

    # a rerun trains nothing; a fold without its test evaluation is only re-evaluated
    import ssl_ser.train.loop as loop_module

    class NoTraining:
        def __init__(self, *args, **kwargs) -> None:
            raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(loop_module, "Loop", NoTraining)
    before = (cv_dir / "cvjob-fold0" / "test" / "metrics.json").stat().st_mtime_ns
    (cv_dir / "cvjob-fold1" / "test" / "metrics.json").unlink()
    logs.clear()
    again = run_cv(job, 2, debug=True, valid_speakers=0, log=logs.append)
    assert any("1 already done, 1 to run" in line for line in logs)
    assert (cv_dir / "cvjob-fold0" / "test" / "metrics.json").stat().st_mtime_ns == before
    assert again["pooled"] == results["pooled"]

    # the folds must stay those of folds.json
    import dataclasses

    with pytest.raises(CvError, match="other folds"):
        run_cv(dataclasses.replace(job, name="renamed"), 2, debug=True, valid_speakers=0, cv_dir=cv_dir,
               log=logs.append)


def test_fold_jobs_point_at_their_groups_and_share_the_classes(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    job = _cv_job(demo_shards, make_tiny_job, tmp_path)
    plan = prepare(job, "speaker", valid_speakers=1, log=lambda _: None)
    assert plan.classes == ["angry", "happy", "neutral", "sad"] and len(plan.folds) == 3
    first = fold_job(job, plan, plan.folds[0])
    assert first.name == "cvjob-fold0" and first.storage_path == str(plan.cv_dir)
    assert first.data.labels.classes == plan.classes
    assert [Path(p).name for p in first.data.test] == plan.folds[0].test
    assert fold_status(first) == "new"
    speakers = {s for p in first.data.train + first.data.valid for s in read_index(p).speakers}
    assert not speakers & set(read_index(first.data.test[0]).speakers)
    # the groups hold every training sample once, with the audio the shards had
    total = sum(read_index(plan.group_dir(g.name)).samples for g in plan.groups)
    assert total == read_index(demo_shards.shards["train_labelled"]).samples


def test_two_cv_processes_on_one_folder_split_the_shards_once(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    # `ssl-ser cv --only 0,1,2` and `--only 3,4,5` side by side: the second must wait for the
    # first's split, not split the same shards at once (they deleted each other's scratch audio)
    import fcntl
    import os
    import threading

    job = _cv_job(demo_shards, make_tiny_job, tmp_path)
    cv_dir = tmp_path / "cvjob-cv-speaker"
    cv_dir.mkdir()
    waiting = threading.Event()
    plans: list = []

    def log(line: str) -> None:
        if line.startswith("cv: waiting for another"):
            waiting.set()

    handle = os.open(cv_dir, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX)  # another process is splitting
    second = threading.Thread(target=lambda: plans.append(prepare(job, "speaker", valid_speakers=1, log=log)))
    second.start()
    assert waiting.wait(30) and not (cv_dir / "groups").exists()
    os.close(handle)
    second.join(60)
    racers = [threading.Thread(target=lambda: plans.append(prepare(job, "speaker", valid_speakers=1,
                                                                    log=lambda _: None))) for _ in range(2)]
    for t in racers:
        t.start()
    for t in racers:
        t.join(60)
    assert len(plans) == 3 and all(p.to_json() == plans[0].to_json() for p in plans)
    total = sum(read_index(plans[0].group_dir(g.name)).samples for g in plans[0].groups)
    assert total == read_index(demo_shards.shards["train_labelled"]).samples


def test_cv_command_plan(demo_shards, make_tiny_job, tmp_path: Path, capsys) -> None:
    import yaml

    from ssl_ser.config import to_dict

    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(to_dict(_cv_job(demo_shards, make_tiny_job, tmp_path))))
    assert main(["cv", str(path), "--folds", "speaker", "--plan"]) == 0
    out = capsys.readouterr().out
    assert out.count("cvjob-fold") == 3 and "0/3 folds done" in out
    assert main(["cv", str(path), "--folds", "nine"]) == 2
    assert "--folds must be" in capsys.readouterr().err


@pytest.mark.ray
def test_folds_run_concurrently_on_ray(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        job = _cv_job(demo_shards, make_tiny_job, tmp_path)
        logs: list[str] = []
        results = run_cv(job, 2, parallel=2, cpus_per_fold=1, valid_speakers=0, log=logs.append)
    finally:
        ray.shutdown()
    assert results["folds_done"] == 2
    assert sum("started on Ray" in line for line in logs) == 2
    assert results["pooled"]["n"] == read_index(demo_shards.shards["train_labelled"]).samples


@pytest.mark.parametrize("recipe", ["attention_cnn", "pyresnet"])
def test_paper_recipes_are_valid_jobs(recipe: str, demo_shards) -> None:
    from ssl_ser.job_loader import load_job

    root = Path(__file__).resolve().parents[1]
    job = load_job(root / "jobs" / f"{recipe}.yaml",
                   [f"data.train=[{demo_shards.shards['train_labelled']}]", "model.size=tiny"])
    assert job.data.labels.classes == ["angry", "happy", "neutral", "sad"] and job.optim.name == "sgd"
    if recipe == "attention_cnn":
        assert job.frontend["name"] == "spectrogram_mulaw" and job.data.segment is not None
        assert (job.data.segment.seconds, job.data.segment.train_hop, job.data.segment.eval_hop) == (2.0, 1.0, 0.4)
        assert job.schedule.milestones == [21, 31, 41] and job.optim.nesterov
    else:
        assert job.frontend == {"name": "logmel", "n_mels": 128, "n_fft": 1024, "hop_length": 512}
        assert (job.schedule.name, job.schedule.step_size, job.optim.lr) == ("step", 20, 0.01)


def test_a_fold_list_by_key_is_resolved_against_the_shards(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    import yaml

    from ssl_ser.data.manifest import read_manifest
    from ssl_ser.folds import parse_protocol

    rows = read_manifest(demo_shards.manifests["train_labelled"])
    speakers = sorted({r.speaker for r in rows})
    path = tmp_path / "by_key.yaml"
    path.write_text(yaml.safe_dump({"name": "bykey", "unit": "key",
                                    "folds": [[r.key for r in rows if r.speaker == s] for s in speakers]}))
    plan = prepare(_cv_job(demo_shards, make_tiny_job, tmp_path), parse_protocol(str(path)), valid_speakers=1,
                   log=lambda _: None)
    assert plan.cv_dir.name == "cvjob-cv-bykey"
    assert [f.held_out for f in plan.folds] == [[f"synthetic/{s}"] for s in speakers]
