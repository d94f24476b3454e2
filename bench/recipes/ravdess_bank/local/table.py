"""The README table of this recipe: full pass against embedding bank, per fold and mean.

    python bench/recipes/ravdess_bank/local/table.py runs [--folds "1 2 3 4 5 6"] [--from-epoch 3]

Reads ``runs/<mode>_f<fold>/metrics.jsonl`` (one row per epoch) and ``test/metrics.json``
(``ssl-ser evaluate`` of the best checkpoint). Over the epochs from ``--from-epoch`` on (where
the bank re-clusters; before, it embeds everything as its warm-up), per run:

- s/epoch: median wall time of an epoch (``time_s``), for the bank without its diagnostic full
  pass (``pre_check_time_s``, which exists only to measure agreement); medians, because the
  machine is shared and single epochs stall;
- re-clustering s and share: median (embedding pass or bank merge + k-means) and its median
  share of that epoch time;
- full pass, same run: for the bank, the median time of its diagnostic full pass and
  clustering, i.e. what the full pass would have cost in that run at that moment;
- NMI vs full: the bank's clustering against a full-pass clustering of the same model at the
  same epoch, with the same seed and point order (``pre_nmi_full``); in brackets the same over
  the keys recorded in the previous epoch only (``pre_nmi_full_fresh``) and their share;
- purity: cluster purity of the unlabelled utterances against their hidden emotions
  (``pre_purity_hidden``); for the bank also that of the same-epoch full pass (in brackets);
- test UA of the best-validation-UA checkpoint and its epoch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def epochs(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def summary(run: Path, first: int) -> dict[str, float] | None:
    if not (run / "test" / "metrics.json").is_file():
        return None
    rows = [r for r in epochs(run) if r["epoch"] >= first]
    if not rows:
        return None
    mean, median = statistics.mean, statistics.median
    time = [r["time_s"] - r.get("pre_check_time_s", 0.0) for r in rows]
    cost = [r.get("pre_embed_time_s", r.get("pre_bank_time_s", 0.0)) + r.get("pre_kmeans_time_s", 0.0) for r in rows]
    test = json.loads((run / "test" / "metrics.json").read_text())
    best = max(epochs(run), key=lambda r: r.get("valid_ua", -1.0))
    out = {"time": median(time), "cost": median(cost), "share": median(c / t for c, t in zip(cost, time)),
           "purity": mean(r["pre_purity_hidden"] for r in rows), "ua": test["metrics"]["ua"],
           "best": float(best["epoch"]), "epoch1": epochs(run)[0]["time_s"]}
    if any("pre_nmi_full" in r for r in rows):
        out["nmi_full"] = mean(r["pre_nmi_full"] for r in rows if "pre_nmi_full" in r)
        out["purity_full"] = mean(r["pre_full_purity_hidden"] for r in rows if "pre_full_purity_hidden" in r)
        out["check"] = median(r.get("pre_check_time_s", 0.0) for r in rows)
    if any("pre_nmi_full_fresh" in r for r in rows):
        out["nmi_fresh"] = mean(r["pre_nmi_full_fresh"] for r in rows if "pre_nmi_full_fresh" in r)
        out["fresh"] = mean(r["pre_bank_fresh"] for r in rows if "pre_bank_fresh" in r)
    return out


def cells(s: dict[str, float], mode: str) -> str:
    purity = f"{s['purity']:.3f}" + (f" ({s['purity_full']:.3f})" if "purity_full" in s else "")
    nmi = f"{s['nmi_full']:.3f}" if "nmi_full" in s else "-"
    if "nmi_fresh" in s:
        nmi += f" ({s['nmi_fresh']:.3f} over the {s['fresh']:.0%} fresh)"
    check = f"{s['check']:.1f}" if "check" in s else "-"
    return (f"{mode} | {s['time']:.1f} | {s['cost']:.3g} ({s['share']:.2g}) | {check} | {nmi} | {purity} | "
            f"{s['ua']:.3f} | {s['best']:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("--folds", default="1 2 3 4 5 6")
    parser.add_argument("--modes", default="full bank")
    parser.add_argument("--from-epoch", type=int, default=3)
    args = parser.parse_args()
    modes = args.modes.split()
    print(f"Epochs {args.from_epoch}+ (the bank's re-clusterings): medians (times) and means (NMI, purity) "
          f"over those epochs per run.\n")
    print("| fold | mode | s/epoch | re-clustering s (share) | full pass, same run s | NMI vs full pass "
          "| purity, hidden (full pass) | test UA | best epoch |")
    print("|---|---|---|---|---|---|---|---|---|")
    done: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for fold in args.folds.split():
        found = {m: summary(args.runs / f"{m}_f{fold}", args.from_epoch) for m in modes}
        if any(s is None for s in found.values()):
            print(f"| {fold} | (not finished: " + ", ".join(m for m, s in found.items() if s is None) + ") ||||||||")
            continue
        for mode, s in found.items():
            assert s is not None
            done[mode].append(s)
            print(f"| {fold} | {cells(s, mode)} |")
    n = min(len(v) for v in done.values())
    if n:
        for mode, rows in done.items():
            mean = {k: statistics.mean(r[k] for r in rows if k in r) for k in set().union(*rows)}
            if any("nmi_fresh" not in r for r in rows):  # a mean over some folds only would mislead
                mean.pop("nmi_fresh", None)
            print(f"| mean of {n} | {cells(mean, mode)} |")
        if set(modes) == {"full", "bank"}:
            full, bank = done["full"], done["bank"]
            saved = statistics.mean(1 - b["time"] / f["time"] for f, b in zip(full, bank))
            delta = [b["ua"] - f["ua"] for f, b in zip(full, bank)]
            sd = statistics.stdev(delta) if len(delta) > 1 else 0.0
            print(f"\nbank vs full over {n} folds: epoch time {saved:.0%} shorter; test UA difference (bank - full) "
                  f"{statistics.mean(delta):+.3f} ± {sd:.3f} (sd over folds); diagnostic full pass "
                  f"{statistics.mean(b['check'] for b in bank):.1f} s/epoch (not counted); first epoch (full pass "
                  f"in both) {statistics.mean(f['epoch1'] for f in full):.1f} / "
                  f"{statistics.mean(b['epoch1'] for b in bank):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
