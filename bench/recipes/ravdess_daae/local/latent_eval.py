"""What the README's DAAE tables need beyond ``ssl-ser evaluate`` (which scores the fine-tuned
runs' classifier):

    python local/latent_eval.py RUN [RUN ...] --test SHARDS [SHARDS ...] [--which latest] [--json OUT.json]
    python local/latent_eval.py --history RUN [RUN ...]

The first form scores each run's latent emotion head (a pretrained DAAE's own emotion output,
not its classifier) on the test shard sets: the checkpoint is rebuilt with
``Predictor.from_checkpoint``, each utterance decided by the mean of its segments' latent-head
posteriors (``ssl_ser.methods.daae.latent_pass``). ``--history`` reads each run's
``metrics.jsonl`` instead: epochs, summed epoch time, and the last epoch's domain numbers where
the run logged them (``daae_pretrain``: the adversarial speaker/corpus heads' accuracy on the
training corpora next to the majority-class share, and fresh linear probes on the
utterance-mean latent codes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def latent_scores(runs: list[str], test: list[str], which: str) -> list[dict]:
    import torch

    from ssl_ser.data.stream import make_stream
    from ssl_ser.inference import Predictor, score
    from ssl_ser.methods.daae import latent_pass

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
    args = parser.parse_args()
    if args.history:
        history(args.runs)
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
