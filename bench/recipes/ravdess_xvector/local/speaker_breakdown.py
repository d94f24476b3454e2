"""The speaker-pretraining run per corpus (README.md here, "Speaker pretraining"), from the
outputs of public commands, without training:

- speaker accuracy per corpus on the held-out utterances of the training speakers, from
  ``ssl-ser evaluate RUN shards/speakers_heldout --out DIR`` (its per-class recall; the
  classes are ``corpus/speaker``);
- the EER of cosine-scored x-vectors on all unseen-speaker trials, on within-corpus trials
  only and per corpus, from ``ssl-ser predict RUN AUDIO... --embeddings --out TRIALS.jsonl``
  joined by audio path with the trial manifest (speaker and corpus of each file).

    python local/speaker_breakdown.py audio manifests/speaker_trials.jsonl     # the files to embed
    python local/speaker_breakdown.py report HELDOUT/metrics.json manifests/speaker_trials.jsonl TRIALS.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from ssl_ser.data.manifest import read_manifest
from ssl_ser.metrics_speaker import cosine_scores, eer, make_trials


def accuracy_per_corpus(metrics_json: str) -> None:
    summary = json.loads(Path(metrics_json).read_text())
    print("overall", {k: round(v, 4) for k, v in summary["metrics"].items() if isinstance(v, float)})
    per_corpus: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for name, row in summary["per_class"].items():
        if row["support"]:
            per_corpus[name.split("/")[0]].append((row["recall"], row["support"]))
    for corpus, rows in sorted(per_corpus.items()):
        n = sum(s for _, s in rows)
        hits = sum(r * s for r, s in rows)
        print(f"{corpus}: speakers {len(rows)}, utterances {n}, accuracy {hits / n:.4f}, "
              f"mean recall {np.mean([r for r, _ in rows]):.4f}")


def trial_eers(manifest: str, trials_jsonl: str) -> None:
    rows = {r.audio: r for r in read_manifest(manifest)}
    scored = [json.loads(line) for line in Path(trials_jsonl).read_text().splitlines() if line.strip()]
    failed = [s["path"] for s in scored if "error" in s]
    if failed:
        raise SystemExit(f"{trials_jsonl}: {len(failed)} files were not scored, e.g. {failed[0]}")
    scored.sort(key=lambda s: rows[s["path"]].key)  # a stable order: trials drawn from it are reproducible
    speaker = [str(rows[s["path"]].speaker) for s in scored]
    corpus = np.array([rows[s["path"]].corpus for s in scored])
    emb = np.asarray([s["embedding"] for s in scored], dtype=np.float32)

    def report(label: str, pick: np.ndarray | None = None) -> None:
        idx = np.arange(len(scored)) if pick is None else pick
        t = make_trials([speaker[i] for i in idx], max_target=20000, max_nontarget=20000, seed=0)
        scores = cosine_scores(emb[idx], t)
        print(f"{label}: {len(t)} trials, {int(t.target.sum())} target, EER {eer(scores, t.target)[0]:.4f}")

    report("all trials")
    t = make_trials(speaker, max_target=20000, max_nontarget=20000, seed=0)
    same = corpus[t.left] == corpus[t.right]
    scores = cosine_scores(emb, t)
    print(f"within-corpus trials only: {int(same.sum())} trials, {int(t.target[same].sum())} target, "
          f"EER {eer(scores[same], t.target[same])[0]:.4f}")
    for c in sorted(set(corpus)):
        report(f"{c} only trials", np.flatnonzero(corpus == c))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    audio = sub.add_parser("audio", help="print the audio path of every manifest row")
    audio.add_argument("manifest")
    rep = sub.add_parser("report", help="accuracy per corpus and the EERs")
    rep.add_argument("heldout_metrics", help="metrics.json of ssl-ser evaluate on the held-out utterances")
    rep.add_argument("manifest", help="the trial manifest")
    rep.add_argument("trials", help="ssl-ser predict --embeddings output for the trial manifest's audio")
    args = parser.parse_args(argv)
    if args.action == "audio":
        for row in read_manifest(args.manifest):
            print(row.audio)
        return 0
    accuracy_per_corpus(args.heldout_metrics)
    trial_eers(args.manifest, args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
