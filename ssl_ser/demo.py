"""``ssl-ser demo``: the system's main job on a generated corpus, no download needed.

A sequence of small steps, each taking and returning paths, so a new step is one more
function called from :func:`run_demo`:

1. :func:`generate_corpus`: the synthetic corpus (:mod:`ssl_ser.data.synthetic`);
2. :func:`prepare_manifests`: the ``synthetic`` recipe's rows, split into the parts below;
3. :func:`build_shard_sets`: one shard set per part;
4. :func:`write_jobs`: the demo job (``ssl_ser/resources/jobs/demo.yaml``: DeepEmoCluster on
   the labelled + unlabelled parts) and its supervised-only twin, with this demo's paths;
5. :func:`train`: both through the trainer, on local Ray Train with 2 workers (or, with
   ``--debug``, in one process); every epoch of DeepEmoCluster re-clusters, and
   :func:`cluster_table` shows how its clusters agree with the unlabelled part's hidden labels;
6. :func:`evaluate`: both models on the held-out test speakers, side by side.

Parts: ``train_labelled``, ``train_unlabelled``, ``valid``, ``test`` (speaker independent)
and ``noise`` (for noise augmentation).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ssl_ser.config import apply_overrides, read_yaml
from ssl_ser.data.manifest import Utterance, write_manifest
from ssl_ser.data.shard_index import read_index
from ssl_ser.data.shards import build_shards
from ssl_ser.data.synthetic import SyntheticConfig, generate
from ssl_ser.evaluate import evaluate as evaluate_run
from ssl_ser.evaluate import write_results
from ssl_ser.job import run_dir
from ssl_ser.job_loader import load_job
from ssl_ser.train.runner import run_training

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

    @property
    def results(self) -> Path:
        return self.out / "results"


def generate_corpus(paths: DemoPaths, cfg: SyntheticConfig | None = None, *,
                    workers: int = 1) -> Path:
    """Write the synthetic corpus (replacing an earlier demo's: generation is deterministic)."""

    return generate(paths.corpus, cfg, workers=workers, overwrite=True)


def part_of(row: Utterance) -> str | None:
    """Which demo part a manifest row belongs to."""
    split, labelled = row.split, row.labelled
    if split == "train":
        return "train_labelled" if labelled else "train_unlabelled"
    return split if split in PARTS else None


def prepare_manifests(paths: DemoPaths) -> dict[str, Path]:
    # deferred: the registry imports every plug-in module; only when looked up
    from ssl_ser.data.corpora import prepare

    rows = prepare("synthetic", paths.corpus)
    for part, manifest in paths.manifests.items():
        write_manifest([r for r in rows if part_of(r) == part], manifest)
    return paths.manifests


def build_shard_sets(paths: DemoPaths, *, workers: int = 1, progress: bool = True,
                     log: Log = print) -> dict[str, Path]:

    for part in PARTS:
        report = build_shards(paths.manifests[part], paths.shards[part], max_count=DEMO_MAX_COUNT,
                              workers=workers, overwrite=True, progress=progress)
        log(f"  {part:<17} {report.summary()}")
    return paths.shards


JOB_TEMPLATE = Path(__file__).resolve().parent / "resources" / "jobs" / "demo.yaml"
STEPS = 6
BASELINE = "supervised"
"""Name suffix of the supervised-only twin of the demo job."""
BASELINE_OVERRIDES = ("method={name: supervised}", "data.unlabelled=[]")
"""What turns the demo job into its baseline: the same model, frontend, labelled data, epochs
and checkpoint choice, trained on the labelled part alone (with as many training samples per
epoch as DeepEmoCluster draws from labelled + unlabelled audio, so both take the same number
of optimiser steps: :func:`write_jobs`)."""


def write_job(paths: DemoPaths, overrides: list[str] | tuple[str, ...] = (), *,
              file_name: str = "demo_job.yaml") -> Path:
    """The demo job with this demo's absolute paths, written to ``<out>/<file_name>``."""

    job = apply_overrides(read_yaml(JOB_TEMPLATE), overrides)
    out = paths.out.resolve()
    for section in ("train", "unlabelled", "valid", "test"):
        job["data"][section] = [str(out / p) for p in job["data"].get(section, [])]
    job["storage_path"] = str(out / job.get("storage_path", "runs"))
    path = paths.out / file_name
    path.write_text(f"# written by ssl-ser demo from {JOB_TEMPLATE.name}\n"
                    + yaml.safe_dump(job, sort_keys=False))
    return path


def write_jobs(paths: DemoPaths, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Path]:
    """The DeepEmoCluster job and its supervised-only baseline (``<name>_supervised``)."""

    job = apply_overrides(read_yaml(JOB_TEMPLATE), overrides)
    steps = job["data"].get("samples_per_epoch") or sum(
        read_index(paths.shards[p]).samples for p in ("train_labelled", "train_unlabelled"))
    baseline = [*overrides, *BASELINE_OVERRIDES, f"name={job['name']}_{BASELINE}",
                f"data.samples_per_epoch={steps}"]
    return {"deepemocluster": write_job(paths, overrides),
            BASELINE: write_job(paths, baseline, file_name=f"demo_job_{BASELINE}.yaml")}


def train(job_path: Path, *, ray: bool = False) -> Path:
    """Train a demo job from scratch; returns the run directory."""

    job = load_job(job_path)
    directory = run_dir(job)
    assert directory is not None  # the demo always stores locally
    shutil.rmtree(directory, ignore_errors=True)  # a demo is a fresh run, not a resume
    run_training(job, debug=not ray)
    return directory


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cluster_table(run: Path) -> str:
    """Per epoch of a DeepEmoCluster run: cluster sizes, agreement of the clusters with the
    hidden labels of the unlabelled part, and the validation UA (from its logs)."""
    sizes = {e["epoch"]: e["sizes"] for e in _jsonl(run / "events.jsonl") if e.get("event") == "recluster"}
    k = len(next(iter(sizes.values()), []))
    lines = [f"  epoch  {f'cluster sizes (K = {k})':<32} NMI hidden  purity hidden  valid UA"]
    for row in _jsonl(run / "metrics.jsonl"):
        epoch = row["epoch"]
        size = " ".join(f"{n:3d}" for n in sizes.get(epoch, [])) or "(kept)"
        lines.append(f"  {epoch:5d}  {size:<32} {_num(row.get('pre_nmi_hidden')):>10}  "
                     f"{_num(row.get('pre_purity_hidden')):>13}  {_num(row.get('valid_ua')):>8}")
    return "\n".join(lines)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def evaluate(run: Path, paths: DemoPaths) -> dict[str, Any]:
    """Score a run's best checkpoint (chosen on the validation speakers) on the test speakers,
    never seen in training or validation; writes metrics.json, predictions.jsonl and
    confusion.png under ``<out>/results/<run>/``."""

    result = evaluate_run(run, [str(paths.shards["test"])])
    summary = result.summary()
    summary["files"] = {k: str(v) for k, v in write_results(result, paths.results / run.name).items()}
    return summary


TITLES = {"deepemocluster": "DeepEmoCluster (labelled + unlabelled)",
          BASELINE: "supervised, labelled part only"}


def comparison(results: dict[str, dict[str, Any]]) -> str:
    lines = ["  model                                   UA     WA     macro F1  CCC mean  (epoch)"]
    for kind, summary in results.items():
        m = summary["metrics"]
        lines.append(f"  {TITLES[kind]:<38} {_num(m.get('ua'))}  {_num(m.get('wa'))}  {_num(m.get('macro_f1')):>8}  "
                     f"{_num(m.get('ccc_mean')):>8}  ({summary['epoch']})")
    n = next(iter(results.values()))["utterances"]
    lines.append(f"  ({n} test utterances of speakers never seen in training or validation; chance UA 0.25)")
    return "\n".join(lines)


EXPLAIN = """\
What the numbers mean:
  UA          unweighted accuracy: the mean of the per-class recalls (chance 0.25 for 4
              classes); the headline SER metric, insensitive to class imbalance. WA is plain
              accuracy, macro F1 the mean per-class F1, CCC mean the concordance of the
              predicted arousal/valence/dominance with the labels (1 = perfect).
  NMI hidden  how much the k-means clusters of the unlabelled utterances tell about their
              emotions, which training never sees (the corpus keeps them for analysis):
              0 = unrelated, 1 = the clusters are the emotions. Purity: the share of
              unlabelled utterances whose emotion is their cluster's most common one.
  (epoch)     the checkpoint scored: the best validation UA, chosen on the validation
              speakers, never on the test speakers."""


def run_demo(out: str | Path = "demo_out", cfg: SyntheticConfig | None = None, *,
             workers: int = 1, progress: bool = True, log: Log = print, train_model: bool = False,
             job_overrides: list[str] | tuple[str, ...] = (), ray: bool = True) -> DemoPaths:

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
    if not train_model:
        log(f"done in {time.perf_counter() - started:.1f} s")
        return paths
    jobs = write_jobs(paths, job_overrides)
    log(f"[4/{steps}] job configs: {jobs['deepemocluster']} (DeepEmoCluster, labelled + unlabelled) "
        f"and {jobs[BASELINE]} (the same model, supervised on the labelled part only)")
    how = "on local Ray Train" if ray else "in one process (--debug)"
    runs: dict[str, Path] = {}
    for kind, job_path in jobs.items():
        log(f"[5/{steps}] training {kind} {how}: ssl-ser train {job_path}{'' if ray else ' --debug'}")
        runs[kind] = train(job_path, ray=ray)
        log(f"  run directory: {runs[kind]}")
    log("\nDeepEmoCluster, per epoch: every epoch embeds every labelled and unlabelled training "
        "utterance and re-clusters them (k-means); the sizes are the clusters' utterance counts")
    log(cluster_table(runs["deepemocluster"]))
    log(f"\n[6/{steps}] evaluating both best checkpoints on the test speakers")
    results = {kind: evaluate(run, paths) for kind, run in runs.items()}
    log(comparison(results))
    log("\n" + EXPLAIN)
    log("\nWhere everything went:")
    log(f"  corpus, manifests, shards  {paths.corpus}, {paths.out / 'manifests'}, {paths.out / 'shards'}")
    for kind, run in runs.items():
        log(f"  {kind + ' run':<26} {run}: learning curves {run / 'curves.png'}, checkpoints "
            f"checkpoint_epoch-*, metrics.jsonl, events.jsonl, tensorboard/, config.yaml")
    for kind, summary in results.items():
        log(f"  {kind + ' test':<26} {Path(summary['files']['metrics']).parent}: "
            f"confusion.png, metrics.json, predictions.jsonl")
    epochs = len(_jsonl(runs["deepemocluster"] / "metrics.jsonl"))
    log(f"  to resume or extend a run: rerun its job, e.g. ssl-ser train {jobs['deepemocluster']} "
        f"--set train.epochs={epochs + 10}{'' if ray else ' --debug'}: it continues from its latest checkpoint")
    log(f"done in {time.perf_counter() - started:.1f} s")
    return paths
