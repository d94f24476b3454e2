"""Memory of DeepEmoCluster's pseudo-label table at scale: what one rank holds after a
re-clustering, with the former layout against the one the method uses.

    python bench/perf/pseudo_label_table.py [--keys 10000000]

Former layout (before issue 15): the gathered key list (every rank got it) plus a ``dict``
key -> cluster. Now: :class:`ssl_ser.methods.pseudo_table.PseudoLabelTable`, one uint64 hash
per key (BLAKE2b, 8 bytes; two of 10M distinct keys collide with probability ~3e-6) sorted,
with int32 clusters, looked up with ``np.searchsorted``; built here from the key strings with
``from_keys`` (hashing and the collision check included; on a rank the strings are the
rank's own share and only the hashes are gathered). Both sides are built from the same
synthetic RAVDESS-style keys in one run; peak traced memory and a batch lookup are measured
for each, and the ratios printed.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from ssl_ser.methods.pseudo_table import PseudoLabelTable


def make_keys(n: int) -> list[str]:
    # RAVDESS-like sample keys, about 30 characters each
    return [f"corpus-03-01-{i % 8:02d}-01-{i // 8 % 100:02d}-{i:09d}" for i in range(n)]


def dict_table(keys: list[str], clusters: np.ndarray) -> dict[str, int]:
    return dict(zip(keys, clusters.tolist()))


def measure(build, *args) -> tuple[object, int, float]:
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    out = build(*args)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clusters = rng.integers(0, 1024, args.keys)
    keys, key_bytes, _ = measure(make_keys, args.keys)
    table, dict_bytes, dict_s = measure(dict_table, keys, clusters)
    compact, compact_bytes, compact_s = measure(PseudoLabelTable.from_keys, keys, clusters)

    batch = [keys[i] for i in rng.integers(0, args.keys, args.batch)]
    # CPU time of the process, not wall time: on a shared machine a preempted loop would count
    start = time.process_time()
    for _ in range(1000):
        from_dict = [table.get(k, -1) for k in batch]
    dict_lookup = (time.process_time() - start) / 1000
    start = time.process_time()
    for _ in range(1000):
        from_compact = compact.lookup(batch)
    compact_lookup = (time.process_time() - start) / 1000
    assert from_compact.tolist() == from_dict, "the two tables disagree"

    gib = 1024 ** 3
    print(f"{args.keys:,} keys, batches of {args.batch}")
    print(f"{'what':<44} {'memory':>10} {'build s':>8} {'lookup/batch':>13}")
    print(f"{'gathered key list (former layout)':<44} {key_bytes / gib:>8.2f} G {'':>8} {'':>13}")
    print(f"{'dict key -> cluster (former layout)':<44} {dict_bytes / gib:>8.2f} G {dict_s:>8.1f} "
          f"{dict_lookup * 1e6:>10.1f} us")
    print(f"{'PseudoLabelTable.from_keys (peak)':<44} {compact_bytes / gib:>8.2f} G {compact_s:>8.1f} "
          f"{compact_lookup * 1e6:>10.1f} us")
    print(f"{'  the table kept after building':<44} {compact.nbytes / gib:>8.2f} G")
    print(f"kept: former {(key_bytes + dict_bytes) / gib:.2f} G (key list + dict) against {compact.nbytes / gib:.2f} G "
          f"({(key_bytes + dict_bytes) / max(compact.nbytes, 1):.1f}x); building peaks at {compact_bytes / gib:.2f} G")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
