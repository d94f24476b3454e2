"""Real Ray Train runs on CPU: 2 workers, checkpoints, resume, a killed worker restarted.

Few and small: CI has 2 cores (each run costs ~30 s).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from ssl_ser.train.config import job_from_dict
from ssl_ser.train.runner import run_training

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    saved = dict(os.environ)
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    os.environ.clear()  # ray.init sets RAY_AUTH_MODE=token for this process and its children
    os.environ.update(saved)


def _job(demo_shards, make_tiny_job, storage: Path, name: str, epochs: int, **extra):
    data = make_tiny_job(demo_shards, name=name, train={"epochs": epochs, "max_steps_per_epoch": 4},
                         scaling={"num_workers": 2, "resources_per_worker": {"CPU": 1},
                                  "max_failures": extra.pop("max_failures", 0)}, **extra)
    data["storage_path"] = str(storage)
    return job_from_dict(data)


def _train_worker_pids() -> list[int]:
    """Ray names worker processes after the actor they run (``ray::RayTrainWorker...``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"RayTrainWorker" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return sorted(pids)


def _registered_checkpoints(run: Path) -> list[str]:
    """Checkpoints Ray Train has registered (a restart resumes from these, not from any
    directory that merely exists in storage)."""
    try:
        snapshot = json.loads((run / "checkpoint_manager_snapshot.json").read_text())
    except (OSError, ValueError):
        return []
    return [c["checkpoint_dir_name"] for c in snapshot.get("checkpoint_results", [])]


def _history(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def _events(run: Path) -> list[dict]:
    path = run / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_two_workers_train_checkpoint_and_a_rerun_resumes_at_epoch_3(
        ray_cluster, demo_shards, make_tiny_job, tmp_path: Path) -> None:
    metrics = run_training(_job(demo_shards, make_tiny_job, tmp_path, "ddp", epochs=2))
    run = tmp_path / "ddp"
    assert metrics["epoch"] == 2 and "valid_ua" in metrics
    assert _history(run) == [1, 2]
    assert len(list(run.glob("checkpoint_*/state.pt"))) == 2

    metrics = run_training(_job(demo_shards, make_tiny_job, tmp_path, "ddp", epochs=3), resume=True)
    assert metrics["epoch"] == 3
    assert _history(run) == [1, 2, 3]  # epochs 1-2 were not trained again
    assert [e["epoch"] for e in _events(run) if e["event"] == "resumed"] == [2]


def test_a_killed_worker_is_restarted_from_its_checkpoint(
        ray_cluster, demo_shards, make_tiny_job, tmp_path: Path) -> None:
    job = _job(demo_shards, make_tiny_job, tmp_path, "killed", epochs=4, max_failures=1)
    run = tmp_path / "killed"
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(metrics=run_training(job)))
    thread.start()
    deadline = time.time() + 120
    while not _registered_checkpoints(run) and time.time() < deadline:
        time.sleep(0.1)
    assert _registered_checkpoints(run), "no checkpoint was registered"
    workers = _train_worker_pids()
    assert workers, "no live Ray Train worker to kill"
    os.kill(workers[-1], signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive() and outcome["metrics"]["epoch"] == 4
    resumed = [e for e in _events(run) if e["event"] == "resumed"]
    assert resumed and resumed[0]["epoch"] >= 1  # the restarted group continued from a checkpoint
    history = _history(run)
    assert history[-1] == 4 and history[0] == 1 and history.count(1) == 1  # never restarted from scratch
