"""Speaker-free diagnostics on the functionals job's vectors (round 6 of the recipe README).

    python speaker_free.py --manifest EXP/manifests/ravdess.jsonl --folds-json CV_DIR/folds.json \
        --cache EXP/speaker_free/feats.npz [--table classifiers|speakers|both] \
        [--extra-manifest OTHER.jsonl --extra-cache OTHER.npz]

Every utterance's functional vector is computed once with the functionals job's front-end
(128 log-mels of 64-ms frames, 20 cepstra; cached in --cache). The folds, with their training,
validation and test actors, are read from an `ssl-ser cv` directory's folds.json, so the splits
are the toolkit's own. No statistic of a validation or test actor is used unless a row says so.

- ``classifiers``: speaker-free heads on the vectors, standardised with the training actors'
  statistics: logistic regression, the job's MLP (512, dropout 0.5, Adam 1e-3, cosine, 40 epochs,
  batch 32), the MLP with a gradient-reversal speaker head (DANN, Ganin and Lempitsky 2015;
  the reversal ramps in over 10 epochs) and the MLP on statistics taken per gender of the
  training actors (RAVDESS's odd actors are male; the gender of each test actor is read from
  the corpus: an oracle, so an upper bound for that lever). Cells: the mean over folds of the
  mean validation UA of the last 5 epochs (the recipe's selection signal) and test UA at the
  last epoch (mean ± sd over folds).
- ``speakers``: how test UA grows with the number of training actors. For each fold and N in
  ``--actors`` (4, 8, 12, 16, 20), three seeded draws of N of the fold's 20 training + validation actors train
  the MLP for 40 epochs (no selection), with the training actors' pooled statistics (speaker-
  free) and with every actor standardised by their own statistics (speaker-normalised, as
  `frontend.speaker_norm` does with all of a test actor's utterances).
- with ``--extra-manifest``: the MLP of ``classifiers`` with every utterance of another corpus
  added to each fold's training actors (its emotions must be among the folds' classes; the
  standardisation keeps the fold's own training actors' statistics): do more speakers help when
  they come from another corpus?
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ssl_ser.audio import load
from ssl_ser.features import build_frontend
from ssl_ser.metrics import classification_report
from ssl_ser.models.layers import GradientReversal

FRONTEND = {"base": {"name": "logmel", "n_mels": 128, "n_fft": 1024, "hop_length": 256}, "cepstra": 20}


def vectors(manifest: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(functionals [N, D], emotion [N], speaker [N], key [N]) of every manifest row; cached,
    and recomputed when the cache holds other keys than the manifest (another manifest, or an
    edited one)."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    data = dict(np.load(cache)) if cache.is_file() else {}
    if "key" not in data or data["key"].tolist() != [r["key"] for r in rows]:
        frontend = build_frontend("functionals", **FRONTEND).eval()
        feats = []
        with torch.no_grad():
            for row in rows:
                try:
                    wave = load(row["audio"])
                except Exception as err:  # one line naming the file, not a traceback
                    raise SystemExit(f"speaker_free.py: {manifest}: cannot read {row['audio']}: {err}") from None
                vector, _ = frontend.compute(wave[None], torch.tensor([wave.shape[-1]]))
                feats.append(vector[0, :, 0].numpy())
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = {"x": np.stack(feats), "emotion": np.array([r["emotion"] for r in rows]),
                "speaker": np.array([r["speaker"] for r in rows]), "key": np.array([r["key"] for r in rows])}
        np.savez(cache, **data)
    return data["x"], data["emotion"], data["speaker"], data["key"]


def actors(groups: list[str]) -> list[str]:
    """'ravdess-08' -> '08' (the cv's speaker groups)."""
    return [g.rsplit("-", 1)[1] for g in groups]


def standardise(x: np.ndarray, speaker: np.ndarray, train: np.ndarray, mode: str) -> np.ndarray:
    """'pooled': the training rows' statistics for every row; 'gender': those of the training
    rows of the row's gender (odd RAVDESS actors are male); 'speaker': each speaker's own."""
    out = np.empty_like(x)
    if mode == "pooled":
        groups = [(np.ones(len(x), bool), train)]
    elif mode == "gender":
        male = np.array([int(s) % 2 == 1 for s in speaker])
        groups = [(male == g, train & (male == g)) for g in (True, False)]
    else:
        groups = [(speaker == s, speaker == s) for s in np.unique(speaker)]
    for rows, stats in groups:
        out[rows] = (x[rows] - x[stats].mean(0)) / (x[stats].std(0) + 1e-5)
    return out


def fit(z: np.ndarray, y: np.ndarray, speaker: np.ndarray, train: np.ndarray, scored: dict[str, np.ndarray],
        *, hidden: bool = True, reversal: float = 0.0, seed: int = 0, epochs: int = 40) -> dict[str, list[float]]:
    """Train on ``train`` rows; UA of each ``scored`` row set after every epoch."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, labels = torch.tensor(z, dtype=torch.float32), torch.tensor(y)
    width = 512 if hidden else x.shape[1]
    body = nn.Sequential(nn.Linear(x.shape[1], 512), nn.ReLU(), nn.Dropout(0.5)) if hidden else nn.Identity()
    head = nn.Linear(width, int(labels.max()) + 1)
    names = sorted(set(speaker[train]))
    spk = torch.tensor([names.index(s) if s in names else -1 for s in speaker])
    grl = GradientReversal(0.0)
    adversary = nn.Sequential(nn.Linear(width, 256), nn.ReLU(), nn.Linear(256, len(names)))
    params = [*body.parameters(), *head.parameters(), *(adversary.parameters() if reversal else [])]
    opt = torch.optim.Adam(params, 1e-3, weight_decay=1e-4)
    index = np.flatnonzero(train)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-len(index) // 32))
    curves: dict[str, list[float]] = {name: [] for name in scored}
    classes = [str(c) for c in range(head.out_features)]
    for epoch in range(epochs):
        body.train()
        grl.lambda_ = reversal * min(1.0, epoch / 10)
        order = index[torch.randperm(len(index), generator=g).numpy()]
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            h = body(x[batch])
            loss = F.cross_entropy(head(h), labels[batch])
            if reversal:
                loss = loss + F.cross_entropy(adversary(grl(h)), spk[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        body.eval()
        with torch.no_grad():
            pred = head(body(x)).argmax(1).numpy()
        for name, rows in scored.items():
            curves[name].append(classification_report(y[rows], pred[rows], classes)["ua"])
    return curves


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def fold_row(label: str, folds: list[dict], speaker: np.ndarray,
             train_fold: Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, list[float]]]) -> None:
    """One table row: ``train_fold(training rows, {"valid": rows, "test": rows})`` per fold, then
    the mean validation UA of the last 5 epochs and the last epoch's test UA over the folds."""
    valid, test = [], []
    for fold in folds:
        train, va, te = (np.isin(speaker, actors(fold[k])) for k in ("train", "valid", "test"))
        curves = train_fold(train, {"valid": va, "test": te})
        valid.append(statistics.mean(curves["valid"][-5:]))
        test.append(curves["test"][-1])
    print(f"| {label} | {statistics.mean(valid):.3f} | {mean_sd(test)} | {' '.join(f'{t:.3f}' for t in test)} |",
          flush=True)


def classifiers(x, y, speaker, folds) -> None:
    rows = [("logistic regression", dict(hidden=False), "pooled"),
            ("MLP (the job's head)", {}, "pooled"),
            ("MLP + speaker reversal 0.1", dict(reversal=0.1), "pooled"),
            ("MLP + speaker reversal 0.3", dict(reversal=0.3), "pooled"),
            ("MLP + speaker reversal 1.0", dict(reversal=1.0), "pooled"),
            ("MLP, statistics per gender (oracle gender)", {}, "gender")]
    print("| speaker-free head | valid UA, last 5 | test UA, last epoch | per fold |")
    print("|---|---|---|---|")
    for label, options, mode in rows:
        fold_row(label, folds, speaker, lambda train, scored, mode=mode, options=options:
                 fit(standardise(x, speaker, train, mode), y, speaker, train, scored, **options))


def speakers(x, y, speaker, folds, sizes: list[int]) -> None:
    print("\n| training actors | speaker-free test UA | speaker-normalised test UA |")
    print("|---|---|---|")
    for n in sizes:
        cells = {"pooled": [], "speaker": []}
        for f, fold in enumerate(folds):
            pool = sorted(actors(fold["train"]) + actors(fold["valid"]))
            if n > len(pool):
                raise SystemExit(f"speaker_free.py: --actors {n}: fold {fold['name']} has {len(pool)} training actors")
            te = np.isin(speaker, actors(fold["test"]))
            for draw in range(3):
                chosen = np.random.default_rng(1000 * f + draw).choice(pool, n, replace=False)
                train = np.isin(speaker, chosen)
                for mode in cells:
                    curves = fit(standardise(x, speaker, train, mode), y, speaker, train, {"test": te}, seed=draw)
                    cells[mode].append(curves["test"][-1])
        # sd over the 18 fold-draws
        print(f"| {n} | {mean_sd(cells['pooled'])} | {mean_sd(cells['speaker'])} |", flush=True)


def extra_corpus(x, y, speaker, folds, other: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    xo, yo, so = other
    xs, ys = np.concatenate([x, xo]), np.concatenate([y, yo])
    ss = np.concatenate([speaker, np.array([f"extra/{s}" for s in so])])
    extra = np.arange(len(xs)) >= len(x)
    print("\n| speaker-free MLP, training utterances | valid UA, last 5 | test UA, last epoch | per fold |")
    print("|---|---|---|---|")
    for label, add in (("the fold's training actors", False), ("+ every utterance of the other corpus", True)):
        fold_row(label, folds, ss, lambda train, scored, add=add:
                 fit(standardise(xs, ss, train, "pooled"), ys, ss, train | (extra & add), scored))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--folds-json", type=Path, required=True, help="an `ssl-ser cv` directory's folds.json")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--table", choices=("classifiers", "speakers", "both", "none"), default="both",
                        help="'none': only the --extra-manifest table")
    parser.add_argument("--extra-manifest", type=Path, help="another corpus for the 'extra corpus' table")
    parser.add_argument("--extra-cache", type=Path, help="where to keep the other corpus' vectors")
    parser.add_argument("--actors", type=int, nargs="+", default=[4, 8, 12, 16, 20],
                        help="training actors per draw in the 'speakers' table")
    args = parser.parse_args()
    if (args.extra_manifest is None) != (args.extra_cache is None):
        raise SystemExit("speaker_free.py: --extra-manifest and --extra-cache go together")
    for path in (args.manifest, args.folds_json, *([args.extra_manifest] if args.extra_manifest else [])):
        if not path.is_file():
            raise SystemExit(f"speaker_free.py: no such file: {path}")
    torch.set_num_threads(1)
    x, emotion, speaker, _ = vectors(args.manifest, args.cache)
    classes = sorted(map(str, set(emotion)))
    y = np.array([classes.index(e) for e in emotion])
    folds = json.loads(args.folds_json.read_text())["folds"]
    other = None
    if args.extra_manifest:  # read and checked before the tables take their minutes
        xo, emotion_o, speaker_o, _ = vectors(args.extra_manifest, args.extra_cache)
        unknown = sorted(map(str, set(emotion_o) - set(classes)))
        if unknown:
            raise SystemExit(f"speaker_free.py: {args.extra_manifest}: emotions {unknown} are not among {classes}")
        other = (xo, np.array([classes.index(e) for e in emotion_o]), speaker_o)
    if args.table in ("classifiers", "both"):
        classifiers(x, y, speaker, folds)
    if args.table in ("speakers", "both"):
        speakers(x, y, speaker, folds, args.actors)
    if other is not None:
        extra_corpus(x, y, speaker, folds, other)


if __name__ == "__main__":
    main()
