"""How much k-means alone moves DeepEmoCluster's pseudo-labels: a yardstick for the bank's
agreement with the full pass (``pre_nmi_full``).

    python bench/recipes/ravdess_bank/local/kmeans_spread.py runs/full_f1 shards/fold1/labelled shards/fold1/unlabelled

Embeds the training sets with the run's latest checkpoint (eval mode, whole utterances: the
full pass) and clusters them as the method does (K, iterations and mode from the run's job),
then prints the NMI between that clustering and (a) the same with another seed, (b) the same
seed on the float16-rounded embeddings (the bank's storage), (c) the same seed on the points in
another order.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ssl_ser.config import from_dict, read_yaml
from ssl_ser.distributed import LocalCollective
from ssl_ser.evaluate import evaluate
from ssl_ser.methods.deepemocluster import DeepEmoClusterOptions, epoch_seed
from ssl_ser.methods.pseudo_labels import cluster
from ssl_ser.metrics import nmi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("shards", nargs="+")
    args = parser.parse_args()
    result = evaluate(args.run, args.shards, which="latest", embeddings=True)
    pred = result.predictions
    assert pred.embeddings is not None
    job_method = {k: v for k, v in read_yaml(f"{args.run}/config.yaml")["method"].items() if k != "name"}
    opts = from_dict(DeepEmoClusterOptions, job_method, prefix="method")
    x, keys = pred.embeddings.astype(np.float32), list(pred.keys)
    none = np.full(len(keys), -1)

    def run(points: np.ndarray, names: list[str], seed: int) -> dict[str, int]:
        p = cluster(names, points, none[:len(names)], opts.num_clusters, seed=seed, cfg=opts.kmeans,
                    comm=LocalCollective())
        return dict(zip(names, p.assignment.tolist()))

    def agree(a: dict[str, int], b: dict[str, int]) -> float:
        return nmi(np.array([a[k] for k in keys]), np.array([b[k] for k in keys]))

    seed_a, seed_b = epoch_seed(0, 7, "kmeans"), epoch_seed(0, 8, "kmeans")
    base = run(x, keys, seed_a)
    order = np.random.default_rng(0).permutation(len(keys))
    print(f"{args.run}: {len(keys)} embeddings, K = {opts.num_clusters}")
    print(f"  NMI, another k-means seed:              {agree(base, run(x, keys, seed_b)):.3f}")
    rounded = x.astype(np.float16).astype(np.float32)
    print(f"  NMI, float16-rounded embeddings:        {agree(base, run(rounded, keys, seed_a)):.3f}")
    shuffled = run(x[order], [keys[i] for i in order], seed_a)
    print(f"  NMI, the points in another order:       {agree(base, shuffled):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
