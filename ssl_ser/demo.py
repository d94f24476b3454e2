"""``ssl-ser demo``: the whole pipeline on a generated corpus, no download needed.

A sequence of small steps, each taking and returning paths, so a new step (train, evaluate)
is one more function called from :func:`run_demo`:

1. :func:`generate_corpus`: the synthetic corpus (:mod:`ssl_ser.data.synthetic`);
2. :func:`prepare_manifests`: the ``synthetic`` recipe's rows, split into the parts below;
3. :func:`build_shard_sets`: one shard set per part;
4. :func:`write_job`: the demo job (``ssl_ser/resources/jobs/demo.yaml``) with this demo's paths;
5. :func:`train`: ``ssl-ser train`` on it (debug mode: one process; or Ray Train);
6. :func:`evaluate`: the trained model on the held-out test speakers.

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


JOB_TEMPLATE = Path(__file__).resolve().parent / "resources" / "jobs" / "demo.yaml"
STEPS = 6


def write_job(paths: DemoPaths, overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """The demo job with this demo's absolute paths, written to ``<out>/demo_job.yaml``."""
    import yaml

    from ssl_ser.config import apply_overrides, read_yaml

    job = apply_overrides(read_yaml(JOB_TEMPLATE), overrides)
    out = paths.out.resolve()
    for section in ("train", "unlabelled", "valid", "test"):
        job["data"][section] = [str(out / p) for p in job["data"].get(section, [])]
    job["storage_path"] = str(out / job.get("storage_path", "runs"))
    path = paths.out / "demo_job.yaml"
    path.write_text(f"# written by ssl-ser demo from {JOB_TEMPLATE.name}\n"
                    + yaml.safe_dump(job, sort_keys=False))
    return path


def train(job_path: Path, *, ray: bool = False) -> Path:
    """Train the demo job from scratch; returns the run directory."""
    import shutil

    from ssl_ser.train.config import load_job
    from ssl_ser.train.runner import run_dir, run_training

    job = load_job(job_path)
    directory = run_dir(job)
    assert directory is not None  # the demo always stores locally
    shutil.rmtree(directory, ignore_errors=True)  # a demo is a fresh run, not a resume
    run_training(job, debug=not ray)
    return directory


def evaluate(run: Path, paths: DemoPaths, log: Log = print) -> dict[str, float]:
    """Score the best checkpoint on the test speakers (never seen in training or validation)."""
    from ssl_ser.data.stream import make_stream
    from ssl_ser.inference import Predictor

    predictor, meta = Predictor.from_checkpoint(run)
    stream = make_stream(paths.shards["test"], mode="exact", batch_size=16, num_workers=0)
    pred = predictor.score(predictor.predict(stream))
    classes = pred.report.get("classes", [])
    log(f"  checkpoint {meta['checkpoint']} (epoch {meta['epoch']})")
    log("  test: " + "  ".join(f"{k} {pred.metrics[k]:.3f}" for k in ("ua", "wa", "macro_f1", "weighted_f1")
                               if k in pred.metrics) + f"  ({int(pred.metrics['n'])} utterances)")
    for name, row in zip(classes, pred.report.get("confusion", [])):
        log(f"    {name:>10}: " + " ".join(f"{n:3d}" for n in row))
    return pred.metrics


def run_demo(out: str | Path = "demo_out", cfg: SyntheticConfig | None = None, *,
             workers: int = 1, progress: bool = True, log: Log = print, train_model: bool = False,
             job_overrides: list[str] | tuple[str, ...] = (), ray: bool = False) -> DemoPaths:
    import time

    paths = DemoPaths.under(out)
    steps = STEPS if train_model else 3
    started = time.perf_counter()
    log(f"[1/{steps}] generating the synthetic corpus in {paths.corpus}")
    generate_corpus(paths, cfg, workers=workers)
    log(f"[2/{steps}] preparing manifests in {paths.out / 'manifests'}")
    for part, manifest in prepare_manifests(paths).items():
        rows = sum(1 for line in manifest.read_text().splitlines() if line.strip())
        log(f"  {part:<17} {rows:4d} rows  {manifest}")
    log(f"[3/{steps}] building shard sets in {paths.out / 'shards'}")
    build_shard_sets(paths, workers=workers, progress=progress, log=log)
    if train_model:
        job_path = write_job(paths, job_overrides)
        log(f"[4/{steps}] job config: {job_path}")
        log(f"[5/{steps}] training ({'Ray Train' if ray else 'debug mode, one process'}): "
            f"ssl-ser train {job_path}{'' if ray else ' --debug'}")
        run = train(job_path, ray=ray)
        log(f"  run directory: {run} (checkpoints, metrics.jsonl, tensorboard/, config.yaml)")
        log(f"[6/{steps}] evaluating on the test speakers")
        evaluate(run, paths, log=log)
    log(f"done in {time.perf_counter() - started:.1f} s")
    return paths
