"""The install cannot drift: pyproject's pins, the lock (constraints.txt), the packages this
environment has, and every install command (README, cluster image and launcher) agree."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_canonical(name)] = version.strip()
    return pins


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_torch_and_torchaudio_are_pinned_exactly_to_the_locked_pair() -> None:
    deps = {_canonical(NAME.match(d)[1]): d for d in _project()["dependencies"]}
    lock = _lock()
    for name in ("torch", "torchaudio"):
        assert re.fullmatch(rf"{name}==[0-9.]+", deps[name].split("#")[0].strip()), deps[name]
        assert deps[name].split("==")[1].strip() == lock[name]


def test_every_dependency_of_every_extra_is_locked() -> None:
    project = _project()
    wanted = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    names = {_canonical(NAME.match(d)[1]) for d in wanted} - {"ssl-ser"}
    missing = sorted(names - set(_lock()))
    assert not missing, f"not in constraints.txt (run .ci/lock): {missing}"


def test_this_environment_is_the_locked_one() -> None:
    """What the README's command installed is what the lock says (catches a lock that no
    longer matches pyproject, or an install that bypassed the lock)."""
    drift = {}
    for name, version in _lock().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # another extra's package (faiss-gpu on a CPU machine)
        if installed != version:
            drift[name] = (installed, version)
    assert not drift, f"installed vs locked: {drift}"


@pytest.mark.parametrize("path, pattern", [
    ("README.md", r"pip install (?!-c constraints\.txt)(?!--dry-run -c)"),
    ("cluster/Dockerfile", r"pip install (?!-c constraints\.txt)(?!--no-deps -c constraints\.txt)"),
    ("cluster/ray-cluster.yaml", r"pip install (?!-c constraints\.txt)"),
    ("cluster/README.md", r"pip install (?!-c constraints\.txt)"),
])
def test_every_install_command_uses_the_lock(path: str, pattern: str) -> None:
    text = (ROOT / path).read_text()
    assert "pip install" in text
    unlocked = [line.strip() for line in text.splitlines() if re.search(pattern, line)]
    assert not unlocked, f"{path}: install without -c constraints.txt: {unlocked}"


def test_the_cluster_image_installs_the_gpu_extra_on_rays_image_of_the_locked_ray() -> None:
    dockerfile = (ROOT / "cluster/Dockerfile").read_text()
    assert f"rayproject/ray:{_lock()['ray']}-py311-gpu" in dockerfile
    assert "ARG EXTRA=gpu" in dockerfile and '".[${EXTRA}]"' in dockerfile
    for manifest in ("rayjob.yaml", "ray-cluster.yaml"):
        assert "cluster/Dockerfile" in (ROOT / "cluster" / manifest).read_text()
