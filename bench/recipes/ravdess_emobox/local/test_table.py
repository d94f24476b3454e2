"""Per-fold test scores of several `ssl-ser cv` directories side by side (finished folds only).

    python test_table.py --cv LABEL CV_DIR [--cv LABEL CV_DIR ...]

A cell is UA / WA / macro F1 (the epoch validation picked, the fold's summed epoch wall time);
the last rows give the mean ± sample sd over the folds each directory has, and the means over
the folds every directory has (paired).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from ssl_ser.folds import FOLDS_FILE


def fold_scores(cv_dir: Path) -> dict[int, dict]:
    """Per finished fold: test UA / WA / macro F1, the picked epoch, its training minutes, the
    test actors, the validation UA of every epoch (``valid``, empty for a run without
    validation actors: ``--valid-speakers 0``) and the last epoch's training and validation
    loss (``losses``; also read by cv_table.py)."""
    if not (cv_dir / FOLDS_FILE).is_file():
        raise SystemExit(f"{Path(sys.argv[0]).name}: {cv_dir} has no {FOLDS_FILE}: not an `ssl-ser cv` "
                         f"directory, or not started")
    plan = json.loads((cv_dir / FOLDS_FILE).read_text())
    out = {}
    for fold in plan["folds"]:
        run = cv_dir / fold["name"]
        test = run / "test" / "metrics.json"
        if not test.is_file():
            continue
        result = json.loads(test.read_text())
        epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
        out[fold["index"]] = {**{k: result["metrics"][k] for k in ("ua", "wa", "macro_f1")},
                              "epoch": result["epoch"], "minutes": sum(e["time_s"] for e in epochs) / 60,
                              "held_out": " ".join(h.split("/")[-1] for h in fold["held_out"]),
                              "valid": [e["valid_ua"] for e in epochs if "valid_ua" in e],
                              "losses": (epochs[-1].get("train_loss"), epochs[-1].get("valid_loss"))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", nargs=2, action="append", required=True, metavar=("LABEL", "CV_DIR"))
    args = parser.parse_args()
    tables = [(label, fold_scores(Path(d))) for label, d in args.cv]
    folds = sorted({i for _, t in tables for i in t})
    print("| fold | test actors | " + " | ".join(f"{label}: UA / WA / macro F1" for label, _ in tables) + " |")
    print("|---|---|" + "---|" * len(tables))
    for i in folds:
        actors = next(t[i]["held_out"] for _, t in tables if i in t)
        cells = [f"{t[i]['ua']:.3f} / {t[i]['wa']:.3f} / {t[i]['macro_f1']:.3f} "
                 f"(epoch {t[i]['epoch']}, {t[i]['minutes']:.1f} min)" if i in t else "not run" for _, t in tables]
        print(f"| {i + 1} | {actors} | " + " | ".join(cells) + " |")
    paired = [i for i in folds if all(i in t for _, t in tables)]
    for label, t in tables:
        ua = [t[i]["ua"] for i in sorted(t)]
        sd = statistics.stdev(ua) if len(ua) > 1 else 0.0
        both = statistics.mean(t[i]["ua"] for i in paired) if paired else float("nan")
        print(f"{label}: mean UA {statistics.mean(ua):.3f} ± {sd:.3f} over {len(ua)} fold(s); "
              f"{both:.3f} over the {len(paired)} fold(s) every directory has")


if __name__ == "__main__":
    main()
