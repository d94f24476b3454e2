"""Real Ray Train runs on CPU: 2 workers, checkpoints, resume, and a soak of killed workers and
an interrupted driver.

Few and small: CI has 2 cores (each run costs ~30 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ssl_ser.job_loader import job_from_dict
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


def _history(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def _events(run: Path) -> list[dict]:
    path = run / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


EPOCHS = 16  # an epoch costs well under a second here; starting a worker group ~15 s


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(ray_cluster, demo_shards, tmp_path_factory) -> tuple[Path, list[dict]]:
    """One uninterrupted 2-worker run, and its metrics as they were when it ended."""
    from tests.conftest import tiny_job

    storage = tmp_path_factory.mktemp("ray-runs")
    run_training(_job(demo_shards, tiny_job, storage, "ddp", epochs=EPOCHS))
    return storage / "ddp", _metrics(storage / "ddp")


def test_two_workers_train_checkpoint_and_a_rerun_resumes_after_the_last_epoch(
        demo_shards, make_tiny_job, uninterrupted: tuple[Path, list[dict]]) -> None:
    run, metrics = uninterrupted
    assert [m["epoch"] for m in metrics] == list(range(1, EPOCHS + 1)) and "valid_ua" in metrics[-1]
    assert 2 <= len(list(run.glob("checkpoint_*/state.pt"))) <= 3  # the best num_to_keep (2) + the latest

    more = run_training(_job(demo_shards, make_tiny_job, run.parent, "ddp", epochs=EPOCHS + 1), resume=True)
    assert more["epoch"] == EPOCHS + 1
    assert _history(run) == list(range(1, EPOCHS + 2))  # the first epochs were not trained again
    assert [e["epoch"] for e in _events(run) if e["event"] == "resumed"] == [EPOCHS]


def _logged_epoch(run: Path) -> int:
    """The last epoch in ``metrics.jsonl`` (rank 0 writes it right after the checkpoint)."""
    try:
        return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"]
    except (OSError, IndexError, ValueError, KeyError):
        return 0


def _registered_epoch(run: Path) -> int:
    """The newest epoch Ray has registered a checkpoint for: a restart resumes from these, not
    from any checkpoint directory that merely exists (Ray registers a little after the report)."""
    try:
        snapshot = json.loads((run / "checkpoint_manager_snapshot.json").read_text())
        names = [c["checkpoint_dir_name"] for c in snapshot.get("checkpoint_results", [])]
        return max([0] + [int(json.loads((run / n / "meta.json").read_text())["epoch"]) for n in names])
    except (OSError, ValueError, KeyError):
        return 0


def _starts(run: Path) -> list[int]:
    """The epoch each start of the loop continued after: 0 for a start from scratch."""
    return [e["epoch"] for e in _events(run) if e["event"] in ("started", "resumed")]


def _wait_until(run: Path, restarts: int, driver: subprocess.Popen, progressed) -> None:
    """Until the loop has restarted ``restarts`` times and ``progressed(epoch it started
    after)`` holds (a start rewrites metrics.jsonl before it writes its event)."""
    deadline = time.time() + 120
    while not (len(_starts(run)) == restarts + 1 and progressed(_starts(run)[-1])
               and _train_worker_pids()):
        assert driver.poll() is None, f"the driver ended (rc {driver.returncode}) too early"
        assert time.time() < deadline, f"no progress after {restarts} restart(s)"
        time.sleep(0.01)


@pytest.mark.slow
def test_soak_two_worker_kills_and_a_driver_interrupt_end_as_the_uninterrupted_run(
        ray_cluster, demo_shards, make_tiny_job, uninterrupted: tuple[Path, list[dict]],
        tmp_path: Path) -> None:
    """A worker SIGKILLed twice at random points (Ray restarts the group from its latest
    registered checkpoint, or from scratch before the first), then the driver interrupted
    (Ctrl-C) and the command run again: the run completes, every epoch is logged once, and its
    metrics are those of the uninterrupted run."""
    import random
    import sys

    import ssl_ser
    from ssl_ser.config import dump_yaml

    rng = random.Random(16)
    job = _job(demo_shards, make_tiny_job, tmp_path, "soak", epochs=EPOCHS, max_failures=2)
    dump_yaml(job, tmp_path / "soak.yaml")
    run = tmp_path / "soak"
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address,
           "PYTHONPATH": os.pathsep.join([str(Path(ssl_ser.__file__).parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}

    def driver(log: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "ssl_ser.cli", "train", str(tmp_path / "soak.yaml")],
                                env=env, stdout=(tmp_path / log).open("w"), stderr=subprocess.STDOUT)

    first = driver("driver-1.log")
    try:
        for restarts in (0, 1):  # 1-3 epochs in: before or after Ray registered a checkpoint
            ahead = rng.randint(1, 3)
            _wait_until(run, restarts, first, lambda start, ahead=ahead: _logged_epoch(run) >= start + ahead)
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(rng.choice(_train_worker_pids()), signal.SIGKILL)
        _wait_until(run, 2, first, lambda start: _registered_epoch(run) > start)
        time.sleep(rng.uniform(0.0, 0.3))
        first.send_signal(signal.SIGINT)
        assert first.wait(60) != 0, "the run ended before the driver was interrupted"
    finally:
        if first.poll() is None:
            first.kill()
    second = driver("driver-2.log")
    assert second.wait(180) == 0, (tmp_path / "driver-2.log").read_text()[-3000:]

    assert len(_starts(run)) == 4 and _starts(run)[-1] >= 1  # the rerun continued a checkpoint
    assert [m["epoch"] for m in _metrics(run)] == list(range(1, EPOCHS + 1))  # each logged once
    assert _metrics(run) == uninterrupted[1]
