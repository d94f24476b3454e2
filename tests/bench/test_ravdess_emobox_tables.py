"""bench/recipes/ravdess_emobox/local/cv_table.py and fuse.py on tiny fake cv directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench.scripts import ROOT, load_script

LOCAL = ROOT / "bench" / "recipes" / "ravdess_emobox" / "local"
CLASSES = ["a", "b"]


def fake_cv(cv: Path, name: str, valid_ua: list[float], test_probs: list[list[list[float]]]) -> None:
    """A finished 2-class cv directory: fold i's test utterances u0.. with labels a, b, a, b..."""
    folds = []
    for i, probs in enumerate(test_probs):
        run = cv / f"{name}-fold{i}"
        (run / "test").mkdir(parents=True)
        epochs = [{"epoch": e, "valid_ua": valid_ua[i] - 0.1 * (e == 1), "time_s": 60.0} for e in (1, 2)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
        labels = [CLASSES[k % 2] for k in range(len(probs))]
        rows = [{"key": f"f{i}u{k}", "label": y, "probs": dict(zip(CLASSES, p))}
                for k, (y, p) in enumerate(zip(labels, probs))]
        (run / "test" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        hits = [max(CLASSES, key=r["probs"].get) == r["label"] for r in rows]
        ua = sum(hits) / len(hits)  # balanced labels: UA = WA here
        (run / "test" / "metrics.json").write_text(
            json.dumps({"epoch": 2, "metrics": {"ua": ua, "wa": ua, "macro_f1": ua}}))
        (run / "valid").mkdir()  # the validation actor "c/v", scored already
        (run / "valid" / "predictions.jsonl").write_text((run / "test" / "predictions.jsonl").read_text())
        folds.append({"index": i, "name": f"{name}-fold{i}", "held_out": [], "valid": ["c/v"]})
    (cv / "folds.json").write_text(json.dumps({"classes": CLASSES, "folds": folds}))


def test_cv_table_reports_validation_beside_test_and_the_paired_difference(tmp_path):
    fake_cv(tmp_path / "base", "base", [0.5, 0.7], [[[0.6, 0.4], [0.6, 0.4]], [[0.6, 0.4], [0.4, 0.6]]])
    fake_cv(tmp_path / "new", "new", [0.8, 0.6], [[[0.6, 0.4], [0.4, 0.6]], [[0.6, 0.4], [0.4, 0.6]]])
    out = subprocess.run([sys.executable, str(LOCAL / "cv_table.py"), "--baseline", "base",
                          "--cv", "base", str(tmp_path / "base"), "--cv", "new", str(tmp_path / "new")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    # picked epoch 2 = the last; last-5 mean over both epochs is 0.05 lower
    assert out[2].startswith("| base | 2 | 0.600 | **0.550** | 0.750 ± 0.354 |")
    assert out[3].startswith("| new | 2 | 0.700 | **0.650** | 1.000 ± 0.000 |")
    assert out[3].endswith("| +0.250 | 1/2 |")


def test_a_run_without_validation_actors_has_no_validation_cells(tmp_path):
    """``--valid-speakers 0`` (trained on every training actor, the last epoch tested)."""
    fake_cv(tmp_path / "base", "base", [0.5, 0.7], [[[0.6, 0.4], [0.6, 0.4]], [[0.6, 0.4], [0.4, 0.6]]])
    fake_cv(tmp_path / "refit", "refit", [0.0, 0.0], [[[0.6, 0.4], [0.4, 0.6]], [[0.6, 0.4], [0.4, 0.6]]])
    for run in (tmp_path / "refit").glob("refit-fold*"):
        (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "time_s": 60.0}) + "\n")
    out = subprocess.run([sys.executable, str(LOCAL / "cv_table.py"), "--baseline", "base",
                          "--cv", "base", str(tmp_path / "base"), "--cv", "refit", str(tmp_path / "refit")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[3].startswith("| refit | 2 | – | – | 1.000 ± 0.000 |") and out[3].endswith("| +0.250 | 1/2 |")
    plan = json.loads((tmp_path / "refit" / "folds.json").read_text())  # fuse.py reads the folds' actors
    for fold in plan["folds"]:
        fold["valid"] = []
    (tmp_path / "refit" / "folds.json").write_text(json.dumps(plan))
    fused = subprocess.run([sys.executable, str(LOCAL / "fuse.py"), "--cv", "refit", str(tmp_path / "refit"),
                            "--cv", "again", str(tmp_path / "refit")],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert fused[2].startswith("| refit | – | 1.000 ± 0.000 |") and fused[4].startswith("| **fusion** | – |")


def test_cv_table_refuses_an_unknown_baseline_in_one_line(tmp_path):
    fake_cv(tmp_path / "base", "base", [0.5], [[[0.6, 0.4], [0.6, 0.4]]])
    done = subprocess.run([sys.executable, str(LOCAL / "cv_table.py"), "--baseline", "nope",
                           "--cv", "base", str(tmp_path / "base")], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "--baseline 'nope' is not one of the --cv labels: base" in done.stderr


def test_a_directory_that_is_not_a_cv_run_is_one_line(tmp_path):
    for script in ("cv_table.py", "fuse.py"):
        done = subprocess.run([sys.executable, str(LOCAL / script), "--cv", "x", str(tmp_path / "nope")],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 1 and done.stderr.count("\n") == 1
        assert f"{script}: {tmp_path / 'nope'} has no folds.json" in done.stderr


def test_fusion_averages_probabilities(tmp_path):
    # fold 0: each member gets one of two right; their mean gets both
    fake_cv(tmp_path / "x", "x", [0.5], [[[0.9, 0.1], [0.9, 0.1]]])
    fake_cv(tmp_path / "y", "y", [0.5], [[[0.4, 0.6], [0.0, 1.0]]])
    out = subprocess.run([sys.executable, str(LOCAL / "fuse.py"), "--cv", "x", str(tmp_path / "x"),
                          "--cv", "y", str(tmp_path / "y")], capture_output=True, text=True, check=True).stdout
    rows = {line.split(" | ")[0].strip("| *"): line for line in out.splitlines()[2:]}
    assert "| 0.500 ± 0.000 |" in rows["x"] and "| 0.500 ± 0.000 |" in rows["y"]
    assert rows["fusion"].startswith("| **fusion** | 1.000 | 1.000 ± 0.000 |")


def test_fusion_of_members_without_shared_validation_actors(tmp_path):
    fake_cv(tmp_path / "x", "x", [0.5], [[[0.9, 0.1], [0.9, 0.1]]])
    fake_cv(tmp_path / "y", "y", [0.5], [[[0.4, 0.6], [0.0, 1.0]]])
    valid = tmp_path / "y" / "y-fold0" / "valid" / "predictions.jsonl"
    valid.write_text(valid.read_text().replace('"f0u', '"other'))  # another seed: other validation actors
    out = subprocess.run([sys.executable, str(LOCAL / "fuse.py"), "--cv", "x", str(tmp_path / "x"),
                          "--cv", "y", str(tmp_path / "y")], capture_output=True, text=True, check=True).stdout
    assert "| **fusion** | – | 1.000 ± 0.000 |" in out


def test_fusion_of_an_unfinished_fold_is_one_line(tmp_path):
    fake_cv(tmp_path / "x", "x", [0.5], [[[0.9, 0.1], [0.9, 0.1]]])
    fake_cv(tmp_path / "y", "y", [0.5], [[[0.4, 0.6], [0.2, 0.8]]])
    (tmp_path / "y" / "y-fold0" / "test" / "predictions.jsonl").unlink()
    done = subprocess.run([sys.executable, str(LOCAL / "fuse.py"), "--cv", "x", str(tmp_path / "x"),
                           "--cv", "y", str(tmp_path / "y")], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "predictions.jsonl is missing (fold 1 of y not finished)" in done.stderr


def test_scores_of_one_member_are_its_own(tmp_path):
    fuse = load_script(LOCAL / "fuse.py", "bench_emobox_fuse")
    member = {"u0": ("a", {"a": 0.7, "b": 0.3}), "u1": ("b", {"a": 0.6, "b": 0.4})}
    got = fuse.scores([member], CLASSES)  # both predicted a: F1 2/3 for a, 0 for b
    assert got["ua"] == got["wa"] == 0.5 and abs(got["macro_f1"] - 1 / 3) < 1e-9


def test_cv_table_adds_the_pooled_test_recall_of_a_class(tmp_path):
    # each fold names both of its utterances alike: fold 1 "a" (a right, b wrong), fold 2 "b"
    fake_cv(tmp_path / "base", "base", [0.5, 0.7], [[[0.6, 0.4], [0.6, 0.4]], [[0.4, 0.6], [0.4, 0.6]]])
    out = subprocess.run([sys.executable, str(LOCAL / "cv_table.py"), "--recall", "a", "--recall", "b",
                          "--cv", "base", str(tmp_path / "base")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].split(" | ")[7:9] == ["test recall a", "test recall b"]
    assert out[2].split(" | ")[7:9] == ["0.50", "0.50"]
