"""Job submission: what is shipped and run (pure), the refusals, and one real local Ray head."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ssl_ser.cli import build_parser, main
from ssl_ser.config import ConfigError
from ssl_ser.distributed import free_port
from ssl_ser.train import submit as sub
from ssl_ser.train.submit import SubmitError

ROOT = Path(__file__).resolve().parents[2]

GOOD_JOB = """\
name: probe run
storage_path: s3://bucket/runs
data:
  train: ["s3://bucket/shards/train/shard-{000000..000009}.tar"]
train: {epochs: 1}
"""


def write_job(path: Path, text: str = GOOD_JOB) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def no_address_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in sub.ADDRESS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class FakeClient:
    """Stands in for JobSubmissionClient: records what would be sent to the cluster."""

    instances: list[FakeClient] = []

    def __init__(self, address: str) -> None:
        self.address = address
        self.env_at_connect = {n: os.environ.get(n) for n in sub.ADDRESS_ENV_VARS}
        self.submitted: dict[str, Any] = {}
        FakeClient.instances.append(self)

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted = kwargs
        return kwargs.get("submission_id") or "raysubmit_fake"


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    import ray.job_submission

    FakeClient.instances = []
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    return FakeClient


# --- what is shipped and run ---------------------------------------------------------------

def test_runtime_env_ships_the_project_and_leaves_runs_shards_and_envs_out(tmp_path: Path) -> None:
    env = sub.build_runtime_env()
    assert Path(env["working_dir"]) == ROOT == sub.project_root()
    assert (ROOT / "pyproject.toml").is_file() and (ROOT / "ssl_ser").is_dir()
    assert env["env_vars"] == {"PYTHONUNBUFFERED": "1"}
    assert "pip" not in env

    custom = sub.build_runtime_env(tmp_path, excludes=["*.wav"], env_vars={"A": "1"}, pip=["x==1"])
    assert custom["working_dir"] == str(tmp_path.resolve())
    assert custom["excludes"][-1] == "*.wav" and custom["env_vars"] == {"PYTHONUNBUFFERED": "1", "A": "1"}
    assert custom["pip"] == ["x==1"]

    # what Ray's own packaging keeps, with our excludes, from a tree in the project's layout
    tree = {"pyproject.toml": "", "ssl_ser/__init__.py": "", "ssl_ser/__pycache__/x.cpython-311.pyc": "",
            "jobs/a.yaml": "", "cluster/README.md": "", "runs/old/checkpoint/model.pt": "",
            "demo_out/x.txt": "", "shards/ravdess/train/shard-000000.tar": "", ".git/HEAD": "",
            ".venv/bin/python": "", "ssl_ser.egg-info/PKG-INFO": "", "notes/rec.wav": ""}
    project = tmp_path / "project"
    for name, text in tree.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    from ray._private.runtime_env.packaging import create_package

    env = sub.build_runtime_env(project, excludes=["*.wav"])
    create_package(env["working_dir"], tmp_path / "pkg.zip", include_gitignore=True,
                   excludes=env["excludes"])
    shipped = {n for n in zipfile.ZipFile(tmp_path / "pkg.zip").namelist() if not n.endswith("/")}
    assert shipped == {"pyproject.toml", "ssl_ser/__init__.py", "jobs/a.yaml", "cluster/README.md"}


def test_entrypoint_runs_train_on_the_job_path_relative_to_the_working_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = write_job(tmp_path / "jobs" / "x.yaml")
    overrides = ["data.train=[s3://b/shard-{000..009}.tar]", "name=my run", "model.note=it's"]
    command = sub.build_entrypoint(job, overrides, working_dir=tmp_path, resume=True, force=True)
    assert shlex.split(command) == ["python", "-m", "ssl_ser", "train", "jobs/x.yaml",
                                    "--set", overrides[0], "--set", overrides[1], "--set", overrides[2],
                                    "--resume", "--force"]
    assert "'name=my run'" in command  # quoted for the shell that runs it
    # the command is one `ssl-ser train` accepts
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert args.command == "train" and args.overrides == overrides and args.resume

    monkeypatch.chdir(tmp_path / "jobs")  # a relative job path is relative to the current dir
    assert shlex.split(sub.build_entrypoint("x.yaml", working_dir=tmp_path))[4] == "jobs/x.yaml"


def test_a_job_outside_the_working_dir_or_missing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    write_job(tmp_path / "elsewhere" / "x.yaml")
    escaping = tmp_path / "project" / ".." / "elsewhere" / "x.yaml"
    with pytest.raises(SubmitError, match=r"x\.yaml lies outside the working directory .*project"):
        sub.build_entrypoint(escaping, working_dir=tmp_path / "project")
    with pytest.raises(SubmitError, match="job file not found: .*nope.yaml"):
        sub.build_entrypoint(tmp_path / "project" / "nope.yaml", working_dir=tmp_path / "project")
    with pytest.raises(SubmitError, match="working directory not found"):
        sub.build_runtime_env(tmp_path / "missing")


# --- refusals before anything is sent ----------------------------------------------------------

def test_a_bad_config_is_refused_before_connecting_with_the_key_named(
        tmp_path: Path, fake_client: type[FakeClient]) -> None:
    job = write_job(tmp_path / "jobs" / "bad.yaml", GOOD_JOB.replace("train: {epochs: 1}",
                                                                      "train: {epocs: 1}"))
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epocs' \(did you mean 'epochs'\?\)"):
        sub.submit(job, "http://127.0.0.1:1", working_dir=tmp_path, check_data=False)
    good = write_job(tmp_path / "jobs" / "good.yaml")
    with pytest.raises(ConfigError, match=r"optim\.lr"):  # --set overrides are checked too
        sub.submit(good, "http://127.0.0.1:1", ["optim.lr=fast"], working_dir=tmp_path,
                   check_data=False)
    assert fake_client.instances == []


def test_paths_the_cluster_cannot_see_are_refused_and_relative_storage_warned(tmp_path: Path) -> None:
    job = write_job(tmp_path / "x.yaml")
    assert sub.check_cluster_paths(job) == []
    with pytest.raises(ConfigError, match=r"data\.valid: 'shards/valid' is a relative path"):
        sub.check_cluster_paths(job, ["data.valid=[/mnt/shared/v, shards/valid]"])
    with pytest.raises(ConfigError, match=r"train\.init_from: 'runs/pre'"):
        sub.check_cluster_paths(job, ["train.init_from=runs/pre"])
    assert sub.check_cluster_paths(job, ["data.test=[pipe:aws s3 cp s3://b/t.tar -]"]) == []
    warnings = sub.check_cluster_paths(job, ["storage_path=runs"])
    assert len(warnings) == 1 and "storage_path 'runs' is relative" in warnings[0]


def test_submit_sends_the_train_command_runtime_env_and_metadata(
        tmp_path: Path, fake_client: type[FakeClient], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    job = write_job(tmp_path / "jobs" / "x.yaml")
    monkeypatch.setenv("RAY_ADDRESS", "http://other:8265")  # --address wins over the environment
    job_id = sub.submit(job, "http://head:8265/", ["train.epochs=3"], working_dir=tmp_path,
                        check_data=False, env_vars={"HF_HOME": "/mnt/cache"}, submission_id="ser-1")
    client, = fake_client.instances
    assert job_id == "ser-1" and client.address == "http://head:8265"
    assert client.env_at_connect == {"RAY_API_SERVER_ADDRESS": None, "RAY_ADDRESS": None}
    assert os.environ["RAY_ADDRESS"] == "http://other:8265"  # restored
    sent = client.submitted
    assert sent["entrypoint"] == "python -m ssl_ser train jobs/x.yaml --set train.epochs=3"
    assert sent["runtime_env"]["working_dir"] == str(tmp_path.resolve())
    assert sent["runtime_env"]["env_vars"]["HF_HOME"] == "/mnt/cache"
    assert sent["metadata"]["ssl_ser.name"] == "probe run"
    assert sent["metadata"]["ssl_ser.job"] == "jobs/x.yaml" and sent["submission_id"] == "ser-1"
    out = capsys.readouterr().out
    assert "as job ser-1" in out
    assert "ssl-ser jobs logs ser-1 --follow --address http://head:8265" in out
    assert "http://head:8265/#/jobs/ser-1" in out

    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setenv("RAY_ADDRESS", "http://from-env:8265")
    sub.submit(job, None, working_dir=tmp_path, check_data=False, echo=None)
    assert fake_client.instances[-1].address == "http://from-env:8265"


def test_no_address_or_an_unreachable_one_is_one_clear_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SubmitError, match="no Ray cluster address: pass --address"):
        sub.resolve_address(None)
    port = free_port()  # a loopback port nobody listens on
    assert main(["jobs", "status", "raysubmit_x", "--address", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ssl-ser jobs: error: cannot reach a Ray cluster at http://127.0.0.1:")
    assert "\n" not in err and "Traceback" not in err
    job = write_job(tmp_path / "jobs" / "x.yaml")
    assert main(["submit", str(job), "--working-dir", str(tmp_path), "--no-check-data",
                 "--address", f"http://127.0.0.1:{port}"]) == 2
    assert "cannot reach a Ray cluster" in capsys.readouterr().err


# --- cluster configs -----------------------------------------------------------------------------

def test_cluster_configs_run_the_same_train_command_on_gpu_workers() -> None:
    rayjob = yaml.safe_load((ROOT / "cluster" / "rayjob.yaml").read_text())
    assert rayjob["kind"] == "RayJob" and rayjob["apiVersion"] == "ray.io/v1"
    command = shlex.split(rayjob["spec"]["entrypoint"])
    assert command[:3] == ["python", "-m", "ssl_ser"]
    args = build_parser().parse_args(command[3:])
    assert args.command == "train" and args.job.startswith("jobs/") and args.job.endswith(".yaml")
    assert any(o.startswith("storage_path=/mnt/shared") for o in args.overrides)
    runtime_env = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])
    assert set(runtime_env["excludes"]) <= set(sub.DEFAULT_EXCLUDES)
    cluster = rayjob["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert any(m["mountPath"] == "/mnt/shared" for m in head["containers"][0]["volumeMounts"])
    worker, = cluster["workerGroupSpecs"]
    limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) >= 1

    launcher = yaml.safe_load((ROOT / "cluster" / "ray-cluster.yaml").read_text())
    types = launcher["available_node_types"]
    assert launcher["head_node_type"] in types
    assert any(t["resources"].get("GPU", 0) >= 1 and t["max_workers"] >= 1 for t in types.values())
    assert any("pip install -c constraints.txt -e '.[gpu]'" in c for c in launcher["setup_commands"])
    readme = (ROOT / "cluster" / "README.md").read_text()
    for topic in ("shared storage", "storage_path", "s3://", "pipe:", "faiss-gpu", "bf16", "resume"):
        assert topic in readme.lower() or topic in readme


# --- one real Ray head on loopback ---------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A one-CPU Ray head with the dashboard (Jobs API) on loopback, started and stopped by
    this fixture alone: `ray stop` would stop every Ray on the machine, so the head runs with
    --block in its own process group, with its own temp dir, and only that group is ended."""
    ray_cli = Path(sys.executable).parent / "ray"
    if not ray_cli.exists():
        pytest.skip("the ray command line is not installed beside this Python")
    temp = tempfile.mkdtemp(prefix="sslray", dir="/tmp")  # short: Ray's socket paths have a limit
    dashboard = free_port()
    env = {k: v for k, v in os.environ.items() if k not in sub.ADDRESS_ENV_VARS}
    env["PATH"] = f"{ray_cli.parent}{os.pathsep}{env.get('PATH', '')}"  # jobs' `python` is ours
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"  # stop at once on SIGTERM
    # Ray 2.60 turns token auth on for a new head when ~/.ray/auth_token exists (any earlier
    # local ray.init writes one); this plain-HTTP probe and head are the unauthenticated case
    env["RAY_AUTH_MODE"] = "disabled"
    command = [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
               f"--port={free_port()}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
               f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
               "--num-cpus=1", "--num-gpus=0", "--include-dashboard=true", "--disable-usage-stats",
               f"--temp-dir={temp}"]
    log = open(Path(temp) / "start.log", "w")
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/version", timeout=1).read()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Ray head did not start:\n{(Path(temp) / 'start.log').read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        head.terminate()  # `ray start --block` ends the processes it started
        try:
            head.wait(15)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):  # then whatever is left in its group
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        head.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


