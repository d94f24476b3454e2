"""Cross-validation: every fold of a protocol (:mod:`ssl_ser.folds`: leave one speaker or
session out, K speaker-grouped folds, or a published fold list) trained and tested as its own run.

How folds become training runs: the job's labelled training shard sets are split once into
one shard set per (corpus, speaker, split) *group*, under ``<cv dir>/groups/`` (the audio is
taken from the shards themselves, so the original files are not needed). A fold is then just
a derived job, ``<job>-fold<i>``, whose ``data.train``/``valid``/``test`` list the shard sets of
its groups: every existing piece (stream, label histograms, speaker normalisation fitted over
all of a job's sets, checkpoints, resume) works unchanged, and disk holds one extra copy of
the corpus whatever the number of folds. The job's own ``valid``/``test`` sets are not used;
its ``unlabelled`` sets are kept as they are.

Each fold trains as its own run in ``<cv dir>/<job>-fold<i>`` and is then evaluated on its
test groups (``test/metrics.json``, ``test/predictions.jsonl``, ``test/confusion.png``).
Folds run one after another in this process (``debug``), or as Ray tasks, ``parallel`` at a
time, each with ``cpus_per_fold`` CPUs and ``gpus_per_fold`` (fractional) GPUs. A fold whose
final checkpoint and test evaluation exist is not rerun, and an interrupted fold resumes from
its latest checkpoint. The report gives per-fold numbers, their mean and (sample) standard
deviation, and UA/WA/F1 pooled over every test utterance of every fold, with its confusion
matrix (``cv_results.json``, ``confusion.png``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from ssl_ser import checkpoint as ckpt
from ssl_ser.config import from_dict, to_dict
from ssl_ser.cv_report import TEST_DIR, cv_report, format_score, summarise
from ssl_ser.data.histograms import class_histogram, index_of
from ssl_ser.data.manifest import Utterance, write_manifest
from ssl_ser.data.shard_index import open_url, read_index
from ssl_ser.data.shards import build_shards
from ssl_ser.data.stream import resolve_shards
from ssl_ser.errors import SslSerError
from ssl_ser.evaluate import evaluate, write_results
from ssl_ser.files import is_url, locked_directory, read_json, write_json
from ssl_ser.folds import (
    FOLDS_FILE,
    GROUPS_DIR,
    CvError,
    Fold,
    FoldList,
    Group,
    Plan,
    Protocol,
    make_folds,
    make_groups,
    protocol_name,
)
from ssl_ser.job import JobConfig, run_dir
from ssl_ser.job_loader import job_from_dict
from ssl_ser.labels import build_label_space
from ssl_ser.train.runner import preflight, run_local, save_resolved_config

Log = Callable[[str], None]


# --- splitting the shards into groups --------------------------------------------------------

def iter_shard_samples(specs: Sequence[str]) -> Iterator[tuple[dict[str, Any], bytes]]:
    """(manifest row, FLAC bytes) of every sample of the shard sets, in order. A shard that
    cannot be read stops everything: a fold must not silently lose data."""
    # deferred: webdataset only inside stream readers
    from webdataset.handlers import reraise_exception
    from webdataset.tariterators import (  # deferred: webdataset only inside stream readers
        group_by_keys,
        tar_file_expander,
    )

    for spec in specs:
        for url in resolve_shards(spec):
            try:
                with open_url(url) as stream:
                    files = tar_file_expander([{"url": url, "stream": stream}], handler=reraise_exception)
                    for sample in group_by_keys(files, handler=reraise_exception):
                        if "json" not in sample or "flac" not in sample:
                            raise CvError(f"{url}: sample {sample.get('__key__')!r} lacks its .json or .flac member")
                        yield json.loads(sample["json"]), sample["flac"]
            except CvError:
                raise
            except Exception as err:
                raise CvError(f"cannot read shard {url}: {type(err).__name__}: {err}") from None


def source_fingerprint(specs: Sequence[str]) -> list[dict[str, Any]]:
    """What the groups were made from: each shard set's index (manifest hash, sample count)."""

    out = []
    for spec in specs:
        index = index_of(spec)
        out.append({"shards": spec, "manifest_sha256": index.raw.get("manifest", {}).get("sha256"),
                    "samples": index.samples})
    return out


