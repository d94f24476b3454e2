"""This recipe's results: per fold and mean ± sd, the paired tests, the clustering per epoch.

    python bench/recipes/ravdess_semi/local/results.py runs --ceiling runs/pyresnet_final-cv-ravdess_emobox \
        --folds "1 2 3 4 5 6" --runs "sup20 sup20_long dec" [--out results.md] [--plot clustering.png]

Reads ``runs/<name>_f<fold>/test/metrics.json`` (``ssl-ser evaluate`` of the run's best
validation-UA checkpoint on the fold's test actors), its ``metrics.jsonl`` (validation UA and
wall time per epoch, and for DeepEmoCluster the clustering: ``pre_nmi_hidden``,
``pre_purity_hidden``), and the ceiling's ``cv_results.json`` (fold i of the EmoBox list is
its fold i-1). The supervised-on-20 % baseline is the ``sup*`` configuration with the higher
mean validation UA (validation actors only: the test actors pick nothing). Only folds where
every configuration is scored enter the means and the tests. A method on another network names
its own baseline, the same network supervised on the 20 % (``--against daae_ft:daae_scratch``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "common"))
from paired import compare  # noqa: E402  (the recipes' shared helpers are scripts, not a package)
from table import mean_sd  # noqa: E402

METRICS = {"ua": "UA", "wa": "WA", "macro_f1": "macro F1"}


def epochs(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def scored(runs: Path, name: str, fold: int) -> dict | None:
    run = runs / f"{name}_f{fold}"
    path = run / "test" / "metrics.json"
    if not path.is_file():
        return None
    rows = epochs(run)
    test = json.loads(path.read_text())
    return {**{k: test["metrics"][k] for k in METRICS}, "valid_ua": max(r.get("valid_ua", 0.0) for r in rows),
            "minutes": sum(r.get("time_s", 0.0) for r in rows) / 60, "epoch": test.get("epoch"), "rows": rows}


def ceiling(cv_dir: Path) -> dict[int, dict]:
    path = cv_dir / "cv_results.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (run stage 4, the 100 % ceiling, first)")
    results = json.loads(path.read_text())
    return {int(f["fold"]) + 1: {**{k: f[k] for k in METRICS}, "minutes": f.get("train_s", 0.0) / 60}
            for f in results["folds"]}


def pretrained(rows: list[dict]) -> str:
    """A pretraining's validation: speaker runs' best EER, or the last epoch's UA (DAAE's latent
    emotion head at the epoch fine-tuning starts from)."""
    eers = [r["valid_eer"] for r in rows if "valid_eer" in r]
    if eers:
        return f"best valid EER {min(eers):.3f}"
    last = rows[-1]
    text = f"last valid UA {last.get('valid_ua', float('nan')):.3f}"
    if "valid_probe_speaker_acc" in last:  # DAAE: what its adversaries left in the latent code
        text += (f" (speaker head {last['valid_speaker_acc']:.3f}, chance {last['valid_speaker_chance']:.3f}; "
                 f"linear probes: speaker {last['valid_probe_speaker_acc']:.3f}, corpus "
                 f"{last['valid_probe_corpus_acc']:.3f})")
    return text


def average(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows if key in r]
    return f"{statistics.mean(values):.3f}" if values else "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("--ceiling", type=Path, required=True, help="the 100 %% `ssl-ser cv` directory")
    parser.add_argument("--folds", default="1 2 3 4 5 6")
    parser.add_argument("--runs", dest="names", default="sup20 sup20_long dec")
    parser.add_argument("--pair", action="append", default=[], metavar="A:B",
                        help="also compare run A with run B fold by fold (e.g. a method with its control)")
    parser.add_argument("--against", action="append", default=[], metavar="A:B",
                        help="run A's baseline is run B (a method on another network: its own supervised 20 %%)")
    parser.add_argument("--pretraining", action="append", default=[], help="a pretraining run (not scored on "
                        "emotions): its minutes per fold, and its best validation EER (speaker) or last-epoch "
                        "validation UA (DAAE's latent emotion head, the epoch fine-tuning starts from)")
    parser.add_argument("--out", type=Path, help="also write the tables here (markdown)")
    parser.add_argument("--plot", type=Path, help="PNGs (one per clustering run, _<run> added to the name) of "
                        "the clustering's NMI and purity per epoch")
    args = parser.parse_args()
    folds, names = [int(f) for f in args.folds.split()], args.names.split()
    for pair in (*args.pair, *args.against):
        unknown = [n for n in pair.split(":") if n not in names]
        if pair.count(":") != 1 or unknown:
            print(f"{pair}: not A:B of two runs in --runs ({', '.join(unknown) or 'needs one colon'})", file=sys.stderr)
            return 2
    top = ceiling(args.ceiling)
    found = {n: {f: s for f in folds if (s := scored(args.runs, n, f)) is not None} for n in names}
    complete = [f for f in folds if f in top and all(f in found[n] for n in names)]
    lines: list[str] = []
    if not complete:
        print("no fold has every configuration scored yet", file=sys.stderr)
        return 1
    supervised = [n for n in names if n.startswith("sup")]
    base = max(supervised, key=lambda n: statistics.mean(found[n][f]["valid_ua"] for f in complete))
    against = dict(pair.split(":") for pair in args.against)
    ceiling_name = "100 % labels (ceiling)"
    table = {ceiling_name: {f: top[f] for f in complete}, **{n: found[n] for n in names}}
    head = ["run", *(f"fold {f}" for f in complete), *(f"mean {label}" for label in METRICS.values()),
            "valid UA", "cluster CE", "min / fold"]
    lines += [f"Test UA per fold and means over the {len(complete)} of {len(folds)} folds where every run is "
              f"scored. Baseline: the supervised 20 % configuration with the higher mean validation UA "
              f"({base}); cluster CE: mean training cluster cross-entropy (ln 16 = 2.77 is chance).", "",
              "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for n, runs in table.items():
        rows = [r for f in complete for r in runs[f].get("rows", [])]
        cells = [f"{n} (baseline)" if n == base else n, *(f"{runs[f]['ua']:.3f}" for f in complete),
                 *(mean_sd([runs[f][k] for f in complete]) for k in METRICS),
                 "–" if n == ceiling_name else f"{statistics.mean(runs[f]['valid_ua'] for f in complete):.3f}",
                 average(rows, "train_cluster_ce"),
                 f"{statistics.mean(runs[f]['minutes'] for f in complete):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    base_ua = [found[base][f]["ua"] for f in complete]
    top_ua = [top[f]["ua"] for f in complete]
    gap = statistics.mean(top_ua) - statistics.mean(base_ua)
    lines += ["", f"Each run against its baseline, test UA, fold by fold ({base} unless named; the gap to the "
              f"ceiling, {gap:+.3f}, is the PyResNet's):", ""]
    for n in names:
        if n == base or n in against.values():  # a baseline, not a method
            continue
        other = against.get(n, base)
        ua = [found[n][f]["ua"] for f in complete]
        line = f"- {n} against {other}: {compare(ua, [found[other][f]['ua'] for f in complete]).text()}"
        if n not in against:
            closed = (statistics.mean(ua) - statistics.mean(base_ua)) / gap if gap > 0 else float("nan")
            line += f"; closes {closed:.0%} of the gap to the ceiling"
        lines.append(line)
    for pair in args.pair:
        a, b = pair.split(":")
        result = compare([found[a][f]["ua"] for f in complete], [found[b][f]["ua"] for f in complete])
        lines.append(f"- {a} against {b}: {result.text()}")
    for name in args.pretraining:
        runs = {f: epochs(args.runs / f"{name}_f{f}") for f in complete
                if (args.runs / f"{name}_f{f}" / "metrics.jsonl").is_file()}
        lines += ["", f"{name} (pretraining) per fold: " + ", ".join(
            f"fold {f} {sum(r.get('time_s', 0.0) for r in rows) / 60:.1f} min, {pretrained(rows)}"
            for f, rows in runs.items())]
    clustering = [n for n in names if any("pre_nmi_hidden" in r for s in found[n].values() for r in s["rows"])]
    for n in clustering:
        per_epoch: dict[int, list[dict]] = {}
        for f in complete:
            for r in found[n][f]["rows"]:
                if "pre_nmi_hidden" in r:
                    per_epoch.setdefault(int(r["epoch"]), []).append(r)
        lines += ["", f"{n}: clustering of the unlabelled utterances against their hidden emotions, mean over "
                  "folds (purity of chance: 0.133, the largest class' share)", "",
                  "| epoch | NMI hidden | purity hidden | NMI with labelled rows | NMI with previous epoch |",
                  "|---|---|---|---|---|"]
        keys = ("pre_nmi_hidden", "pre_purity_hidden", "pre_nmi_labels", "pre_nmi_previous")
        shown = sorted(per_epoch)
        shown = [e for e in shown if e in (shown[0], shown[-1]) or e % 5 == 0]  # first, every 5th, last
        for e, rows in ((e, per_epoch[e]) for e in shown):
            lines.append(f"| {e} | " + " | ".join(average(rows, k) for k in keys) + " |")
        if args.plot:  # one picture per clustering run: PLOT's name with _<run> added
            path = args.plot.with_name(f"{args.plot.stem}_{n}{args.plot.suffix}")
            plot(path, {f: found[n][f]["rows"] for f in complete}, n)
            lines += ["", f"Per fold: {path.name}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def plot(path: Path, runs: dict[int, list[dict]], name: str) -> None:
    import matplotlib  # deferred: only with --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: after choosing the backend

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for fold, rows in sorted(runs.items()):
        clustered = [r for r in rows if "pre_nmi_hidden" in r]
        x = [r["epoch"] for r in clustered]
        axes[0].plot(x, [r["pre_nmi_hidden"] for r in clustered], label=f"fold {fold}")
        axes[1].plot(x, [r["pre_purity_hidden"] for r in clustered])
        axes[2].plot([r["epoch"] for r in rows], [r.get("valid_ua", float("nan")) for r in rows])
    for ax, title in zip(axes, ("NMI, clusters vs hidden emotions", "purity vs hidden emotions",
                                "validation UA")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{name}: unlabelled utterances' clusters per epoch", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
