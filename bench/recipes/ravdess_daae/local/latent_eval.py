"""What the README's DAAE tables need beyond ``ssl-ser evaluate`` (which scores the fine-tuned
runs' classifier):

    python local/latent_eval.py RUN [RUN ...] --test SHARDS [SHARDS ...] [--which latest] [--json OUT.json]
    python local/latent_eval.py --history RUN [RUN ...] [--epochs 1,10]

The first form scores each run's latent emotion head (a pretrained DAAE's own emotion output,
not its classifier) on the test shard sets: the checkpoint is rebuilt with
``Predictor.from_checkpoint``, each utterance decided by the mean of its segments' latent-head
posteriors (``ssl_ser.methods.daae.latent_pass``). ``--history`` reads each run's
``metrics.jsonl`` instead: the domain numbers of the given epochs (default: the last) where the
run logged them (``daae_pretrain``: the adversarial speaker/corpus heads' accuracy on the
training speakers' validation segments next to the majority-class share, fresh linear probes
on the utterance-mean latent codes, the validation reconstruction error), then each run's
epochs and summed epoch time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DOMAIN = {"valid_speaker_acc": "speaker head", "valid_speaker_chance": "chance",
          "valid_probe_speaker_acc": "speaker probe", "valid_corpus_acc": "corpus head",
          "valid_corpus_chance": "chance", "valid_probe_corpus_acc": "corpus probe",
          "valid_recon": "valid recon"}


def history(runs: list[str], epochs: list[int] | None) -> None:
    logs = {run: [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line.strip()]
            for run in runs}
    lines = []
    for run, rows in logs.items():
        for row in rows[-1:] if epochs is None else [r for r in rows if r["epoch"] in epochs]:
            if any(k in row for k in DOMAIN):
                cells = ["-" if k not in row else f"{row[k]:#.3g}" if k == "valid_recon" else f"{row[k]:.3f}"
                         for k in DOMAIN]
                lines.append(f"| {Path(run).name}, {row['epoch']} | " + " | ".join(cells) + " |")
    if lines:
        print("\n".join(["| run, epoch | " + " | ".join(DOMAIN.values()) + " |", "|---|" + "---|" * len(DOMAIN),
                         *lines, ""]))
    print("| run | epochs | sum of logged epoch times (s) |\n|---|---|---|")
    for run, rows in logs.items():
        print(f"| {Path(run).name} | {rows[-1]['epoch']} | {sum(r.get('time_s', 0.0) for r in rows):.0f} |")


def latent_scores(runs: list[str], test: list[str], which: str) -> list[dict]:
    import torch

    from ssl_ser.data.stream import make_stream
    from ssl_ser.inference import Predictor, score
    from ssl_ser.probes import latent_pass

    torch.set_num_threads(1)
    rows = []
    print("| run | epoch | latent-head UA | WA | macro F1 | weighted F1 | scored utterances |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        predictor, meta = Predictor.from_checkpoint(run, which=which)
        batches = make_stream(list(test), mode="exact", batch_size=32, num_workers=0, max_seconds=30.0)
        pred = score(latent_pass(predictor, batches), predictor.labels, [])
        m = pred.metrics
        row = {"run": run, "checkpoint": meta["checkpoint"], "epoch": meta["epoch"],
               **{f"test_{k}": m[k] for k in ("ua", "wa", "macro_f1", "weighted_f1")},
               "n": int(pred.report["n"]), "classes": pred.report["classes"],
               "confusion": pred.report["confusion"]}
        rows.append(row)
        print(f"| {Path(run).name} | {row['epoch']} | "
              + " | ".join(f"{row[f'test_{k}']:.3f}" for k in ("ua", "wa", "macro_f1", "weighted_f1"))
              + f" | {row['n']} |", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--test", nargs="+", help="test shard sets")
    parser.add_argument("--which", default="best", choices=["best", "latest"])
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--history", action="store_true", help="summarise metrics.jsonl instead")
    parser.add_argument("--epochs", help="--history: these epochs (comma list; default: the last)")
    args = parser.parse_args()
    if args.history:
        history(args.runs, [int(e) for e in args.epochs.split(",")] if args.epochs else None)
        return 0
    if not args.test:
        parser.error("--test is required (or --history)")
    rows = latent_scores(args.runs, args.test, args.which)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