def split_into_groups(specs: Sequence[str], cv_dir: Path, log: Log = print) -> list[Group]:
    """Build ``cv_dir/groups/<group>/`` shard sets from the labelled training shard sets.

    Samples are read back from the shards (their 16-kHz FLAC, no original file needed),
    written to a scratch folder, and each group's manifest is sharded with
    :func:`~ssl_ser.data.shards.build_shards`. Groups already built from the same rows are kept.
    """

    root = cv_dir / GROUPS_DIR
    scratch = cv_dir / ".audio"
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        for row, flac in iter_shard_samples(specs):
            key = row["key"]
            if key in seen:
                raise CvError(f"sample key {key!r} occurs twice in data.train {list(specs)}")
            seen.add(key)
            path = scratch / f"{key}.flac"
            if not path.is_file() or path.stat().st_size != len(flac):
                path.write_bytes(flac)
            extra = {k: v for k, v in (row.get("extra") or {}).items() if k != "num_samples"}
            extra.setdefault("source_audio", row.get("audio"))
            rows.append({**row, "audio": str(path.resolve()), "extra": extra})
        groups = make_groups(rows, where=f"data.train {list(specs)}")
        by_group: dict[str, list[dict[str, Any]]] = {g.name: [] for g in groups}
        lookup = {(g.corpus, g.speaker, g.split): g.name for g in groups}
        for row in rows:
            by_group[lookup[(str(row.get("corpus") or ""), str(row["speaker"]), row.get("split"))]].append(row)
        for n, group in enumerate(groups, 1):
            manifest = root / f"{group.name}.jsonl"
            write_manifest((Utterance.from_dict(r, where=f"group {group.name}") for r in by_group[group.name]),
                           manifest)
            out = root / group.name
            digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
            try:
                if read_index(out).raw.get("manifest", {}).get("sha256") == digest:
                    continue
            except SslSerError:
                pass
            report = build_shards(manifest, out, workers=1, overwrite=True, progress=False)
            if report.rejected:
                raise CvError(f"group {group.name}: {report.rejected} sample(s) rejected while re-sharding "
                              f"(see {out}/rejects.jsonl)")
            if n % 10 == 0 or n == len(groups):
                log(f"cv: shard sets for {n}/{len(groups)} groups in {root}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return groups


def cv_dir_of(job: Any, protocol: Protocol) -> Path:
    if is_url(job.storage_path):
        raise CvError("cross-validation needs a local (or shared, mounted) storage_path; "
                      f"got {job.storage_path}")
    return Path(job.storage_path) / f"{job.name}-cv-{protocol_name(protocol)}"


def prepare(job: Any, protocol: Protocol, *, cv_dir: str | Path | None = None, valid_speakers: int = 1,
            log: Log = print) -> Plan:
    """Split the job's training shards into groups (once) and make the folds; a rerun checks
    that the data and folds are still those of the existing ``folds.json``."""

    directory = Path(cv_dir) if cv_dir is not None else cv_dir_of(job, protocol)
    directory.mkdir(parents=True, exist_ok=True)
    # two `ssl-ser cv --only` processes on one folder (one per core or node) would otherwise
    # split the shards at once and delete each other's scratch audio: the second waits for the
    # first, then finds the groups built
    with locked_directory(directory, on_busy=lambda: log(
            f"cv: waiting for another `ssl-ser cv` to finish splitting into {directory}")):
        return _prepare(job, protocol, directory, valid_speakers, log)


def _prepare(job: Any, protocol: Protocol, directory: Path, valid_speakers: int, log: Log) -> Plan:
    sources = source_fingerprint(job.data.train)
    stored = read_json(directory / FOLDS_FILE)
    if stored is not None and stored.get("sources") != sources:
        raise CvError(f"{directory} was made from other training shards ({stored.get('sources')}); "
                      f"use another --out or delete it")
    all_built = stored is not None and all(
        (directory / GROUPS_DIR / g["name"] / "index.json").is_file() for g in stored.get("groups", []))
    if all_built:
        groups = [Group(**g) for g in stored["groups"]]
    else:
        log(f"cv: splitting {', '.join(job.data.train)} into per-speaker shard sets")
        groups = split_into_groups(job.data.train, directory, log)
    keys = None
    if isinstance(protocol, FoldList) and protocol.unit == "key":  # which group holds each listed key
        keys = {g.name: [json.loads(line)["key"] for line in
                         (directory / GROUPS_DIR / f"{g.name}.jsonl").read_text().splitlines() if line.strip()]
                for g in groups}
    folds = make_folds(groups, protocol, job_name=job.name, valid_speakers=valid_speakers,
                       seed=job.train.seed, keys=keys)
    labels = job.data.labels
    classes = labels.classes or build_label_space(
        labels, class_histogram([str(directory / GROUPS_DIR / g.name) for g in groups], labels.field)).classes
    plan = Plan(directory, protocol, groups, folds, list(classes), sources)
    if stored is not None and {k: stored.get(k) for k in ("folds", "classes")} != \
            {k: plan.to_json()[k] for k in ("folds", "classes")}:
        raise CvError(f"{directory / FOLDS_FILE} holds other folds or classes (changed --valid-speakers, "
                      f"seed, labels or job name?); use another --out or delete it")
    write_json(directory / FOLDS_FILE, plan.to_json())
    return plan


def fold_job(job: Any, plan: Plan, fold: Fold) -> Any:
    """The fold's own job: its groups as train/valid/test, the plan's classes, its own run."""

    data = to_dict(job)
    data["name"] = fold.name
    data["storage_path"] = str(plan.cv_dir)
    data["data"]["train"] = [plan.group_dir(g) for g in fold.train]
    data["data"]["valid"] = [plan.group_dir(g) for g in fold.valid]
    data["data"]["test"] = [plan.group_dir(g) for g in fold.test]
    data["data"]["labels"]["classes"] = plan.classes
    return job_from_dict(data, check_data=True)


# --- running a fold ----------------------------------------------------------------------------

def fold_status(job: Any) -> str:
    """``done`` (trained and tested), ``trained``, ``partial`` (has checkpoints) or ``new``."""

    run = Path(job.storage_path) / job.name
    try:
        latest = ckpt.find_checkpoint(run, "latest")
    except ckpt.CheckpointError:
        return "new"
    if int(ckpt.load_meta(latest).get("epoch", 0)) < job.train.epochs:
        return "partial"
    return "done" if (run / TEST_DIR / "metrics.json").is_file() else "trained"


def run_fold(job_data: dict[str, Any], debug: bool = False, progress: bool = False) -> dict[str, Any]:
    """Train one fold (resuming it if it was interrupted) and evaluate it on its test groups.

    Takes the job as a plain dict so that it can run as a Ray task; returns the test summary.
    """

    job = from_dict(JobConfig, job_data, source="cv fold")
    directory = run_dir(job)
    assert directory is not None
    status = fold_status(job)
    if status in ("new", "partial"):
        (directory / TEST_DIR / "metrics.json").unlink(missing_ok=True)  # stale once training goes on
        preflight(job, resume=False, force=False)
        save_resolved_config(job)
        run_local(job, progress=progress, debug=debug)
    if status != "done":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        result = evaluate(directory, job.data.test, which="best", device=device,
                          num_workers=job.debug.num_workers if debug else job.data.num_workers)
        write_results(result, directory / TEST_DIR, title=f"{job.name}: test")
    return json.loads((directory / TEST_DIR / "metrics.json").read_text())


def run_folds_local(jobs: Sequence[Any], *, debug: bool, log: Log = print) -> dict[str, str]:
    """Folds one after another in this process; returns {fold: error} for those that failed."""

    failed = {}
    for n, job in enumerate(jobs, 1):
        log(f"cv: fold {job.name} ({n}/{len(jobs)})")
        try:
            run_fold(to_dict(job), debug=debug, progress=debug)
        except SslSerError as err:
            failed[job.name] = str(err)
            log(f"cv: fold {job.name} failed: {err}")
    return failed


def run_folds_ray(jobs: Sequence[Any], *, parallel: int, cpus_per_fold: float = 1.0,
                  gpus_per_fold: float = 0.0, log: Log = print) -> dict[str, str]:
    """Folds as Ray tasks, at most ``parallel`` at a time (each one process training on its
    fractional share of a GPU, or on CPUs); returns {fold: error} for those that failed."""
    # deferred: Ray only where a command runs on Ray (seconds to import)
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=True)
    available = ray.cluster_resources()
    for name, need in (("GPU", gpus_per_fold), ("CPU", cpus_per_fold)):
        if need > available.get(name, 0.0):  # Ray would wait for them forever
            raise CvError(f"each fold asks for {need:g} {name}(s) but the Ray cluster has "
                          f"{available.get(name, 0.0):g}; use --{name.lower()}s-per-fold "
                          f"{'0 (or --set scaling.use_gpu=false)' if name == 'GPU' else 'with less'}")
    task = ray.remote(run_fold).options(num_cpus=cpus_per_fold, num_gpus=gpus_per_fold, max_retries=0)
    waiting = list(jobs)
    running: dict[Any, str] = {}
    failed: dict[str, str] = {}
    while waiting or running:
        while waiting and len(running) < max(1, parallel):
            job = waiting.pop(0)
            running[task.remote(to_dict(job), False, False)] = job.name
            log(f"cv: fold {job.name} started on Ray")
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            name = running.pop(ref)
            try:
                summary = ray.get(ref)
                log(f"cv: fold {name} done: UA {format_score(summary['metrics'].get('ua'))}")
            except Exception as err:  # the task's own error, wrapped by Ray
                cause = getattr(err, "cause", None) or err
                failed[name] = f"{type(cause).__name__}: {cause}"
                log(f"cv: fold {name} failed: {failed[name]}")
    return failed


