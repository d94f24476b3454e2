"""bench/gpu_check.sh on a machine without a GPU (CI's): one clear line, exit 77, nothing
measured; and the script's pure helpers on fabricated input (table, nvidia-smi lines, busy
windows, loader waits, the part runner's failure and timeout rows). The GPU parts themselves
run only on a GPU machine (bench/README.md, "GPU check")."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from tests.bench.scripts import ROOT, load_script

SCRIPT = ROOT / "bench" / "perf" / "gpu_check.py"
LINE = "gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing measured"

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run")


gc = load_script(SCRIPT, "bench_gpu_check")


def run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "OUT"}
    base.update(PYTHON=sys.executable, PYTHONPATH=str(ROOT), GPU_CHECK_WHEELS=str(ROOT / "no-such-wheels"))
    return subprocess.run(cmd, env={**base, **env}, capture_output=True, text=True, timeout=60, check=False)


@no_gpu
@pytest.mark.parametrize("entry", ["sh", "py"])
def test_without_a_gpu_one_line_and_exit_77(entry, tmp_path):
    out = tmp_path / "out"
    cmd = (["bash", str(ROOT / "bench" / "gpu_check.sh")] if entry == "sh" else [sys.executable, str(SCRIPT)])
    result = run(cmd, OUT=str(out))
    assert result.returncode == gc.NO_GPU_EXIT == 77, result.stderr
    assert result.stdout.splitlines() == [LINE]
    assert not out.exists()  # nothing measured, nothing written


def test_no_nvidia_smi_is_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gc.no_gpu_reason(("no-such-nvidia-smi",)) == "no-such-nvidia-smi is not on PATH"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gc.no_gpu_reason() == "torch.cuda.is_available() is False"


def test_table_lines_up_and_escapes():
    rows = [gc.Row("k-means K = 4096", "4.20 s", "<= 5 s", "pass", "a|b"), gc.Row("ddp", "not run")]
    lines = gc.format_table(rows).splitlines()
    assert lines[0].split("|")[1:-1] == [" what             ", " value   ", " goal   ", " result ", " note "]
    assert set(lines[1]) == {"|", "-"}
    assert len({len(line) for line in lines}) == 1
    assert "a/b" in lines[2] and lines[3].split("|")[4].strip() == "na"


def test_judge():
    assert gc.judge(4.2, 5.0, higher_is_better=False) == "pass"
    assert gc.judge(5.1, 5.0, higher_is_better=False) == "miss"
    assert gc.judge(90.0, 90.0, higher_is_better=True) == "pass"
    assert gc.judge(89.0, 90.0, higher_is_better=True) == "miss"


@pytest.mark.parametrize("line, value", [("57\n", 57), (" 0 ", 0), ("100 %", 100), ("[N/A]", None),
                                         ("", None), ("utilization.gpu [%]", None), ("-1", None)])
def test_parse_utilization(line, value):
    assert gc.parse_utilization(line) == value


def test_busy_percent_and_loader_waits():
    samples = [(0.0, 0), (1.0, 100), (2.0, 80), (3.0, 60), (9.0, 0)]
    assert gc.busy_percent(samples, 1.0, 3.0) == (80.0, 3)
    assert gc.busy_percent(samples, 4.0, 5.0) == (None, 0)
    assert gc.loader_waits([0.0, 1.5, 3.0], [1.0, 2.0, 3.5]) == [0.5, 1.0]
    assert gc.loader_waits([0.0], [1.0]) == []


def test_epoch_rows_from_fabricated_marks():
    marks = {"epoch_start": [0.0, 10.0], "train_start": [1.0, 12.0], "train_end": [8.0, 16.0],
             "epoch_end": [9.0, 18.0], "enters": [[1.5], [12.5, 13.6, 14.7]], "exits": [[2.0], [13.5, 14.6, 15.7]]}
    samples = [(11.0, 50), (13.0, 95), (15.0, 93), (17.0, 10)]
    history = [{"pre_kmeans_gpu": 1.0, "pre_embed_time_s": 1.5, "pre_kmeans_time_s": 0.25}]
    rows = gc.epoch_rows(marks, samples, history, batch=64, demo_s=20.0, smoke=False)
    whole, train, wait, phases = rows
    assert (whole.value, whole.result) == ("62%", "miss")
    assert (train.value, train.result) == ("94%", "pass")
    assert wait.value == "100.0 ms median" and "first batch after 0.50 s" in wait.note
    assert phases.value == "8.0 s"
    assert "re-cluster 2.0 s (embedding 1.5 s, k-means 0.25 s on the GPU), train 4.0 s (3 steps of 64)" in phases.note


def test_utilization_sampler_reads_a_fake_nvidia_smi(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho \"$*\" > \"$(dirname \"$0\")/args\"\n"
                    "for v in 10 '[N/A]' 90; do echo \"$v\"; sleep 0.05; done\nsleep 30\n")
    fake.chmod(0o755)
    sampler = gc.UtilizationSampler("3", interval_ms=50, command=[str(fake)])
    deadline = time.monotonic() + 10
    while len(sampler.samples) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = sampler.stop()  # terminates the endless fake
    assert [v for _, v in samples] == [10, 90]
    assert (tmp_path / "args").read_text().split() == [
        "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "50", "-i", "3"]


def test_plan():
    assert gc.plan(None)[0] == "kmeans" and gc.plan(None)[-1] == "ddp" and len(gc.plan(None)) == 8
    assert gc.plan("throughput:daae,ddp") == ["throughput:daae", "ddp"]
    assert gc.plan("throughput") == [f"throughput:{m}" for m in gc.RECIPES]


def test_recipes_name_their_models():
    from ssl_ser.config import read_yaml

    for model, recipe in gc.RECIPES.items():
        assert read_yaml(ROOT / recipe)["model"]["name"] == model


def test_a_failing_and_a_hanging_part_give_rows(tmp_path):
    rows = tmp_path / "rows.jsonl"
    with open(tmp_path / "log", "w") as log:
        outcome, last = gc.spawn_part("bogus", 30, rows, log, smoke=False)
        assert outcome == "exit 1" and last == "unknown part 'bogus'"
        start = time.monotonic()
        outcome, _ = gc.spawn_part("sleep:30", 1, rows, log, smoke=False)
        assert outcome == "timeout" and time.monotonic() - start < 10
    assert "===== sleep:30 (limit 1 s) =====" in (tmp_path / "log").read_text()
    assert not rows.exists()  # neither part measured anything
