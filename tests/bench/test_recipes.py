"""The experiment recipes under bench/recipes: their scripts parse, refuse to run without
DATA/EXP, write job configs that validate, and their shared helpers (job, split, table) do what
the READMEs say. Nothing here trains."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_ser.config import read_yaml, to_dict
from ssl_ser.data.manifest import Utterance, read_manifest, write_manifest
from ssl_ser.job_loader import job_from_dict

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "bench" / "recipes"
# the stage of each run.sh that writes its job configs
JOB_STAGE = {"ravdess_cv": 3, "urdu_cv": 3, "ravdess_xvector": 4, "ravdess_deepemocluster": 4, "ravdess_daae": 4,
             "ravdess_bank": 4, "ravdess_emobox": 3}


def helper(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", RECIPES / "common" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_sh(recipe: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATA", "EXP")}
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"  # ssl-ser of this Python
    base["PYTHON"] = sys.executable
    return subprocess.run(["bash", str(RECIPES / recipe / "run.sh"), *args], env={**base, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def test_every_recipe_is_listed():
    assert sorted(JOB_STAGE) == sorted(p.parent.name for p in RECIPES.glob("*/run.sh"))


@pytest.mark.parametrize("recipe", sorted(JOB_STAGE))
def test_run_sh_parses_helps_and_needs_data_and_exp(recipe, tmp_path):
    assert subprocess.run(["bash", "-n", str(RECIPES / recipe / "run.sh")], check=False).returncode == 0
    shown = run_sh(recipe, "--help")
    assert shown.returncode == 0 and "Stages:" in shown.stdout
    missing = run_sh(recipe, EXP=str(tmp_path))
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "set DATA" in missing.stderr
    missing = run_sh(recipe, DATA=str(tmp_path))
    assert missing.returncode == 2 and "set EXP" in missing.stderr
    assert run_sh(recipe, "--stages", "1", DATA=str(tmp_path), EXP=str(tmp_path)).returncode == 2


@pytest.mark.parametrize("recipe", sorted(JOB_STAGE))
def test_job_configs_validate(recipe, tmp_path):
    stage = str(JOB_STAGE[recipe])
    done = run_sh(recipe, "--stage", stage, "--stop-stage", stage, DATA=str(tmp_path), EXP=str(tmp_path / "exp"))
    assert done.returncode == 0, done.stderr
    jobs = sorted((tmp_path / "exp" / "jobs").glob("*.yaml"))
    assert jobs
    for path in jobs:
        job = job_from_dict(read_yaml(path), tmp_path / "exp", check_data=False)
        assert job.name == path.stem
        shards = to_dict(job)["data"]["train"]
        assert all(s.startswith(str(tmp_path / "exp")) for s in shards), (path, shards)  # no machine paths


def test_conf_keys_replace_like_set(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("model: {name: a, size: full, dropout: 0.1}\ntrain: {epochs: 5, seed: 0}\n")
    conf = tmp_path / "conf.yaml"
    conf.write_text("model: {name: b, size: tiny}\ntrain.epochs: 2\ndata.train: [shards/x]\n")
    job = helper("job").merge(base, [conf], ["name=x"])
    assert job == {"model": {"name": "b", "size": "tiny"}, "train": {"epochs": 2, "seed": 0},
                   "data": {"train": ["shards/x"]}, "name": "x"}


def test_split_by_speaker_last_and_rest(tmp_path):
    rows = [Utterance(key=f"{s}_{i}", audio=f"/a/{s}_{i}.flac", corpus="c", speaker=s, emotion="sad",
                      labelled=True, duration=1.0, sample_rate=16000)
            for s in ("SM1", "SM10", "SM2", "SM3") for i in range(3)]
    write_manifest(rows, tmp_path / "m.jsonl")
    subprocess.run([sys.executable, str(RECIPES / "common" / "split.py"), str(tmp_path / "m.jsonl"),
                    str(tmp_path / "p"), "--part", "trials=last2", "--part", "train=rest"],
                   check=True, capture_output=True)
    assert {r.speaker for r in read_manifest(tmp_path / "p.trials.jsonl")} == {"SM2", "SM3"}
    assert {r.speaker for r in read_manifest(tmp_path / "p.train.jsonl")} == {"SM1", "SM10"}


def test_seeds_table(tmp_path):
    for run, epoch, valid, ua in [("a_s0", 2, 0.5, 0.4), ("a_s1", 1, 0.7, 0.6), ("b_s0", 1, 0.3, 0.2)]:
        (tmp_path / run / "test").mkdir(parents=True)
        (tmp_path / run / "test" / "metrics.json").write_text(
            json.dumps({"epoch": epoch, "metrics": {"ua": ua, "wa": ua, "macro_f1": ua}}))
        (tmp_path / run / "metrics.jsonl").write_text(
            "".join(json.dumps({"epoch": e, "valid_ua": valid if e == epoch else 0.0}) + "\n" for e in (1, 2)))
    lines = helper("table").seeds_table(tmp_path, [("a", "A"), ("b", "B")], ["ua", "wa", "macro_f1"],
                                        valid=True, per_run=True)
    assert "| a_s0 | 2 | 0.500 | 0.400 | 0.400 | 0.400 |" in lines
    assert "| A | 2 | 0.600 ± 0.141 | 0.500 ± 0.141 | 0.500 ± 0.141 | 0.500 ± 0.141 | 0.400, 0.600 |" in lines
    assert "| B | 1 | 0.300 ± 0.000 | 0.200 ± 0.000 | 0.200 ± 0.000 | 0.200 ± 0.000 | 0.200 |" in lines
