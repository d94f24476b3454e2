"""``ssl-ser demo``: the whole pipeline on a generated corpus, no download needed.

A sequence of small steps, each taking and returning paths, so a new step (train, evaluate)
is one more function called from :func:`run_demo`:

1. :func:`generate_corpus`: the synthetic corpus (:mod:`ssl_ser.data.synthetic`);
2. :func:`prepare_manifests`: the ``synthetic`` recipe's rows, split into the parts below;
3. :func:`build_shard_sets`: one shard set per part.

Parts: ``train_labelled``, ``train_unlabelled``, ``valid``, ``test`` (speaker independent)
and ``noise`` (for noise augmentation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ssl_ser.data.synthetic import SyntheticConfig

PARTS = ("train_labelled", "train_unlabelled", "valid", "test", "noise")
DEMO_MAX_COUNT = 32
"""Small shards, so that even the demo streams several shards per set."""

Log = Callable[[str], None]


@dataclass
class DemoPaths:
    out: Path
    corpus: Path
    manifests: dict[str, Path] = field(default_factory=dict)
    shards: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def under(cls, out: str | Path) -> DemoPaths:
        out = Path(out)
        return cls(out=out, corpus=out / "corpus",
                   manifests={p: out / "manifests" / f"{p}.jsonl" for p in PARTS},
                   shards={p: out / "shards" / p for p in PARTS})


def generate_corpus(paths: DemoPaths, cfg: SyntheticConfig | None = None, *,
                    workers: int = 1) -> Path:
    """Write the synthetic corpus (replacing an earlier demo's: generation is deterministic)."""
    from ssl_ser.data.synthetic import generate

    return generate(paths.corpus, cfg, workers=workers, overwrite=True)


def part_of(row: object) -> str | None:
    """Which demo part a manifest row belongs to."""
    split, labelled = getattr(row, "split"), getattr(row, "labelled")
    if split == "train":
        return "train_labelled" if labelled else "train_unlabelled"
    return split if split in PARTS else None


def prepare_manifests(paths: DemoPaths) -> dict[str, Path]:
    from ssl_ser.data.corpora import prepare
    from ssl_ser.data.manifest import write_manifest

    rows = prepare("synthetic", paths.corpus)
    for part, manifest in paths.manifests.items():
        write_manifest([r for r in rows if part_of(r) == part], manifest)
    return paths.manifests


def build_shard_sets(paths: DemoPaths, *, workers: int = 1, progress: bool = True,
                     log: Log = print) -> dict[str, Path]:
    from ssl_ser.data.shards import build_shards

    for part in PARTS:
        report = build_shards(paths.manifests[part], paths.shards[part], max_count=DEMO_MAX_COUNT,
                              workers=workers, overwrite=True, progress=progress)
        log(f"  {part:<17} {report.summary()}")
    return paths.shards


def run_demo(out: str | Path = "demo_out", cfg: SyntheticConfig | None = None, *,
             workers: int = 1, progress: bool = True, log: Log = print) -> DemoPaths:
    import time

    paths = DemoPaths.under(out)
    started = time.perf_counter()
    log(f"[1/3] generating the synthetic corpus in {paths.corpus}")
    generate_corpus(paths, cfg, workers=workers)
    log(f"[2/3] preparing manifests in {paths.out / 'manifests'}")
    for part, manifest in prepare_manifests(paths).items():
        rows = sum(1 for line in manifest.read_text().splitlines() if line.strip())
        log(f"  {part:<17} {rows:4d} rows  {manifest}")
    log(f"[3/3] building shard sets in {paths.out / 'shards'}")
    build_shard_sets(paths, workers=workers, progress=progress, log=log)
    log(f"done in {time.perf_counter() - started:.1f} s")
    return paths
