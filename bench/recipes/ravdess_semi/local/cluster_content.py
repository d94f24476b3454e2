"""What do a DeepEmoCluster run's clusters follow? NMI of the pseudo-labels of the unlabelled
utterances with their hidden emotion and with what else RAVDESS records about them.

    python bench/recipes/ravdess_semi/local/cluster_content.py manifests/fold2.unlabelled.jsonl runs/dec_c_f2 [...]

Reads the pseudo-label table that each kept checkpoint stores (no model is run) and the
manifest rows: hidden emotion, actor, gender, statement (the two RAVDESS sentences),
intensity (normal / strong). One line per run: the mean NMI over its kept checkpoints with
each field, and the same for a shuffled assignment (the NMI that the cluster sizes alone give).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from ssl_ser import checkpoint as ckpt
from ssl_ser.data.manifest import read_manifest
from ssl_ser.labels import IGNORE
from ssl_ser.methods.pseudo_table import PseudoLabelTable, key_hashes
from ssl_ser.metrics import nmi

FIELDS = ("emotion", "actor", "gender", "statement", "intensity")


def fields(row) -> dict[str, str]:
    extra = row.extra or {}
    return {"emotion": str(extra.get("hidden_emotion")), "actor": str(row.speaker),
            "gender": str(extra.get("gender")), "statement": str(extra.get("statement")),
            "intensity": str(extra.get("intensity"))}


def codes(values: list[str]) -> np.ndarray:
    names = sorted(set(values))
    return np.array([names.index(v) for v in values])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", help="the fold's unlabelled manifest")
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    rows = read_manifest(args.manifest)
    hashes = key_hashes([r.key for r in rows])
    truth = {f: codes([fields(r)[f] for r in rows]) for f in FIELDS}
    rng = np.random.default_rng(0)
    print("| run | checkpoints | " + " | ".join(f"NMI {f}" for f in FIELDS) + " | shuffled (emotion) |")
    print("|---|---|" + "---|" * (len(FIELDS) + 1))
    for run in args.runs:
        scores: dict[str, list[float]] = {f: [] for f in (*FIELDS, "shuffled")}
        for directory in ckpt.checkpoints_of(run):  # a damaged checkpoint is left out
            state = ckpt.load_state(directory).get("method", {})
            if "table" not in state:
                continue  # a warm-up checkpoint: no clustering yet
            pseudo = PseudoLabelTable.from_state(state["table"]).lookup_hashes(hashes)
            has = pseudo != IGNORE
            for f in FIELDS:
                scores[f].append(nmi(pseudo[has], truth[f][has]))
            scores["shuffled"].append(nmi(rng.permutation(pseudo[has]), truth["emotion"][has]))
        if not scores["emotion"]:
            print(f"| {run.name} | 0 | " + " | ".join("–" for _ in range(len(FIELDS) + 1)) + " |")
            continue
        print(f"| {run.name} | {len(scores['emotion'])} | "
              + " | ".join(f"{statistics.mean(scores[f]):.3f}" for f in (*FIELDS, "shuffled")) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
