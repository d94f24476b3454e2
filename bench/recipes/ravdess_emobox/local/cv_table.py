"""One row per `ssl-ser cv` directory: what validation saw (the selection signal) beside the test scores.

    python cv_table.py [--baseline LABEL] --cv LABEL CV_DIR [--cv LABEL CV_DIR ...]

Settings are chosen on the validation columns only: the validation actors are held out inside
each fold's training actors, so the mean over the six folds' validation actors (24 actor-folds)
is a selection signal that never sees a test actor. "valid UA, last 5" is the mean of the last
five epochs' validation UA, averaged over folds (steadier than the picked epoch's, which is a
maximum and so optimistic). Test cells are the picked checkpoint's UA on each fold's test
actors; the mean ± sample sd is over folds. With ``--baseline``, each row also gets its mean
UA difference from that row over the folds both have and the number of folds it is ahead on.
A run without validation actors (``--valid-speakers 0``: trained on every training actor, its
last epoch tested) has "–" in the validation columns: nothing can be chosen on it. With
``--losses``, a column gives the last epoch's training / validation loss, averaged over folds
(the training loss is on mixed inputs when the job uses mixup).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from fuse import predictions  # the script's own folder is on sys.path
from test_table import fold_scores

from ssl_ser.folds import FOLDS_FILE

LAST = 5


def fold_rows(cv_dir: Path) -> dict[int, dict[str, Any]]:
    """Per finished fold: test UA / WA / macro F1, the picked and last-5 validation UA (None
    without validation), minutes."""
    return {i: {**{k: f[k] for k in ("ua", "wa", "macro_f1", "minutes")},
                "valid_picked": f["valid"][f["epoch"] - 1] if f["valid"] else None,
                "valid_last": statistics.mean(f["valid"][-LAST:]) if f["valid"] else None,
                "train_loss": f["losses"][0], "valid_loss": f["losses"][1]}
            for i, f in fold_scores(cv_dir).items()}


def pooled_recalls(cv_dir: Path, folds: list[int], names: list[str]) -> list[str]:
    """The test recall of each class in ``names`` over the finished folds' test utterances
    pooled (each utterance named by its highest probability), or "–" for a class no test
    utterance has."""
    plan = {f["index"]: f["name"] for f in json.loads((cv_dir / FOLDS_FILE).read_text())["folds"]}
    hits, total = Counter[str](), Counter[str]()
    for i in folds:
        for label, probs in predictions(cv_dir / plan[i] / "test" / "predictions.jsonl").values():
            total[label] += 1
            hits[label] += max(probs, key=probs.__getitem__) == label
    return [f"{hits[name] / total[name]:.2f}" if total[name] else "–" for name in names]


def mean_of(values: list[float | None], fmt: str = "{:.3f}") -> str:
    """The mean, or "–" when any fold has no value."""
    present = [v for v in values if v is not None]
    return fmt.format(statistics.mean(present)) if present and len(present) == len(values) else "–"


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", nargs=2, action="append", required=True, metavar=("LABEL", "CV_DIR"))
    parser.add_argument("--baseline", help="the LABEL every row is compared with")
    parser.add_argument("--losses", action="store_true", help="add the last epoch's training / validation loss")
    parser.add_argument("--recall", action="append", default=[], metavar="CLASS",
                        help="add the test recall of CLASS, pooled over the folds (repeatable)")
    args = parser.parse_args()
    labels = [label for label, _ in args.cv]
    if len(set(labels)) < len(labels):  # rows are keyed by label: a repeat would replace a row
        parser.error(f"--cv label {next(x for x in labels if labels.count(x) > 1)!r} is given twice")
    cv_dirs = {label: Path(d) for label, d in args.cv}
    tables = {label: fold_rows(d) for label, d in cv_dirs.items()}
    if args.baseline is not None and args.baseline not in tables:
        parser.error(f"--baseline {args.baseline!r} is not one of the --cv labels: {', '.join(tables)}")
    folds = sorted({i for t in tables.values() for i in t})
    head = ["setting", "folds", "valid UA, picked", f"valid UA, last {LAST}", "test UA", "test WA", "test macro F1"]
    if args.losses:
        head.append("train / valid loss, last epoch")
    head += [f"test recall {name}" for name in args.recall]
    head += [f"fold {i + 1}" for i in folds] + ["min / fold"]
    if args.baseline:
        head += [f"vs {args.baseline}", "folds ahead"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, t in tables.items():
        if not t:
            print(f"| {label} | 0 |" + " |" * (len(head) - 2))
            continue
        got = sorted(t)
        cells = [label, str(len(got)), mean_of([t[i]["valid_picked"] for i in got]),
                 mean_of([t[i]["valid_last"] for i in got], "**{:.3f}**"),
                 mean_sd([t[i]["ua"] for i in got]), mean_sd([t[i]["wa"] for i in got]),
                 mean_sd([t[i]["macro_f1"] for i in got])]
        if args.losses:
            cells.append(f"{mean_of([t[i]['train_loss'] for i in got], '{:.2f}')} / "
                         f"{mean_of([t[i]['valid_loss'] for i in got], '{:.2f}')}")
        if args.recall:
            cells += pooled_recalls(cv_dirs[label], got, args.recall)
        cells += [f"{t[i]['ua']:.3f}" if i in t else "–" for i in folds]
        cells.append(f"{statistics.mean(t[i]['minutes'] for i in got):.1f}")
        if args.baseline:
            base = tables[args.baseline]
            both = [i for i in got if i in base] if label != args.baseline else []
            diffs = [t[i]["ua"] - base[i]["ua"] for i in both]
            cells += [f"{statistics.mean(diffs):+.3f}" if diffs else "–",
                      f"{sum(d > 0 for d in diffs)}/{len(diffs)}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
