"""t-SNE of a DeepEmoCluster run's embeddings at its first and last clustering, coloured by
pseudo-label and by (hidden) emotion.

    python bench/recipes/ravdess_semi/local/embedding_map.py runs/dec_f2 manifests/fold2.labelled.jsonl \
        manifests/fold2.unlabelled.jsonl --shards shards/fold2/labelled shards/fold2/unlabelled --out map.png

The clustering at the start of epoch e embedded every training utterance with the model saved
after epoch e-1 and stored its pseudo-labels in the checkpoint of epoch e; so the map of epoch
e shows that model's embeddings (recomputed here, eval mode, whole utterances, as the
clustering saw them) coloured by those pseudo-labels. Needs the run's checkpoints of both
epochs (the recipe keeps every epoch's: ``train.num_to_keep: 40``) and scikit-learn (the dev
extra). Prints NMI and purity of the drawn assignment against the hidden emotions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ssl_ser import checkpoint as ckpt
from ssl_ser.data.manifest import read_manifest
from ssl_ser.evaluate import evaluate
from ssl_ser.methods.pseudo_table import PseudoLabelTable, key_hashes
from ssl_ser.metrics import nmi, purity


def checkpoints(run: Path) -> dict[int, Path]:
    """The run's intact checkpoints by epoch (a damaged one is left out, as ``find_checkpoint`` does)."""
    return {int(meta["epoch"]): directory for directory, meta in ckpt.checkpoints_of(run).items()}


def snapshot(run: Path, epoch: int, shards: list[str],
             found: dict[int, Path]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys, embeddings (model after epoch - 1) and pseudo-labels (clustering of ``epoch``)."""
    for needed in (epoch - 1, epoch):
        if needed not in found:
            raise SystemExit(f"{run}: no checkpoint of epoch {needed} (kept: {sorted(found)}); rerun with "
                             f"train.num_to_keep large enough to keep every epoch")
    result = evaluate(found[epoch - 1], shards, embeddings=True)
    keys, emb = result.predictions.keys, result.predictions.embeddings
    assert emb is not None
    table = PseudoLabelTable.from_state(ckpt.load_state(found[epoch])["method"]["table"])
    return keys, emb, table.lookup_hashes(key_hashes(keys))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("manifests", nargs="+", help="the training manifests (labelled, unlabelled)")
    parser.add_argument("--shards", nargs="+", required=True, help="their shard sets")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = {r.key: r for m in args.manifests for r in read_manifest(m)}
    history = [json.loads(x) for x in (args.run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    clustered = [int(r["epoch"]) for r in history if r.get("pre_reclustered") == 1]
    if not clustered:
        raise SystemExit(f"{args.run}: no epoch re-clustered (is it a DeepEmoCluster run?)")
    found = checkpoints(args.run)
    import matplotlib  # deferred: plotting only
    from sklearn.manifold import TSNE  # deferred: scikit-learn is a dev dependency, needed only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: after choosing the backend

    fig, axes = plt.subplots(2, 2, figsize=(11, 10))
    for row, epoch in enumerate((clustered[0], clustered[-1])):
        keys, emb, pseudo = snapshot(args.run, epoch, args.shards, found)
        emotion = [rows[k].emotion or (rows[k].extra or {}).get("hidden_emotion") for k in keys]
        labelled = np.array([bool(rows[k].labelled) for k in keys])
        classes = sorted({e for e in emotion if e})
        y = np.array([classes.index(e) for e in emotion])
        xy = TSNE(n_components=2, perplexity=30, init="pca", random_state=0).fit_transform(emb)
        hidden = ~labelled
        score = f"NMI {nmi(pseudo[hidden], y[hidden]):.3f}, purity {purity(pseudo[hidden], y[hidden]):.3f}"
        print(f"epoch {epoch}: {len(keys)} utterances; unlabelled clusters vs hidden emotions: {score}")
        for col, (colour, what) in enumerate(((pseudo, "pseudo-label (k-means cluster)"), (y, "emotion"))):
            ax = axes[row, col]
            cmap = "tab20" if col == 0 else "tab10"
            ax.scatter(xy[hidden, 0], xy[hidden, 1], c=colour[hidden], cmap=cmap, s=7, alpha=0.7,
                       vmin=0, vmax=colour.max())
            ax.scatter(xy[labelled, 0], xy[labelled, 1], c=colour[labelled], cmap=cmap, s=26, marker="^",
                       edgecolors="k", linewidths=0.4, vmin=0, vmax=colour.max())
            ax.set_title(f"epoch {epoch}: coloured by {what}" + (f"\n{score}" if col == 0 else ""), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 1:
                for i, name in enumerate(classes):
                    ax.scatter([], [], color=plt.get_cmap("tab10")(i / max(len(classes) - 1, 1)), label=name, s=12)
                ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{args.run.name}: t-SNE of the clustered embeddings (triangles: labelled 20 %; dots: "
                 f"unlabelled, coloured by their hidden emotion on the right)", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
