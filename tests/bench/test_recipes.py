"""The experiment recipes under bench/recipes: their scripts parse, refuse to run without
DATA/EXP, write job configs that validate, and their shared helpers (job, split, table, paired,
hidden_folds) do what
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
from ssl_ser.folds import load_fold_list
from ssl_ser.job_loader import job_from_dict

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "bench" / "recipes"
# the stage of each run.sh that writes its job configs
JOB_STAGE = {"ravdess_cv": 3, "urdu_cv": 3, "ravdess_xvector": 4, "ravdess_deepemocluster": 4, "ravdess_daae": 4,
             "ravdess_bank": 4, "ravdess_emobox": 3, "ravdess_semi": 3}


def helper(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", RECIPES / "common" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
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


def test_cv_table_of_a_directory_without_results_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(RECIPES / "common" / "table.py"), "cv", "--row", "x", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "no cv_results.json" in done.stderr


def test_paired_tests_are_exact():
    paired = helper("paired")
    assert paired.sign_test(5, 1) == pytest.approx(14 / 64)  # 2 * (1 + 6) / 64
    assert paired.sign_test(6, 0) == pytest.approx(2 / 64)
    # all six differences positive: the most extreme of 64 sign patterns, two-sided
    assert paired.wilcoxon([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]) == pytest.approx(2 / 64)
    # ranks 1..6, the smallest one negative: W+ = 20, |20 - 10.5| reached by 4 patterns of 64
    assert paired.wilcoxon([-0.01, 0.02, 0.03, 0.04, 0.05, 0.06]) == pytest.approx(4 / 64)
    assert paired.ranks([3.0, 1.0, 3.0]) == [2.5, 1.0, 2.5]
    result = paired.compare([0.5, 0.4, 0.45], [0.4, 0.41, 0.4])
    assert (result.wins, result.losses, result.n) == (2, 1, 3)
    assert result.mean_diff == pytest.approx(0.14 / 3)


def test_hidden_folds_take_the_cv_plans_validation_actors(tmp_path):
    emotions = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
    rows = [Utterance(key=f"ravdess-{s:02d}-{i}", audio=f"/a/{s}_{i}.flac", corpus="ravdess", speaker=f"{s:02d}",
                      emotion=emotions[i % 8], labelled=True, duration=1.0, sample_rate=16000)
            for s in range(1, 25) for i in range(10)]
    write_manifest(rows, tmp_path / "m.jsonl")
    # valid groups per fold as `ssl-ser cv` names them (corpus-speaker), fold 1 first
    folds = load_fold_list("ravdess_emobox").folds
    others = [[f"ravdess-{s:02d}" for s in range(1, 25) if f"{s:02d}" not in test][:2] for test in folds[1:]]
    plan = {"folds": [{"valid": ["ravdess-08", "ravdess-12"]}] + [{"valid": v} for v in others]}
    (tmp_path / "folds.json").write_text(json.dumps(plan))
    subprocess.run([sys.executable, str(RECIPES / "common" / "hidden_folds.py"), str(tmp_path / "m.jsonl"),
                    str(tmp_path / "fold"), "--keep", "0.2", "--valid-from", str(tmp_path / "folds.json")],
                   check=True, capture_output=True)
    parts = {p: read_manifest(tmp_path / f"fold1.{p}.jsonl") for p in ("labelled", "unlabelled", "valid", "test")}
    assert {r.speaker for r in parts["valid"]} == {"08", "12"}
    assert {r.speaker for r in parts["test"]} == {"01", "11", "20", "21"}  # EmoBox fold 1
    train = parts["labelled"] + parts["unlabelled"]
    assert len(train) == 18 * 10 and not {r.speaker for r in train} & {"08", "12", "01", "11", "20", "21"}
    assert 0.15 < len(parts["labelled"]) / len(train) < 0.25 and not any(r.labelled for r in parts["unlabelled"])
    assert all(r.extra["hidden_emotion"] for r in parts["unlabelled"])
    # a plan whose validation actors are test actors of the fold: one line, no manifests
    bad = {"folds": [{"valid": ["ravdess-01", "ravdess-12"]}] * 6}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    done = subprocess.run([sys.executable, str(RECIPES / "common" / "hidden_folds.py"), str(tmp_path / "m.jsonl"),
                           str(tmp_path / "bad"), "--valid-from", str(tmp_path / "bad.json")],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "not all training actors" in done.stderr
    assert not list(tmp_path.glob("bad*.jsonl"))


def test_emobox_ssl_stages_skip_without_weights_and_name_a_missing_file(tmp_path):
    exp = tmp_path / "exp"
    skipped = run_sh("ravdess_emobox", "--stage", "20", "--stop-stage", "21", DATA=str(tmp_path), EXP=str(exp))
    assert skipped.returncode == 0, skipped.stderr
    assert "stage 20: skipped: set SSL_WEIGHTS" in skipped.stdout
    assert skipped.stdout.count("table skipped") == 2
    missing = run_sh("ravdess_emobox", "--stage", "20", "--stop-stage", "20", DATA=str(tmp_path), EXP=str(exp),
                     SSL_WEIGHTS=str(tmp_path / "none.pth"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"stage 20: SSL_WEIGHTS={tmp_path / 'none.pth'} is not a file"


@pytest.mark.parametrize(("folds", "log"), [(None, "cv_x.log"), ("0,1,2", "cv_x.folds012.log"),
                                            ("1 2 3", "cv_x.folds123.log")])
def test_logged_keeps_one_log_per_folds_setting(tmp_path, folds, log):
    """Two processes of one recipe given different FOLDS (how the recipes use both cores) write
    two logs instead of interleaving one."""
    script = f'. "{RECIPES / "common" / "stages.sh"}"; logged cv_x echo hello'
    env = {**os.environ, "DATA": str(tmp_path), "EXP": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("FOLDS", None)
    if folds is not None:
        env["FOLDS"] = folds
    argv0 = str(RECIPES / "ravdess_emobox" / "run.sh")  # stages.sh finds the recipe from $0
    done = subprocess.run(["bash", "-c", script, argv0], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n" and [p.name for p in (tmp_path / "logs").iterdir()] == [log]
    assert (tmp_path / "logs" / log).read_text() == "hello\n"
