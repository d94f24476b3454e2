"""Submit a training job to a Ray cluster through the Ray Jobs API, and follow or stop it.

A submitted job runs the command one would type on the head node,
``python -m ssl_ser train jobs/x.yaml --set ...``, in an uploaded copy of the project (Ray's
``working_dir``), so the cluster runs the code and job file the user has, while the cluster
image only needs the dependencies. The job is validated here first: a config error is refused
before anything is uploaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssl_ser import __version__
from ssl_ser.config import ConfigError, apply_overrides, read_yaml
from ssl_ser.errors import SslSerError
from ssl_ser.files import is_url
from ssl_ser.job_loader import load_job

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

log = logging.getLogger(__name__)

#: Left out of the upload (gitignore syntax, relative to the working dir): run outputs,
#: environments, VCS data and shard sets, which reach the cluster through shared storage.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git/", ".venv/", "venv/", "__pycache__/", "*.pyc", "*.egg-info/", ".pytest_cache/",
    "build/", "dist/", "/runs/", "/demo_out/", "/.whl/", "/.gl/", "*.tar", "*.tmp",
)

#: Unbuffered output, so ``ssl-ser jobs logs --follow`` shows progress as it happens.
DEFAULT_ENV_VARS: dict[str, str] = {"PYTHONUNBUFFERED": "1"}

#: Where ``--address`` comes from when it is not given, in Ray's own order.
ADDRESS_ENV_VARS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


class SubmitError(SslSerError):
    """A job that cannot be submitted or controlled: no address, unreachable cluster, unknown job."""


# --- what is shipped and run ---------------------------------------------------------------

def _is_checkout(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "ssl_ser" / "__init__.py").is_file()


def project_root() -> Path:
    """The project checkout (the directory holding ``pyproject.toml`` and ``ssl_ser/``) that a
    submitted job uploads by default: the one this package runs from (an editable install),
    else the current directory or one above it."""
    installed = Path(__file__).resolve().parents[2]
    cwd = Path.cwd().resolve()
    for candidate in (installed, cwd, *cwd.parents):
        if _is_checkout(candidate):
            return candidate
    raise SubmitError(f"no ssl-ser checkout (pyproject.toml beside ssl_ser/) at {installed} or "
                      f"around {cwd}: run from the project, or pass --working-dir")


def _working_dir(working_dir: str | Path | None) -> Path:
    if working_dir is None:
        return project_root()
    path = Path(working_dir).expanduser().resolve()
    if not path.is_dir():
        raise SubmitError(f"working directory not found: {working_dir}")
    return path


def build_runtime_env(working_dir: str | Path | None = None, *, excludes: Sequence[str] = (),
                      env_vars: Mapping[str, str] | None = None,
                      pip: Sequence[str] | None = None) -> dict[str, Any]:
    """The Ray runtime environment of a submitted job.

    ``excludes`` add to :data:`DEFAULT_EXCLUDES`; ``env_vars`` add to (or replace)
    :data:`DEFAULT_ENV_VARS`; ``pip`` installs extra requirements per job (slow: the cluster
    image is expected to hold the dependencies already).
    """
    env: dict[str, Any] = {
        "working_dir": str(_working_dir(working_dir)),
        "excludes": list(dict.fromkeys([*DEFAULT_EXCLUDES, *excludes])),
        "env_vars": {**DEFAULT_ENV_VARS, **dict(env_vars or {})},
    }
    if pip:
        env["pip"] = list(pip)
    return env


def job_path_in(job_path: str | Path, working_dir: str | Path | None = None) -> str:
    """The job file's path relative to the working dir (the job's current directory on the
    cluster); only files inside the working dir are uploaded."""
    root = _working_dir(working_dir)
    path = Path(job_path).expanduser().resolve()
    if not path.is_file():
        raise SubmitError(f"job file not found: {job_path}")
    if not path.is_relative_to(root):
        raise SubmitError(f"job file {job_path} lies outside the working directory {root}, and "
                          f"only the working directory is uploaded to the cluster: move the job "
                          f"file into it or pass --working-dir")
    return path.relative_to(root).as_posix()


def build_entrypoint(job_path: str | Path, overrides: Sequence[str] = (), *,
                     working_dir: str | Path | None = None, resume: bool = False,
                     force: bool = False, python: str = "python") -> str:
    """The shell command the cluster runs: ``python -m ssl_ser train JOB [--set k=v]...``.

    ``python -m`` rather than the ``ssl-ser`` script so that the uploaded package (first on
    ``sys.path``, as the job's current directory) runs, not one installed in the image.
    """
    args = [python, "-m", "ssl_ser", "train", job_path_in(job_path, working_dir)]
    for item in overrides:
        args += ["--set", item]
    if resume:
        args.append("--resume")
    if force:
        args.append("--force")
    return shlex.join(args)



def check_cluster_paths(job_path: str | Path, overrides: Sequence[str] = ()) -> list[str]:
    """Refuse paths that cannot work on the cluster; return warnings for doubtful ones.

    A relative path resolves, on the cluster, inside the job's uploaded copy of the working
    dir, which holds no shard sets (``*.tar``) or runs: shard sets and ``init_from`` must be
    absolute (shared filesystem) or URLs. A relative ``storage_path`` still runs, but its
    checkpoints stay in that temporary copy, so a resubmission cannot resume.
    """
    raw = apply_overrides(read_yaml(job_path), overrides)
    data = raw.get("data") or {}
    for section in ("train", "unlabelled", "valid", "test"):
        for spec in data.get(section) or []:
            if isinstance(spec, str) and not is_url(spec) and not Path(spec).is_absolute():
                raise ConfigError(
                    f"data.{section}: {spec!r} is a relative path, but a submitted job runs in an "
                    f"uploaded copy of the working directory without shard sets (*.tar); give "
                    f"the path the cluster sees (shared filesystem) or an object-store URL, e.g. "
                    f"--set 'data.{section}=[s3://bucket/shards/shard-{{000000..000099}}.tar]'")
    init_from = (raw.get("train") or {}).get("init_from")
    if isinstance(init_from, str) and not is_url(init_from) and not Path(init_from).is_absolute():
        raise ConfigError(f"train.init_from: {init_from!r} is a relative path, which the cluster "
                          f"cannot see (runs are not uploaded); give a shared or s3:// path")
    storage = raw.get("storage_path", "runs")
    warnings = []
    if isinstance(storage, str) and not is_url(storage) and not Path(storage).is_absolute():
        warnings.append(
            f"storage_path {storage!r} is relative: on the cluster it lies in the job's temporary "
            f"copy of the working directory, so the checkpoints are not kept and resubmitting "
            f"will not resume; use shared storage, e.g. --set storage_path=s3://bucket/runs")
    return warnings


# --- talking to the cluster ------------------------------------------------------------------

def resolve_address(address: str | None) -> str:
    """``--address``, else ``RAY_API_SERVER_ADDRESS``/``RAY_ADDRESS``, else an error."""
    for candidate in (address, *(os.environ.get(name) for name in ADDRESS_ENV_VARS)):
        if candidate and candidate.strip():
            return candidate.strip().rstrip("/")
    raise SubmitError("no Ray cluster address: pass --address http://HEAD:8265 (the head "
                      "node's dashboard) or set RAY_ADDRESS")


@contextlib.contextmanager
def _without_address_env() -> Iterator[None]:
    # JobSubmissionClient lets these variables override an explicit address; ours must win.
    saved = {name: os.environ.pop(name) for name in ADDRESS_ENV_VARS if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def connect(address: str | None) -> JobSubmissionClient:
    """A Jobs API client for the cluster, or a :class:`SubmitError` if it cannot be reached."""
    address = resolve_address(address)
    # deferred: Ray only where a command runs on Ray (seconds to import)
    from ray.exceptions import RayError
    from ray.job_submission import JobSubmissionClient

    try:
        with _without_address_env():
            return JobSubmissionClient(address)
    except ConnectionError:
        raise SubmitError(f"cannot reach a Ray cluster at {address}: is it up, and is this the "
                          f"head node's dashboard address (e.g. http://HEAD:8265)?") from None
    except (RayError, ValueError, RuntimeError) as err:
        raise SubmitError(f"cannot use the Ray cluster at {address}: {err} (the Jobs API "
                          f"address is the head node's dashboard, e.g. http://HEAD:8265)") from None


def _call(what: str, fn: Callable[[], Any], job_id: str | None = None) -> Any:
    """Run a Jobs API call, turning its HTTP and connection failures into one-line errors."""
    from aiohttp import (  # deferred: only when talking to a Ray dashboard
        ClientError,  # log streaming; HTTP calls raise OSErrors (requests)
    )

    try:
        return fn()
    except (OSError, ClientError) as err:
        raise SubmitError(f"{what}: lost the connection to the cluster: {err}") from None
    except RuntimeError as err:
        if job_id is not None and ("404" in str(err) or "does not exist" in str(err)):
            raise SubmitError(f"no job {job_id!r} on this cluster "
                              f"(`ssl-ser jobs list` shows its jobs)") from None
        raise SubmitError(f"{what}: {err}") from None


def follow_up(job_id: str, address: str) -> list[str]:
    """The commands that follow a submitted job (printed after submission)."""
    where = f" --address {shlex.quote(address)}"
    lines = [f"  follow:    ssl-ser jobs logs {job_id} --follow{where}",
             f"  status:    ssl-ser jobs status {job_id}{where}",
             f"  stop:      ssl-ser jobs stop {job_id}{where}"]
    if address.startswith(("http://", "https://")):
        lines.append(f"  dashboard: {address}/#/jobs/{job_id}")
    return lines


def submit(job_path: str | Path, address: str | None = None, overrides: Sequence[str] = (), *,
           working_dir: str | Path | None = None, resume: bool = False, force: bool = False,
           check_data: bool = True, submission_id: str | None = None,
           excludes: Sequence[str] = (), env_vars: Mapping[str, str] | None = None,
           pip: Sequence[str] | None = None, entrypoint: str | None = None,
           echo: Callable[[str], None] | None = print) -> str:
    """Validate ``job_path`` here, then submit it to the cluster; returns the job id.

    ``check_data=False`` skips the check that the shard sets exist (they may live only on the
    cluster). ``entrypoint`` replaces the ``train`` command (a custom script; tests).
    ``echo`` prints the job id and follow-up commands (None: silent).
    """

    address = resolve_address(address)
    root = _working_dir(working_dir)
    relative_job = job_path_in(job_path, root)
    job = load_job(job_path, list(overrides), check_data=check_data)
    for warning in check_cluster_paths(job_path, overrides):
        log.warning("warning: %s", warning)
    command = entrypoint or build_entrypoint(job_path, overrides, working_dir=root,
                                             resume=resume, force=force)
    runtime_env = build_runtime_env(root, excludes=excludes, env_vars=env_vars, pip=pip)
    metadata = {"ssl_ser.job": relative_job, "ssl_ser.name": job.name,
                "ssl_ser.overrides": shlex.join(overrides), "ssl_ser.version": __version__}
    client = connect(address)
    try:
        job_id = client.submit_job(entrypoint=command, runtime_env=runtime_env,
                                   submission_id=submission_id, metadata=metadata)
    except (OSError, RuntimeError, ValueError) as err:
        raise SubmitError(f"submitting {relative_job} to {address} failed: {err}") from None
    if echo is not None:
        echo(f"[ssl-ser] submitted {relative_job} (run {job.name!r}) as job {job_id}")
        for line in follow_up(job_id, address):
            echo(line)
    return job_id


# --- job control -------------------------------------------------------------------------------

def job_status(client: JobSubmissionClient, job_id: str) -> dict[str, Any]:
    """Status, message, entrypoint, times and metadata of a job."""
    info = _call(f"status of {job_id}", lambda: client.get_job_info(job_id), job_id)
    return {"job_id": job_id, "status": str(info.status.value), "message": info.message or "",
            "entrypoint": info.entrypoint, "start_time": info.start_time,
            "end_time": info.end_time, "metadata": dict(info.metadata or {})}


def job_logs(client: JobSubmissionClient, job_id: str) -> str:
    return _call(f"logs of {job_id}", lambda: client.get_job_logs(job_id), job_id)


def follow_logs(client: JobSubmissionClient, job_id: str, out: Callable[[str], None]) -> str:
    """Stream the logs until the job ends; returns its final status."""
    job_status(client, job_id)  # a clear error for an unknown id before streaming

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out(chunk)

    _call(f"logs of {job_id}", lambda: asyncio.run(tail()), job_id)
    return job_status(client, job_id)["status"]


def stop_job(client: JobSubmissionClient, job_id: str) -> bool:
    """Ask the cluster to stop a job; False if it had already ended."""
    return bool(_call(f"stop {job_id}", lambda: client.stop_job(job_id), job_id))


def list_jobs(client: JobSubmissionClient) -> list[dict[str, Any]]:
    """Every job the cluster knows, oldest first."""
    jobs = _call("list jobs", client.list_jobs)
    rows = [{"job_id": j.submission_id or j.job_id or "", "status": str(j.status.value),
             "start_time": j.start_time or 0, "name": (j.metadata or {}).get("ssl_ser.name", ""),
             "entrypoint": j.entrypoint} for j in jobs]
    return sorted(rows, key=lambda r: r["start_time"])
