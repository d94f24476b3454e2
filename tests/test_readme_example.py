"""The README's "Using a trained model" example runs as written, on a tiny run built here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    match = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md has no api-example block"
    return match.group(1)


def test_the_readme_example_runs(demo_shards, make_tiny_job, write_audio, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from ssl_ser.job_loader import job_from_dict
    from ssl_ser.train.runner import run_local

    data = make_tiny_job(demo_shards, name="demo", train={"epochs": 1},
                         debug={"max_train_batches": 1, "max_eval_batches": 1, "num_workers": 0})
    data["storage_path"] = str(tmp_path / "demo_out" / "runs")  # where `ssl-ser demo` puts its run
    run_local(job_from_dict(data), progress=False)
    write_audio(tmp_path / "recording.wav", seconds=3.0, rate=44_100, channels=2)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()  # the training's own lines
    code = readme_example()
    assert len(code.strip().splitlines()) <= 12
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    label, _, probs = printed[0].partition(" ")
    assert label in probs and printed[1] == "None"  # this model has no attribute head
    assert [line.split()[:2] for line in printed[2:]] == [["0.0", "2.0"], ["1.0", "3.0"]]
