"""Start a training run: on Ray Train (a local or remote cluster) or in one process (``--debug``).

Both run the same :class:`~ssl_ser.train.loop.Loop`. A run is identified by
``storage_path/name``: rerunning the same job continues from its latest checkpoint (Ray
Train V2 restores it for the workers; debug mode reads the same directory).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ssl_ser import checkpoint as ckpt
from ssl_ser.config import ConfigError, dump_yaml, from_dict, to_dict
from ssl_ser.files import is_url
from ssl_ser.job import JobConfig, run_dir
from ssl_ser.train.loop import Loop
from ssl_ser.train.resume import check_resumable, fingerprints_of
from ssl_ser.train.session import LocalSession, RaySession


def debug_job(job: JobConfig) -> JobConfig:
    """What ``--debug`` changes: one worker, no GPU requirement, DataLoader in-process."""
    return dataclasses.replace(job, scaling=dataclasses.replace(job.scaling, num_workers=1))


def score_attribute(job: JobConfig) -> str | None:
    return f"valid_{job.train.metric}" if job.data.valid else None


def preflight(job: JobConfig, resume: bool, force: bool) -> None:
    """Refuse, on the driver, a resume that cannot work (remote storage is checked on the workers)."""
    directory = run_dir(job)
    if directory is None:
        return
    try:
        latest = ckpt.find_checkpoint(directory, "latest")
    except ckpt.CheckpointError:
        latest = None
    if latest is None:
        if resume:
            raise ckpt.CheckpointError(f"--resume: no checkpoint of run {job.name!r} in {directory}")
        return

    check_resumable(ckpt.load_meta(latest), fingerprints_of(job), force, latest)


def save_resolved_config(job: JobConfig) -> None:
    directory = run_dir(job)
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    dump_yaml(job, directory / "config.yaml")


def run_training(job: JobConfig, *, debug: bool = False, resume: bool = False,
                 force: bool = False) -> dict[str, Any]:
    preflight(job, resume, force)
    save_resolved_config(job)
    if debug:
        return run_local(debug_job(job), force=force)
    return run_ray(job, force=force)


def run_local(job: JobConfig, *, force: bool = False, progress: bool = True,
              debug: bool = True) -> dict[str, Any]:
    """The loop in this process with checkpoints in the run directory (``--debug``; with
    ``debug=False`` the job's own data caps and DataLoader workers apply, e.g. for cv folds)."""

    directory = run_dir(job)
    if directory is None:
        raise ckpt.CheckpointError("a run in this process needs a local storage_path")
    scored = score_attribute(job)
    session = LocalSession(directory, job.train.num_to_keep, scored or "train_loss",
                           job.train.metric_mode if scored else "min")
    return Loop(job, session, debug=debug, force=force, progress=progress).run()


def check_resources(job: JobConfig, available: dict[str, float]) -> None:
    """Refuse a job the cluster can never place (Ray would wait for it forever); autoscaling
    clusters that add nodes on demand can set SSL_SER_SKIP_RESOURCE_CHECK=1."""
    if os.environ.get("SSL_SER_SKIP_RESOURCE_CHECK"):
        return
    scaling = job.scaling
    per_worker = dict(scaling.resources_per_worker)
    per_worker.setdefault("CPU", 1.0)
    if scaling.use_gpu:
        per_worker.setdefault("GPU", 1.0)
    for name, amount in per_worker.items():
        need = amount * scaling.num_workers
        if need > available.get(name, 0.0):
            raise ConfigError(
                f"scaling: {scaling.num_workers} worker(s) x {amount:g} {name} = {need:g} {name}, but "
                f"the Ray cluster has {available.get(name, 0.0):g}; lower scaling.num_workers or "
                f"scaling.resources_per_worker{' or set scaling.use_gpu: false' if name == 'GPU' else ''}")


WORKER_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}
"""Ray Train 2.60 re-routes workers' print() through its logger and also tees it to the captured
stdout, so every loop line reached the driver twice; the loop's own lines are logs already."""


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train's entry point on every worker."""

    job = from_dict(JobConfig, config["job"], source="job")
    Loop(job, RaySession(), force=bool(config.get("force"))).run()


def run_ray(job: JobConfig, *, force: bool = False) -> dict[str, Any]:
    # deferred: Ray only where a command runs on Ray (seconds to import)
    import ray
    from ray.train import (  # deferred: Ray only where a command runs on Ray (seconds to import)
        CheckpointConfig,
        FailureConfig,
        RunConfig,
        ScalingConfig,
    )

    # deferred: Ray only where a command runs on Ray (seconds to import)
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=True,
                 runtime_env={"env_vars": WORKER_ENV})
    scaling = job.scaling
    check_resources(job, ray.cluster_resources())
    storage = job.storage_path if is_url(job.storage_path) else str(Path(job.storage_path).resolve())
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": to_dict(job), "force": force},
        scaling_config=ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                     resources_per_worker=scaling.resources_per_worker or None),
        run_config=RunConfig(
            name=job.name, storage_path=storage,
            checkpoint_config=CheckpointConfig(
                num_to_keep=job.train.num_to_keep, checkpoint_score_attribute=score_attribute(job),
                checkpoint_score_order=job.train.metric_mode),
            failure_config=FailureConfig(max_failures=scaling.max_failures)),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    metrics = dict(result.metrics or {})
    if result.checkpoint is not None:
        metrics["checkpoint"] = result.checkpoint.path
    return metrics
