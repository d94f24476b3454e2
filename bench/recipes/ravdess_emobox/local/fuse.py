"""Score-level fusion of `ssl-ser cv` directories: the mean of their class probabilities, per fold.

    python fuse.py --cv LABEL CV_DIR --cv LABEL CV_DIR [...]

Every directory must cover the same folds with the same classes (the same protocol). For each
fold, each member's picked checkpoint is also scored on the fold's validation actors (written
once to RUN/valid/, with `ssl-ser evaluate`'s code), so that the decision to fuse is judged on
validation actors as every other setting of the recipe is; the test cells use each fold's
RUN/test/predictions.jsonl. Runs with another ``train.seed`` drew other validation actors
(and so trained on other actors): the fusion's validation cell then covers the validation
utterances all members share ("–" where they share none, or have no validation actors).
Equal weights: nothing is fitted, so nothing can fit the test actors.
Prints one row per member and one for the fusion: validation UA and test UA / WA / macro F1
(mean ± sample sd over folds) and the test UA per fold.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from ssl_ser.evaluate import evaluate, write_results
from ssl_ser.folds import FOLDS_FILE
from ssl_ser.metrics import classification_report


def predictions(path: Path) -> dict[str, tuple[str, dict[str, float]]]:
    """key -> (true label, class probabilities) from a predictions.jsonl."""
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["key"]: (r["label"], r["probs"]) for r in rows}


def valid_predictions(cv_dir: Path, fold: dict) -> Path | None:
    """The fold's picked checkpoint on its validation actors (scored once, then read back); None
    for a run without validation actors (``--valid-speakers 0``)."""
    if not fold["valid"]:
        return None
    out = cv_dir / fold["name"] / "valid"
    if not (out / "predictions.jsonl").is_file():
        groups = [str(cv_dir / "groups" / name) for name in fold["valid"]]
        write_results(evaluate(cv_dir / fold["name"], groups), out)
    return out / "predictions.jsonl"


def scores(members: list[dict[str, tuple[str, dict[str, float]]]], classes: list[str],
           common: bool = False) -> dict[str, float]:
    """UA / WA / macro F1 of the mean probabilities of ``members``: the same keys in each, or with
    ``common`` the keys every member has (nan if none)."""
    keys = sorted(set(members[0]).intersection(*members[1:])) if common else sorted(members[0])
    if not common and any(sorted(m) != keys for m in members[1:]):
        raise SystemExit("fuse.py: the members scored different test utterances; they must share the protocol")
    if not keys:
        return {"ua": float("nan"), "wa": float("nan"), "macro_f1": float("nan"), "n": 0}
    probs = np.mean([[[m[k][1][c] for c in classes] for k in keys] for m in members], axis=0)
    truth = [classes.index(members[0][k][0]) for k in keys]
    report = classification_report(np.array(truth), probs.argmax(1), classes)
    return {k: report[k] for k in ("ua", "wa", "macro_f1", "n")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", nargs=2, action="append", required=True, metavar=("LABEL", "CV_DIR"))
    args = parser.parse_args()
    dirs = {label: Path(d) for label, d in args.cv}
    for d in dirs.values():
        if not (d / FOLDS_FILE).is_file():
            raise SystemExit(f"fuse.py: {d} has no {FOLDS_FILE}: not an `ssl-ser cv` directory, or not started")
    plans = {label: json.loads((d / FOLDS_FILE).read_text()) for label, d in dirs.items()}
    classes = next(iter(plans.values()))["classes"]
    folds = [f["index"] for f in next(iter(plans.values()))["folds"]]
    for label, plan in plans.items():
        if plan["classes"] != classes or [f["index"] for f in plan["folds"]] != folds:
            raise SystemExit(f"fuse.py: {dirs[label]} has other classes or folds than the first directory")
    rows: dict[str, dict[str, list[float]]] = {label: {} for label in [*dirs, "fusion"]}
    for i, index in enumerate(folds):
        valid, test = [], []
        for label, d in dirs.items():
            fold = plans[label]["folds"][i]
            test_file = d / fold["name"] / "test" / "predictions.jsonl"
            if not test_file.is_file():
                raise SystemExit(f"fuse.py: {test_file} is missing (fold {index + 1} of {label} not finished)")
            scored = valid_predictions(d, fold)
            valid.append(predictions(scored) if scored is not None else {})
            test.append(predictions(test_file))
            for name, value in [("valid", scores([valid[-1]], classes)["ua"]), *scores([test[-1]], classes).items()]:
                rows[label].setdefault(name, []).append(value)
        shared = scores(valid, classes, common=True)
        for name, value in [("valid", shared["ua"]), ("valid_n", shared["n"]), *scores(test, classes).items()]:
            rows["fusion"].setdefault(name, []).append(value)
    head = ["", "valid UA (picked checkpoints)", "test UA", "test WA", "test macro F1"]
    head += [f"fold {i + 1}" for i in folds]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for label, r in rows.items():
        shared = [v for v in r["valid"] if v == v]  # nan: the members share no validation actor
        cells = [f"{statistics.mean(shared):.3f}" if shared else "–"]
        if label == "fusion" and shared and len(shared) < len(r["valid"]):
            cells[0] += f" ({len(shared)} folds, {sum(r['valid_n'])} shared utterances)"
        cells += [f"{statistics.mean(r[k]):.3f} ± {statistics.stdev(r[k]) if len(r[k]) > 1 else 0.0:.3f}"
                  for k in ("ua", "wa", "macro_f1")]
        cells += [f"{u:.3f}" for u in r["ua"]]
        print(f"| {'**fusion**' if label == 'fusion' else label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