PROBE = ("import os, ssl_ser; from ssl_ser.job_loader import load_job; "
         "job = load_job('jobs/probe.yaml', check_data=False); "
         "print('PROBE', job.name, ssl_ser.__file__, os.path.exists('runs'), "
         "os.path.exists('shards/s/shard-000000.tar'), os.environ['PYTHONUNBUFFERED'])")


def _wait(client: Any, job_id: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = sub.job_status(client, job_id)["status"]
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {seconds} s: {sub.job_logs(client, job_id)}")


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_submit_to_a_local_ray_head_ships_the_project_and_jobs_commands_work(
        ray_head: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a copy of the checkout, with run outputs and shards that must not be uploaded
    project = tmp_path / "project"
    shutil.copytree(ROOT / "ssl_ser", project / "ssl_ser", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", project)
    write_job(project / "jobs" / "probe.yaml")
    write_job(project / "runs" / "old" / "config.yaml")
    write_job(project / "shards" / "s" / "shard-000000.tar", "not a shard")

    job_id = sub.submit(project / "jobs" / "probe.yaml", ray_head, working_dir=project,
                        check_data=False, entrypoint=f"python -c {shlex.quote(PROBE)}")
    assert f"as job {job_id}" in capsys.readouterr().out
    # a second job, to be stopped while it runs (entrypoints need no CPU: both run at once)
    sleeper = sub.submit(project / "jobs" / "probe.yaml", ray_head, working_dir=project,
                         check_data=False, entrypoint="echo started; sleep 30", echo=None)
    client = sub.connect(ray_head)
    deadline = time.monotonic() + 30
    while "started" not in sub.job_logs(client, sleeper) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert main(["jobs", "stop", sleeper, "--wait", "20", "--address", ray_head]) == 0
    assert f"job {sleeper} STOPPED" in capsys.readouterr().out

    assert _wait(client, job_id, 60) == "SUCCEEDED"
    probe = next(line for line in sub.job_logs(client, job_id).splitlines() if line.startswith("PROBE"))
    _, name, path, has_runs, has_shard, unbuffered = probe.rsplit(" ", 5)
    assert probe.startswith("PROBE probe run ")
    assert "working_dir_files" in path and not path.startswith(str(project)), path  # the uploaded copy
    assert (has_runs, has_shard, unbuffered) == ("False", "False", "1")

    assert main(["jobs", "status", job_id, "--address", ray_head]) == 0
    out = capsys.readouterr().out
    assert f"{job_id}: SUCCEEDED" in out and "ssl_ser.name: probe run" in out
    assert main(["jobs", "logs", job_id, "--follow", "--address", ray_head]) == 0
    assert probe in capsys.readouterr().out
    assert main(["jobs", "stop", job_id, "--address", ray_head]) == 0
    assert "already ended: SUCCEEDED" in capsys.readouterr().out

    assert main(["jobs", "list", "--address", ray_head]) == 0
    listed = capsys.readouterr().out
    assert job_id in listed and sleeper in listed and "probe run" in listed
    assert main(["jobs", "status", "raysubmit_nope", "--address", ray_head]) == 2
    assert "no job 'raysubmit_nope'" in capsys.readouterr().err
