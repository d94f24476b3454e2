"""Test-set scores and training records of DAAE runs for bench/results_daae.md.

    python bench/daae_eval.py RUN [RUN ...] --test SHARDS [SHARDS ...] [--json OUT.json]
    python bench/daae_eval.py --history RUN [RUN ...]

For each run, its best checkpoint (by the validation metric) is rebuilt with
``Predictor.from_checkpoint`` and scored on the test shard sets: utterance decisions from the
mean of the segment posteriors (the job's ``data.segment``). Fine-tuned runs are scored with
their BLSTM classifier (``logits``); ``--latent`` scores the latent emotion head instead (the
pretrained DAAE's own emotion output). Prints one Markdown row per run, then the mean and
population standard deviation of each group of runs that differ only in a ``_sN`` seed suffix.

``--history`` reads each run's ``metrics.jsonl`` instead: epochs, summed epoch time, and the
last epoch's domain numbers where the run logged them (``daae_pretrain``: the adversarial
speaker/corpus heads' accuracy on the training corpora next to the majority-class share, and
fresh linear probes on the utterance-mean latent codes).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

SCORES = ("test_ua", "test_wa", "test_macro_f1", "test_weighted_f1")
DOMAIN = ("valid_speaker_acc", "valid_speaker_chance", "valid_probe_speaker_acc",
          "valid_corpus_acc", "valid_corpus_chance", "valid_probe_corpus_acc", "valid_recon")


def history(runs: list[str]) -> None:
    print("| run | epochs | sum of epoch times (s) | " + " | ".join(k.removeprefix("valid_") for k in DOMAIN) + " |")
    print("|---|---|---|" + "---|" * len(DOMAIN))
    for run in runs:
        rows = [json.loads(line) for line in open(Path(run) / "metrics.jsonl") if line.strip()]
        last = rows[-1]
        cells = [f"{last[k]:.3f}" if k in last else "-" for k in DOMAIN]
        print(f"| {Path(run).name} | {last['epoch']} | {sum(r.get('time_s', 0.0) for r in rows):.0f} | "
              + " | ".join(cells) + " |")


def evaluate(args: argparse.Namespace) -> list[dict]:
    import torch

    from ssl_ser.data.stream import make_stream
    from ssl_ser.inference import Predictor, score
    from ssl_ser.methods.daae import latent_pass

    torch.set_num_threads(1)
    rows = []
    print("| run | epoch | valid UA | test UA | test WA | test macro F1 | test weighted F1 | scored utterances |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        predictor, meta = Predictor.from_checkpoint(run, which=args.which)
        batches = make_stream(list(args.test), mode="exact", batch_size=32, num_workers=0, max_seconds=30.0)
        if args.latent:
            pred = score(latent_pass(predictor, batches), predictor.labels, [])
        else:
            pred = predictor.score(predictor.predict(batches))
        m = pred.metrics
        valid = meta["metrics"].get("valid_ua")
        row = {"run": run, "checkpoint": meta["checkpoint"], "epoch": meta["epoch"], "valid_ua": valid,
               "test_ua": m["ua"], "test_wa": m["wa"], "test_macro_f1": m["macro_f1"],
               "test_weighted_f1": m["weighted_f1"], "n": int(pred.report["n"]),
               "classes": pred.report["classes"], "confusion": pred.report["confusion"]}
        rows.append(row)
        print(f"| {Path(run).name} | {row['epoch']} | {valid:.3f} | "
              + " | ".join(f"{row[k]:.3f}" for k in SCORES) + f" | {row['n']} |", flush=True)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(re.sub(r"_s\d+$", "", Path(row["run"]).name), []).append(row)
    for name, members in groups.items():
        if len(members) > 1:
            cells = [f"{np.mean([r[k] for r in members]):.3f} ± {np.std([r[k] for r in members]):.3f}"
                     for k in SCORES]
            print(f"| {name} mean ± sd ({len(members)} seeds) | | | " + " | ".join(cells) + " | |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--test", nargs="+", help="test shard sets")
    parser.add_argument("--latent", action="store_true", help="score the latent emotion head")
    parser.add_argument("--which", default="best", choices=["best", "latest"])
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--history", action="store_true", help="summarise metrics.jsonl instead")
    args = parser.parse_args()
    if args.history:
        history(args.runs)
        return 0
    if not args.test:
        parser.error("--test is required (or --history)")
    rows = evaluate(args)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
