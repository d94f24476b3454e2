"""The README's toy method is a complete method: written against the TrainingContext only,
registered by its decorator, validated with the job, trained by the real loop in debug mode."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from ssl_ser.config import ConfigError
from ssl_ser.job_loader import job_from_dict
from ssl_ser.methods import METHODS
from ssl_ser.train.runner import run_local

README = Path(__file__).resolve().parents[1] / "README.md"


def toy_method() -> str:
    match = re.search(r"<!-- toy-method -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md has no toy-method block"
    return match.group(1)


def test_the_readme_toy_method_trains_through_the_loop(demo_shards, make_tiny_job, tmp_path: Path) -> None:
    code = toy_method()
    assert len(code.splitlines()) <= 40 and "ssl_ser.train" not in code
    module = tmp_path / "confidence_penalty.py"  # as a user saves it, a module of its own
    module.write_text(code)
    spec = importlib.util.spec_from_file_location("confidence_penalty", module)
    assert spec is not None and spec.loader is not None
    sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[spec.name])
    assert "confidence_penalty" in METHODS.names()

    job = make_tiny_job(demo_shards, name="toy", method={"name": "confidence_penalty", "beta": 0.2})
    job["storage_path"] = str(tmp_path)
    job["train"] = {**job["train"], "epochs": 2}
    last = run_local(job_from_dict(job), progress=False)
    assert last["epoch"] == 2 and 0.0 <= last["valid_ua"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "toy" / "metrics.jsonl").read_text().splitlines()]
    assert all(row["train_entropy"] > 0 and "train_ce" in row for row in rows)

    job["method"] = {"name": "confidence_penalty", "betta": 0.2}
    with pytest.raises(ConfigError, match="betta"):
        job_from_dict(job)
