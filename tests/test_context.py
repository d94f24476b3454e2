"""The loop and the tests' fake both offer every member of the plug-ins' TrainingContext."""

from __future__ import annotations

import inspect
from pathlib import Path

from ssl_ser.context import TrainingContext
from ssl_ser.job_loader import job_from_dict
from ssl_ser.train.loop import Loop
from ssl_ser.train.session import LocalSession
from tests.fakes import FakeContext


def _members() -> set[str]:
    return {name for name, _ in inspect.getmembers(TrainingContext) if not name.startswith("_")}


def test_the_protocol_is_what_plugins_are_documented_to_get() -> None:
    assert {"job", "labels", "bare_model", "label_space", "set_label_space", "evaluate", "embed", "eval_stream",
            "gather", "refresh_parameters", "reset_optimizer_state", "log", "event", "resumed"} <= _members()


def test_the_loop_and_the_fake_implement_every_member(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    job = job_from_dict({**make_tiny_job(demo_shards), "storage_path": str(tmp_path)})
    loop = Loop(job, LocalSession(tmp_path / "tiny", 1, "valid_ua", "max"), debug=True, progress=False)
    fake = FakeContext()
    for name in sorted(_members()):
        assert hasattr(loop, name), f"Loop lacks TrainingContext.{name}"
        assert hasattr(fake, name), f"tests/fakes.py FakeContext lacks TrainingContext.{name}"
    assert loop.method.ctx is loop and loop.rank == 0 and loop.world_size == 1 and not loop.resumed
