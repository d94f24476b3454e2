"""How much does speaker normalisation need of a new speaker's audio? Test UA per enrolment size.

    python enrolment.py CV_DIR [CV_DIR ...] [--which best|latest] [--sizes 0 5 10 30]
                        [--prior K [K ...]] [--actors test|valid] [--draws 5] [--per-fold]

`ssl-ser cv` normalises each test actor with statistics of all 60 of their own test utterances
(transductive). A deployment meets a new speaker with a few utterances, or one. Here each test
actor's utterances are split in two halves at random: **enrolment** (A) and **scored**
(B). For each size n, the actor's statistics come from n utterances drawn from A (their audio
only, no labels), and B is scored; n = 0 uses the pooled statistics of the training actors
(what `ssl-ser predict` does for an unknown speaker; n = 1 is degenerate for a one-frame
front-end such as `functionals`: the sd of one vector is 0). "all 60" fits the statistics on A and B
together, as cv does, and scores the same B, so every column scores the same utterances.
With ``--prior K`` (several: one row each) each actor's statistics are shrunk towards the training actors' pooled ones
as ``frontend.speaker_prior: K`` does (``SpeakerNorm.shrunk``). ``--actors valid`` scores each
fold's validation actors instead of its test actors, which is where K is chosen.
Each fold's UA is the mean over ``--draws`` seeded halvings and enrolment draws (which
utterances a few-utterance enrolment happens to hold moves a fold's UA by several points); the
rows are the mean ± sample sd over folds (``--per-fold``: every fold's too).
Needs the checkpoints, so a run whose `ssl-ser cv` kept them; segment models are refused.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from ssl_ser.data.stream import make_stream
from ssl_ser.evaluate import add_speaker_statistics
from ssl_ser.folds import FOLDS_FILE
from ssl_ser.inference import Predictor
from ssl_ser.metrics import classification_report
from ssl_ser.speaker_norm import SpeakerNorm, speaker_keys

ALL = -1


def test_features(predictor: Predictor,
                  shards: list[Path]) -> tuple[list[torch.Tensor], list[dict[str, Any]], list[int]]:
    """Per test utterance: un-normalised features [D, T], manifest row, gold label index."""
    feats: list[torch.Tensor] = []
    metas: list[dict[str, Any]] = []
    labels: list[int] = []
    stream = make_stream([str(s) for s in shards], mode="exact", batch_size=16, crop_seconds=None,
                         max_seconds=30.0, num_workers=0)
    predictor.frontend.eval()
    with torch.no_grad():
        for batch in stream:
            f, frames = predictor.frontend(batch.audio, batch.lengths)
            for row, n in enumerate(frames.tolist()):
                feats.append(f[row, :, :n])
            metas += batch.meta
            labels += predictor.labels.encode_all(batch.meta)
    return feats, metas, labels


class Computed(torch.nn.Module):
    """The front-end of a batch whose ``audio`` already holds the features."""

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return feats, frames


def enrolled(norm: SpeakerNorm, feats: list[torch.Tensor], metas: list[dict[str, Any]], rows: list[int],
             prior: float) -> SpeakerNorm:
    """The training actors' pooled statistics plus each speaker's own from ``rows``, fitted (and
    shrunk by ``prior``) by the code `ssl-ser evaluate` uses for speakers new to a checkpoint."""
    empty = SpeakerNorm([], norm.mean[:0], norm.std[:0], norm.global_mean, norm.global_std)
    empty.prior = prior
    holder = SimpleNamespace(frontend=Computed(), device=torch.device("cpu"), speaker_norm=empty)
    batch = SimpleNamespace(audio=pad_sequence([feats[i].T for i in rows], batch_first=True).transpose(1, 2),
                            lengths=torch.tensor([feats[i].shape[-1] for i in rows]), meta=[metas[i] for i in rows])
    batch.to = lambda _device: batch
    add_speaker_statistics(holder, [batch])  # type: ignore[arg-type]
    return holder.speaker_norm


def scores(predictor: Predictor, feats: list[torch.Tensor], metas: list[dict[str, Any]], labels: list[int],
           sizes: list[int], seed: int, prior: float = 0.0) -> dict[int, float]:
    norm = predictor.speaker_norm
    assert norm is not None
    speakers = speaker_keys(metas)
    rng = np.random.default_rng(seed)
    halves: dict[str, tuple[list[int], list[int]]] = {}
    for speaker in sorted(set(speakers)):
        rows = rng.permutation([i for i, s in enumerate(speakers) if s == speaker]).tolist()
        halves[speaker] = (rows[: len(rows) // 2], rows[len(rows) // 2:])
    scored = sorted(i for _, b in halves.values() for i in b)
    out = {}
    for n in sizes:
        rows = [i for a, b in halves.values() if n
                for i in (a + b if n == ALL else rng.choice(a, size=min(n, len(a)), replace=False).tolist())]
        # n = 0: no speaker's statistics, every row takes the training actors' pooled ones
        fitted = enrolled(norm, feats, metas, rows, prior) if n else norm
        predictions = []
        with torch.no_grad():
            for i in scored:
                x, frames = feats[i][None], torch.tensor([feats[i].shape[-1]])
                x = fitted(x, frames, [speakers[i] if n else None])
                predictions.append(int(predictor.model(x, frames)["logits"].argmax(-1)))
        gold = np.array([labels[i] for i in scored])
        out[n] = classification_report(gold, np.array(predictions), list(predictor.labels.classes))["ua"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cv_dirs", nargs="+", type=Path)
    parser.add_argument("--which", default="best", choices=["best", "latest"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[0, 5, 10, 30])
    parser.add_argument("--draws", type=int, default=5,
                        help="halvings and enrolment draws to average over (seeds 0..draws-1; default 5)")
    parser.add_argument("--prior", nargs="+", type=float, default=[0.0],
                        help="speaker_prior values, in utterances (default 0)")
    parser.add_argument("--actors", default="test", choices=["test", "valid"])
    parser.add_argument("--per-fold", action="store_true", help="also print every fold's row")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [*args.sizes, ALL]
    head = " | ".join("pooled (n = 0)" if n == 0 else "all 60 (cv)" if n == ALL else f"n = {n}" for n in sizes)
    print(f"UA on the {args.actors} actors' scored halves\n\n| run | speaker_prior | fold | {head} |\n"
          f"|---|---|---|" + "---|" * len(sizes))
    for cv_dir in args.cv_dirs:
        plan = json.loads((cv_dir / FOLDS_FILE).read_text())
        per_fold: dict[float, list[dict[int, float]]] = {k: [] for k in args.prior}
        for fold in plan["folds"]:
            predictor, _ = Predictor.from_checkpoint(cv_dir / fold["name"], which=args.which)
            if predictor.segment is not None or predictor.speaker_norm is None:
                raise SystemExit(f"enrolment.py: {cv_dir / fold['name']} is a segment model or has no "
                                 f"speaker normalisation")
            if not fold[args.actors]:
                raise SystemExit(f"enrolment.py: {cv_dir / fold['name']} has no {args.actors} actors")
            predictor.model.eval()
            feats, metas, labels = test_features(predictor, [cv_dir / "groups" / g for g in fold[args.actors]])
            for k in args.prior:
                draws = [scores(predictor, feats, metas, labels, sizes, seed, k) for seed in range(args.draws)]
                ua = {n: statistics.mean(d[n] for d in draws) for n in sizes}
                per_fold[k].append(ua)
                if args.per_fold:
                    print(f"| {cv_dir.name} | {k:g} | {fold['index'] + 1} | "
                          + " | ".join(f"{ua[n]:.3f}" for n in sizes) + " |", flush=True)
        for k, folds in per_fold.items():
            cells = [f"{statistics.mean(f[n] for f in folds):.3f} ± {statistics.stdev(f[n] for f in folds):.3f}"
                     for n in sizes]
            print(f"| {cv_dir.name} | {k:g} | mean | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
