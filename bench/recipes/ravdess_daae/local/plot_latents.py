"""2-D t-SNE of DAAE latent codes, coloured by emotion and by corpus (daae_latents.png here).

    python local/plot_latents.py --run DAAE_RUN "DAAE" --run PLAIN_RUN "no adversary" \
        --sets SHARDS [SHARDS ...] --per-set 200 --out daae_latents.png

Each run's best checkpoint is rebuilt with ``Predictor.from_checkpoint``; every utterance's
latent code R_l is averaged over its frames and segments (``ssl_ser.methods.daae.latent_pass``).
Up to ``--max-utterances`` are read from each shard set in order and ``--per-set`` of them kept
at an even stride. One row per run: t-SNE (scikit-learn, on standardised codes) coloured by the
four-class emotion (grey: no emotion or a dropped one) and by corpus. The title of each row
gives the accuracy of a fresh linear probe predicting the corpus and the speaker from the codes
(fit on half of each class' utterances, tested on the other half).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np
import torch

from ssl_ser.data.stream import make_stream
from ssl_ser.inference import Predictor
from ssl_ser.labels import IGNORE
from ssl_ser.methods.daae import corpus_speaker_space
from ssl_ser.probes import latent_pass, probe_accuracy


def codes(predictor: Predictor, specs: list[str], per_set: int, max_utterances: int,
          batch_size: int = 32) -> tuple[np.ndarray, list[dict[str, Any]], list[str]]:
    emb, meta, keys = [], [], []
    for spec in specs:
        batches = make_stream(spec, mode="exact", batch_size=batch_size, num_workers=0, max_seconds=30.0)
        parts = latent_pass(predictor, batches, max_batches=-(-max_utterances // batch_size))
        stride = max(1, len(parts["keys"]) // per_set)
        pick = list(range(0, len(parts["keys"]), stride))[:per_set]
        emb.append(np.concatenate(parts["emb"])[pick])
        meta += [parts["meta"][i] for i in pick]
        keys += [parts["keys"][i] for i in pick]
    return np.concatenate(emb), meta, keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=2, action="append", required=True, metavar=("RUN", "TITLE"))
    parser.add_argument("--sets", nargs="+", required=True, help="shard sets whose utterances are plotted")
    parser.add_argument("--per-set", type=int, default=200)
    parser.add_argument("--max-utterances", type=int, default=640)
    parser.add_argument("--out", default="daae_latents.png")
    parser.add_argument("--json", help="also write each row's utterance counts and probe accuracies here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    speakers = corpus_speaker_space(args.sets)
    summary = []
    fig, axes = plt.subplots(len(args.run), 2, figsize=(11, 5 * len(args.run)), squeeze=False)
    for row, (run, title) in enumerate(args.run):
        predictor, _ = Predictor.from_checkpoint(run)
        emb, meta, keys = codes(predictor, args.sets, args.per_set, args.max_utterances)
        xy = TSNE(n_components=2, perplexity=30, init="pca", random_state=0).fit_transform(
            StandardScaler().fit_transform(emb))
        emotion = np.asarray(predictor.labels.encode_all(meta))
        corpora = sorted({m["corpus"] for m in meta})
        corpus = np.asarray([corpora.index(m["corpus"]) for m in meta])
        speaker = np.asarray(speakers.encode_all(meta))
        corpus_probe = probe_accuracy(emb, corpus, keys)
        speaker_probe = probe_accuracy(emb, speaker, keys)
        left, right = axes[row]
        none = emotion == IGNORE
        left.scatter(xy[none, 0], xy[none, 1], s=6, c="lightgrey", label="no / dropped emotion")
        for i, name in enumerate(predictor.labels.classes):
            sel = emotion == i
            left.scatter(xy[sel, 0], xy[sel, 1], s=8, label=name, color=f"C{i}")
        for i, name in enumerate(corpora):
            sel = corpus == i
            right.scatter(xy[sel, 0], xy[sel, 1], s=8, label=name, color=f"C{i + 4}")
        left.set_title(f"{title}: by emotion\n(grey: no emotion or one outside the four classes)")
        right.set_title(f"{title}: by corpus\n(linear probe on these codes: corpus {corpus_probe:.2f}, "
                        f"speaker {speaker_probe:.2f})")
        for ax in (left, right):
            ax.legend(markerscale=2, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        print(f"{title}: {len(keys)} utterances, corpus probe {corpus_probe:.3f}, "
              f"speaker probe {speaker_probe:.3f}", flush=True)
        summary.append({"run": run, "title": title, "utterances": len(keys),
                        "per_corpus": {c: int((corpus == i).sum()) for i, c in enumerate(corpora)},
                        "speakers": int(len(set(speaker[speaker != IGNORE].tolist()))),
                        "corpus_probe": corpus_probe, "speaker_probe": speaker_probe})
    fig.suptitle("DAAE latent codes R_l (utterance means), t-SNE")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