# --- the whole cross-validation ---------------------------------------------------------------

def run_cv(job: Any, protocol: Protocol, *, debug: bool = False, parallel: int = 1,
           cpus_per_fold: float = 1.0, gpus_per_fold: float = 0.0, valid_speakers: int = 1,
           cv_dir: str | Path | None = None, only: Sequence[int] | None = None,
           log: Log = print) -> dict[str, Any]:
    """Prepare the folds, run those not finished, and summarise every finished fold."""
    if job.data.valid or job.data.test:
        log("cv: the job's data.valid/data.test are not used; each fold validates and tests on its own speakers")
    plan = prepare(job, protocol, cv_dir=cv_dir, valid_speakers=valid_speakers, log=log)
    folds = plan.folds if only is None else [f for f in plan.folds if f.index in set(only)]
    jobs = [fold_job(job, plan, f) for f in folds]
    todo = [j for j in jobs if fold_status(j) != "done"]
    log(f"cv: {len(plan.folds)} folds ({protocol_name(protocol)}), {len(jobs) - len(todo)} already done, "
        f"{len(todo)} to run, in {plan.cv_dir}")
    started = time.perf_counter()
    if todo:
        if debug:
            failed = run_folds_local(todo, debug=True, log=log)
        else:
            failed = run_folds_ray(todo, parallel=parallel, cpus_per_fold=cpus_per_fold,
                                   gpus_per_fold=gpus_per_fold, log=log)
    else:
        failed = {}
    results = summarise(plan, elapsed=time.perf_counter() - started)
    log("\n" + cv_report(results))
    if failed:
        raise CvError(f"{len(failed)} fold(s) failed (finished folds are kept; rerun to retry): "
                      + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    return results
