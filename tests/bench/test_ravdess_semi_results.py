"""bench/recipes/ravdess_semi/local/results.py on a tiny fake experiment: the baseline is picked on
validation UA, each method is paired with its own baseline, pretrainings are summarised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "recipes" / "ravdess_semi" / "local" / "results.py"


def fake_run(runs: Path, name: str, fold: int, test_ua: float | None, valid_ua: float, **valid: float) -> None:
    run = runs / f"{name}_f{fold}"
    run.mkdir(parents=True)
    rows = [{"epoch": e, "valid_ua": valid_ua * e / 2, "time_s": 30.0, **valid} for e in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if test_ua is not None:
        (run / "test").mkdir()
        (run / "test" / "metrics.json").write_text(
            json.dumps({"epoch": 2, "metrics": {"ua": test_ua, "wa": test_ua, "macro_f1": test_ua}}))


def test_baseline_on_validation_and_own_baselines(tmp_path):
    runs = tmp_path / "runs"
    cv = runs / "ceiling"
    cv.mkdir(parents=True)
    cv.joinpath("cv_results.json").write_text(json.dumps({"folds": [
        {"fold": f - 1, "ua": 0.6, "wa": 0.6, "macro_f1": 0.6, "train_s": 120.0} for f in (1, 2)]}))
    for f in (1, 2):
        fake_run(runs, "sup20", f, 0.40, valid_ua=0.3)       # better on test, worse on validation
        fake_run(runs, "sup20_long", f, 0.30, valid_ua=0.5)  # the baseline: validation decides
        fake_run(runs, "m", f, 0.36 + 0.02 * f, valid_ua=0.4)
        fake_run(runs, "ds", f, 0.20, valid_ua=0.2)
        fake_run(runs, "dft", f, 0.25, valid_ua=0.2)
        fake_run(runs, "pt", f, None, valid_ua=0.3)
        fake_run(runs, "adv", f, None, valid_ua=0.2, valid_speaker_acc=0.05, valid_speaker_chance=0.06,
                 valid_probe_speaker_acc=0.5, valid_probe_corpus_acc=0.9)
        fake_run(runs, "spk", f, None, valid_ua=0.0, valid_eer=0.3 - 0.1 * f)
    out = subprocess.run([sys.executable, str(SCRIPT), str(runs), "--ceiling", str(cv), "--folds", "1 2",
                          "--runs", "sup20 sup20_long m ds dft", "--against", "dft:ds",
                          *(f"--pretraining={name}" for name in ("pt", "adv", "spk")),
                          "--out", str(tmp_path / "results.md")], capture_output=True, text=True, check=True).stdout
    assert "| sup20_long (baseline) | 0.300 | 0.300 |" in out
    assert "| 100 % labels (ceiling) | 0.600 | 0.600 | 0.600 ± 0.000 |" in out
    # m: +0.09 on average against the baseline, which is 0.30 below the ceiling
    assert "- m against sup20_long: +0.090 ± 0.014, 2/2 folds better" in out and "closes 30% of the gap" in out
    dft = next(line for line in out.splitlines() if line.startswith("- dft"))
    assert dft.startswith("- dft against ds: +0.050") and "gap" not in dft
    assert "- ds against" not in out  # a baseline is not a method
    assert "pt (pretraining) per fold: fold 1 1.0 min, last valid UA 0.300" in out
    assert ("adv (pretraining) per fold: fold 1 1.0 min, last valid UA 0.200 (speaker head 0.050, chance 0.060; "
            "linear probes: speaker 0.500, corpus 0.900)") in out
    assert "spk (pretraining) per fold: fold 1 1.0 min, best valid EER 0.200, fold 2 1.0 min, best valid EER 0.100" \
        in out
    assert (tmp_path / "results.md").read_text().strip() == out.strip()


def test_a_pair_of_unknown_runs_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--ceiling", str(tmp_path), "--runs", "a b",
                          "--against", "a:c"], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and out.stderr.strip() == "a:c: not A:B of two runs in --runs (c)"
