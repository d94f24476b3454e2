"""GPU check (issue 15, item 4): the GPU paths that CPU-only CI never executes, measured in one
run of under 8 minutes on one GPU machine, printed as one Markdown table.

Parts, each in its own child process with its own time limit (a part that fails, hangs or is
killed gives its error in its row and the others still run):

1. ``kmeans``: faiss-gpu k-means through :func:`ssl_ser.kmeans.fit` (``device: gpu``, 10 Lloyd
   iterations) on 1M x 256 float32 blobs (``bench/perf/kmeans.py``'s data), K = 1024 and 4096,
   after an untimed warm-up fit; goal <= 5 s for K = 4096.
2. ``throughput:MODEL``: bf16 training throughput of each of the five models at paper size
   (``size: full``) with its recipe's front-end, batch size, crop (or segment) length,
   optimiser and gradient clipping (``jobs/*.yaml``, read through the job loader): synthetic
   16 kHz audio, front-end + forward + backward + clip + optimiser step under
   ``torch.autocast("cuda", dtype=torch.bfloat16)``, 3 warm-up steps, then >= 3 s of steps
   between two ``torch.cuda.synchronize()``. The loss stands in for the methods' own: cross-entropy
   on the logits plus the mean square of every other output, so every head is in the backward.
3. ``epoch``: the DeepEmoCluster paper recipe (``jobs/deepemocluster.yaml``: VGG-16 full, batch
   64, 4-s crops, 4 DataLoader workers, bf16) on the demo corpus's shards, 2 epochs of 40 steps,
   run by the library's :class:`~ssl_ser.train.loop.Loop` in this process (``LocalSession``, as
   ``--debug`` but with the job's DataLoader workers; not Ray Train). ``nvidia-smi -lms 200``
   samples GPU utilisation in the background; the loop's ``train_step`` and phases are timed
   from outside (instance attributes wrapped, ``ssl_ser/train`` unchanged), which gives the
   data-loader wait per step: the gap between one step's end and the next one's start.
   Epoch 2 is reported (epoch 1 warms up cuDNN, FAISS and the workers).
4. ``ddp``: one DistributedDataParallel step of the DeepEmoCluster model in 2 processes over
   NCCL, when ``torch.cuda.device_count() >= 2``; otherwise a row says it was not run.

Exit status: 0 when no part failed (a missed goal is a result, not a failure; a part the
machine cannot run, such as k-means without faiss-gpu, is "skipped"), 1 when a part failed or
timed out (the table is printed all the same), 77 when there is no CUDA GPU
(``torch.cuda.is_available()`` is false or ``nvidia-smi`` is missing): nothing is measured and
one line says why. 77 is the "skipped" status of automake's and meson's test drivers: a
wrapper can tell "nothing measured" from "measured" (0) and from a crash (1).

    bash bench/gpu_check.sh                 # the wrapper: PYTHONPATH, wheels in .whl/ if needed
    python bench/perf/gpu_check.py --budget 450 --out DIR
    python bench/perf/gpu_check.py --smoke  # every part on the CPU at tiny sizes (tests the code)

The table also goes to ``$OUT`` (or ``--out``): ``gpu_check.md``, ``gpu_check.json`` and the
parts' combined output ``gpu_check.log``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[2]
NO_GPU_EXIT = 77
BUDGET_S = 450
"""The whole run, start-up included: the lent machine's 15 minutes must leave room for a rerun."""

KMEANS_SIZE = (1_000_000, 256)
KMEANS_KS = (1024, 4096)
KMEANS_NITER = 10
KMEANS_GOAL_S = {4096: 5.0}
BUSY_GOAL = 90.0

RECIPES = {
    "attention_cnn": "jobs/attention_cnn.yaml",
    "daae": "jobs/daae_pretrain.yaml",
    "pyresnet": "jobs/pyresnet.yaml",
    "resnet34_xvector": "jobs/xvector_pretrain.yaml",
    "vgg16_cluster": "jobs/deepemocluster.yaml",
}
"""Each model's paper recipe: front-end, batch size, crop/segment length, optimiser."""

EPOCH_STEPS = 40
"""Training steps per epoch of the ``epoch`` part (data.samples_per_epoch = steps x batch)."""

PART_LIMITS_S = {"kmeans": 120, "throughput": 50, "epoch": 200, "ddp": 90}
SMI = ("nvidia-smi",)


@dataclass
class Row:
    what: str
    value: str
    goal: str = ""
    result: str = "na"
    """pass, miss, na (no goal), error, timeout or skipped."""
    note: str = ""


# --- pure helpers (unit-tested on the CPU) -----------------------------------------------------

def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table, columns padded to line up in a terminal."""
    header = ("what", "value", "goal", "result", "note")
    cells = [header] + [tuple(_cell(getattr(r, f)) for f in ("what", "value", "goal", "result", "note")) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c[i].ljust(widths[i]) for i in range(len(header))) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(text: Any) -> str:
    return str(text).replace("|", "/").replace("\n", " ").strip()


def judge(value: float, goal: float, higher_is_better: bool) -> str:
    return "pass" if (value >= goal if higher_is_better else value <= goal) else "miss"


def parse_utilization(line: str) -> int | None:
    """One line of ``nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits``:
    the percentage, or None for a blank line, ``[N/A]`` or anything else."""
    text = line.strip().rstrip("%").strip()
    return int(text) if text.isdigit() else None


def busy_percent(samples: Iterable[tuple[float, int]], start: float, end: float) -> tuple[float | None, int]:
    """Mean utilisation of the ``(time, percent)`` samples taken in ``[start, end]``, and their count."""
    inside = [v for t, v in samples if start <= t <= end]
    return (statistics.fmean(inside) if inside else None), len(inside)


def loader_waits(enters: Sequence[float], exits: Sequence[float]) -> list[float]:
    """Seconds between each training step's end and the next one's start: the time the loop
    waited for its next batch (``enters``/``exits``: one epoch's step start and end times)."""
    return [enters[i + 1] - exits[i] for i in range(min(len(enters) - 1, len(exits)))]


def no_gpu_reason(smi: Sequence[str] = SMI) -> str | None:
    """Why this machine cannot run the check, or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False"
    if shutil.which(smi[0]) is None:
        return f"{smi[0]} is not on PATH"
    return None


class UtilizationSampler:
    """``nvidia-smi ... -lms INTERVAL`` in the background; each line is stamped with
    ``time.monotonic()`` when it arrives."""

    def __init__(self, gpu: str = "0", interval_ms: int = 200, command: Sequence[str] = SMI) -> None:
        self.samples: list[tuple[float, int]] = []
        self.proc = subprocess.Popen(
            [*command, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms",
             str(interval_ms), "-i", gpu], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            value = parse_utilization(line)
            if value is not None:
                self.samples.append((time.monotonic(), value))

    def stop(self) -> list[tuple[float, int]]:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(5)
        return list(self.samples)


# --- the parts (each runs in a child process) --------------------------------------------------

Emit = Callable[[Row], None]


def part_kmeans(emit: Emit, smoke: bool) -> None:
    from ssl_ser.kmeans import KMeansConfig, KMeansError, fit, select_device

    device: Literal["cpu", "gpu"] = "cpu" if smoke else "gpu"
    (n, d), ks = ((20_000, 32), (16, 64)) if smoke else (KMEANS_SIZE, KMEANS_KS)
    try:
        _, why = select_device(device)  # raises with the reason when faiss has no GPU support
    except (ImportError, KMeansError) as err:  # what the machine lacks, not a fault of the code
        for k in ks:
            emit(Row(_kmeans_what(n, d, k, device), "-", _goal_text(k), "skipped", f"not measured: {_error_text(err)}"))
        return
    try:
        x = _bench_module("kmeans").data(n, d)
        fit(x[:10_000], 64, seed=0, cfg=KMeansConfig(niter=1, device=device))  # CUDA/cuBLAS start-up
    except Exception as err:  # any failure is reported in the rows; the other parts go on
        for k in ks:
            emit(Row(_kmeans_what(n, d, k, device), "-", _goal_text(k), "error", _error_text(err)))
        return
    for k in ks:
        try:
            start = time.perf_counter()
            res = fit(x, k, seed=0, cfg=KMeansConfig(niter=KMEANS_NITER, device=device))
            seconds = time.perf_counter() - start
            goal = KMEANS_GOAL_S.get(k)
            emit(Row(_kmeans_what(n, d, k, device), f"{seconds:.2f} s", _goal_text(k),
                     judge(seconds, goal, higher_is_better=False) if goal and not smoke else "na",
                     f"{res.device}: {why}; objective {res.objective:.4g}, {res.nsplit} splits"))
        except Exception as err:
            emit(Row(_kmeans_what(n, d, k, device), "-", _goal_text(k), "error", _error_text(err)))


def _kmeans_what(n: int, d: int, k: int, device: str = "gpu") -> str:
    return f"faiss-{device} k-means {n:,} x {d}, K = {k}, {KMEANS_NITER} iterations"


def _goal_text(k: int) -> str:
    return f"<= {KMEANS_GOAL_S[k]:g} s" if k in KMEANS_GOAL_S else ""


@dataclass
class Bench:
    """One recipe's model, front-end, optimiser and a synthetic batch on a device."""

    name: str
    frontend: Any
    model: Any
    optimizer: Any
    audio: Any
    lengths: Any
    labels: Any
    grad_clip: float | None
    label: str


def build_bench(model_name: str, device: Any, smoke: bool) -> Bench:
    import torch

    from ssl_ser import SAMPLE_RATE
    from ssl_ser.config import read_yaml
    from ssl_ser.features import build_frontend
    from ssl_ser.inference import frontend_section
    from ssl_ser.job import component
    from ssl_ser.job_loader import job_from_dict
    from ssl_ser.models import build_model
    from ssl_ser.train.optim import build_optimizer

    recipe = RECIPES[model_name]
    data = read_yaml(REPO / recipe)
    data["model"] = {**data["model"], "size": "tiny" if smoke else "full"}
    job = job_from_dict(data, REPO, check_data=False)
    fe_name, fe_options, _ = frontend_section(job.frontend)
    frontend = build_frontend(fe_name, **fe_options).to(device)
    name, options = component(job.model, "model")
    extra = {"num_clusters": job.method["num_clusters"]} if "num_clusters" in job.method else {}
    model = build_model(name, in_features=frontend.num_features, num_classes=4, **{**extra, **options}).to(device)
    seconds = job.data.crop_seconds or (job.data.segment.seconds if job.data.segment else 4.0)
    batch = 4 if smoke else job.data.batch_size
    samples = round(seconds * SAMPLE_RATE)
    gen = torch.Generator(device="cpu").manual_seed(0)
    audio = (0.1 * torch.randn(batch, samples, generator=gen)).to(device)
    lengths = torch.full((batch,), samples, dtype=torch.long, device=device)
    labels = torch.randint(0, 4, (batch,), generator=gen).to(device)
    label = f"{model_name} ({Path(recipe).stem}: {fe_name}, batch {batch} x {seconds:g} s)"
    return Bench(model_name, frontend, model, build_optimizer(model.parameters(), job.optim), audio, lengths,
                 labels, job.train.grad_clip, label)


def train_step(bench: Bench, model: Any = None) -> None:
    """Front-end, forward, stand-in loss, backward, clipping, optimiser step: as the loop's."""
    import torch
    import torch.nn.functional as F

    model = model if model is not None else bench.model
    with torch.autocast(bench.audio.device.type, dtype=torch.bfloat16):
        feats, frames = bench.frontend(bench.audio, bench.lengths)
        out = model(feats, frames)
        loss = F.cross_entropy(out["logits"].float(), bench.labels)
        for key, value in out.items():
            if key != "logits" and value.is_floating_point() and value.requires_grad:
                loss = loss + value.float().square().mean()
    bench.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if bench.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), bench.grad_clip)
    bench.optimizer.step()


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def part_throughput(model_name: str, emit: Emit, smoke: bool) -> None:
    import torch

    device = torch.device("cpu" if smoke else "cuda")
    label = f"bf16 training {model_name}"
    try:
        bench = build_bench(model_name, device, smoke)
        label = f"bf16 training {bench.label}"
        for _ in range(1 if smoke else 3):
            train_step(bench)
        _sync(device)
        start = time.perf_counter()
        for _ in range(2):
            train_step(bench)
        _sync(device)
        estimate = (time.perf_counter() - start) / 2
        steps = 1 if smoke else max(5, min(200, math.ceil(3.0 / max(estimate, 1e-6))))
        start = time.perf_counter()
        for _ in range(steps):
            train_step(bench)
        _sync(device)
        per_step = (time.perf_counter() - start) / steps
        params = sum(p.numel() for p in bench.model.parameters())
        peak = (f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
                if device.type == "cuda" else "")
        emit(Row(label, f"{len(bench.audio) / per_step:.0f} utt/s", "", "na",
                 f"{per_step * 1000:.1f} ms/step over {steps} steps, {params / 1e6:.2f}M params{peak}"))
    except Exception as err:
        emit(Row(label, "-", "", "error", _error_text(err)))


def part_epoch(emit: Emit, smoke: bool, workdir: Path) -> None:
    import torch

    from ssl_ser.config import read_yaml
    from ssl_ser.demo import run_demo
    from ssl_ser.job import run_dir
    from ssl_ser.job_loader import job_from_dict
    from ssl_ser.train.loop import Loop
    from ssl_ser.train.session import LocalSession

    what = "DeepEmoCluster epoch (paper recipe on the demo shards)"
    try:
        started = time.perf_counter()
        paths = run_demo(workdir / "demo", workers=os.cpu_count() or 1, progress=False,
                         log=lambda m: print(m, flush=True))
        demo_s = time.perf_counter() - started
        data = read_yaml(REPO / RECIPES["vgg16_cluster"])
        data["storage_path"] = str(workdir / "runs")
        batch = 8 if smoke else data["data"]["batch_size"]
        steps = 3 if smoke else EPOCH_STEPS
        data["data"].update(train=[str(paths.shards["train_labelled"])],
                            unlabelled=[str(paths.shards["train_unlabelled"])],
                            valid=[str(paths.shards["valid"])], test=[], batch_size=batch,
                            samples_per_epoch=batch * steps)
        data["train"]["epochs"] = 2
        data["scaling"] = {"num_workers": 1, "use_gpu": not smoke}
        if smoke:
            data["model"] = {**data["model"], "size": "tiny"}
            data["data"]["num_workers"] = 1
        job = job_from_dict(data, workdir)
        device = torch.device("cpu" if smoke else "cuda")
        directory = run_dir(job)
        assert directory is not None  # a local storage_path
        session = LocalSession(directory, job.train.num_to_keep, f"valid_{job.train.metric}",
                               job.train.metric_mode, device=device)
        loop = Loop(job, session, debug=False, progress=False)
        marks = _instrument(loop)
        sampler = UtilizationSampler(os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]) if not smoke else None
        try:
            loop.run()
        finally:
            samples = sampler.stop() if sampler is not None else []
    except Exception as err:
        emit(Row(what, "-", f">= {BUSY_GOAL:g}% busy", "error", _error_text(err)))
        return
    for row in epoch_rows(marks, samples, loop.history, batch, demo_s, smoke):
        emit(row)


def _instrument(loop: Any) -> dict[str, list[Any]]:
    """Time the loop's phases from outside: wrap instance attributes, change no code."""
    marks: dict[str, list[Any]] = {"epoch_start": [], "train_start": [], "train_end": [], "epoch_end": [],
                                   "enters": [], "exits": []}

    def wrap(owner: Any, name: str, before: str | None, after: str | None, per_step: bool = False) -> None:
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if before:
                (marks[before][-1] if per_step else marks[before]).append(time.monotonic())
            try:
                return inner(*args, **kwargs)
            finally:
                if after:
                    (marks[after][-1] if per_step else marks[after]).append(time.monotonic())

        setattr(owner, name, timed)

    def train_epoch(inner: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            marks["enters"].append([])
            marks["exits"].append([])
            marks["train_start"].append(time.monotonic())
            try:
                return inner(*args, **kwargs)
            finally:
                marks["train_end"].append(time.monotonic())
        return timed

    wrap(loop.method, "on_epoch_start", "epoch_start", None)
    loop.train_epoch = train_epoch(loop.train_epoch)
    wrap(loop, "train_step", "enters", "exits", per_step=True)
    wrap(loop, "_log_epoch", None, "epoch_end")
    return marks


def epoch_rows(marks: dict[str, list[Any]], samples: list[tuple[float, int]], history: list[dict[str, Any]],
               batch: int, demo_s: float, smoke: bool) -> list[Row]:
    """The ``epoch`` part's rows from the loop's timestamps and the utilisation samples."""
    e = len(marks["train_start"]) - 1  # the last epoch (epoch 1 warms up)
    if e < 0 or len(marks["epoch_end"]) <= e:
        raise RuntimeError("the loop finished no epoch")
    start, end = marks["epoch_start"][e], marks["epoch_end"][e]
    t0, t1 = marks["train_start"][e], marks["train_end"][e]
    enters, exits = marks["enters"][e], marks["exits"][e]
    goal = f">= {BUSY_GOAL:g}%"
    rows = []
    for label, (a, b) in (("whole epoch", (start, end)), ("its training pass", (t0, t1))):
        busy, count = busy_percent(samples, a, b)
        what = f"GPU busy, DeepEmoCluster epoch {e + 1}, {label}"
        if busy is None:
            rows.append(Row(what, "-", goal, "na" if smoke else "error",
                            "no CPU sampling (--smoke)" if smoke else "no nvidia-smi sample in the window"))
        else:
            rows.append(Row(what, f"{busy:.0f}%", goal, judge(busy, BUSY_GOAL, higher_is_better=True),
                            f"{count} nvidia-smi samples over {b - a:.1f} s"))
    waits = loader_waits(enters, exits)
    steps = [b - a for a, b in zip(enters, exits)]
    first = enters[0] - t0 if enters else float("nan")
    if waits:
        share = sum(waits) / max(sum(waits) + sum(steps[1:]), 1e-9)
        rows.append(Row("data-loader wait per training step", f"{statistics.median(waits) * 1000:.1f} ms median",
                        "", "na", f"max {max(waits) * 1000:.0f} ms, {share:.0%} of the steady steps' time; "
                        f"first batch after {first:.2f} s (worker start); step itself "
                        f"{statistics.median(steps) * 1000:.1f} ms median"))
    metrics = history[-1] if history else {}
    kmeans = (f"embedding {metrics.get('pre_embed_time_s', float('nan')):.1f} s, k-means "
              f"{metrics.get('pre_kmeans_time_s', float('nan')):.2f} s on the "
              f"{'GPU' if metrics.get('pre_kmeans_gpu') else 'CPU'}")
    rows.append(Row(f"DeepEmoCluster epoch {e + 1} phases", f"{end - start:.1f} s",
                    "", "na", f"re-cluster {t0 - start:.1f} s ({kmeans}), train {t1 - t0:.1f} s "
                    f"({len(enters)} steps of {batch}), valid + checkpoint {end - t1:.1f} s; demo shards built "
                    f"in {demo_s:.0f} s; in-process loop (LocalSession), not Ray Train"))
    return rows


def part_ddp(emit: Emit, smoke: bool) -> None:
    import torch
    import torch.multiprocessing as mp

    from ssl_ser.distributed import free_port

    what = "DDP step, 2 processes, " + ("gloo (--smoke)" if smoke else "NCCL")
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "ddp.json"
        try:
            mp.start_processes(_ddp_worker, args=(2, free_port(), smoke, str(result)), nprocs=2,
                               start_method="spawn")
            info = json.loads(result.read_text())
        except Exception as err:
            emit(Row(what, "-", "parameters equal on both ranks", "error", _error_text(err)))
            return
    emit(Row(what, f"{info['ms']:.1f} ms", "parameters equal on both ranks",
             "pass" if info["equal"] else "miss",
             f"vgg16_cluster recipe, batch {info['batch']} per rank; "
             f"{' '.join(filter(None, (info['backend'], info['nccl'])))}, torch {torch.__version__}"))


def _ddp_worker(rank: int, world: int, port: int, smoke: bool, result: str) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    backend = "gloo" if smoke else "nccl"
    device = torch.device("cpu") if smoke else torch.device("cuda", rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    try:
        torch.manual_seed(0)  # the same initial weights on both ranks (DDP broadcasts rank 0's anyway)
        bench = build_bench("vgg16_cluster", device, smoke)
        # as RaySession.prepare_model: heads a method leaves out of a step must not stall the reducer
        ddp = DistributedDataParallel(bench.model, device_ids=[rank] if device.type == "cuda" else None,
                                      find_unused_parameters=True)
        train_step(bench, ddp)  # warm-up: buckets, NCCL communicators, cuDNN
        _sync(device)
        dist.barrier()
        start = time.perf_counter()
        train_step(bench, ddp)
        _sync(device)
        ms = (time.perf_counter() - start) * 1000
        flat = torch.cat([p.detach().double().flatten() for p in bench.model.parameters()])
        mine = torch.stack([flat.sum(), flat.square().sum()])
        gathered = [torch.zeros_like(mine) for _ in range(world)]
        dist.all_gather(gathered, mine)
        if rank == 0:
            version = torch.cuda.nccl.version() if device.type == "cuda" else ""
            nccl = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)  # int before torch 2.1
            Path(result).write_text(json.dumps({
                "ms": ms, "equal": all(torch.equal(g, gathered[0]) for g in gathered),
                "batch": len(bench.audio), "backend": backend, "nccl": nccl}))
    finally:
        dist.destroy_process_group()


def _bench_module(name: str) -> Any:
    """A sibling script (``bench/perf/NAME.py``) as a module, e.g. kmeans.py's data()."""
    spec = importlib.util.spec_from_file_location(f"bench_perf_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0][:300]


def run_part(part: str, rows_file: Path, smoke: bool) -> None:
    """In the child: one part, its rows appended to ``rows_file`` as soon as each is measured."""

    def emit(row: Row) -> None:
        with open(rows_file, "a") as handle:
            handle.write(json.dumps(asdict(row)) + "\n")
        print(f"gpu_check row: {row}", flush=True)

    kind, _, arg = part.partition(":")
    if kind == "kmeans":
        part_kmeans(emit, smoke)
    elif kind == "throughput":
        part_throughput(arg, emit, smoke)
    elif kind == "epoch":
        with tempfile.TemporaryDirectory(prefix="gpu_check_epoch-") as tmp:
            part_epoch(emit, smoke, Path(tmp))
    elif kind == "ddp":
        part_ddp(emit, smoke)
    elif kind == "sleep":  # for the tests: a part that hangs (the timeout path)
        time.sleep(float(arg))
    else:
        raise SystemExit(f"unknown part {part!r}")


# --- the driver --------------------------------------------------------------------------------

def plan(parts: str | None) -> list[str]:
    everything = ["kmeans", *(f"throughput:{m}" for m in RECIPES), "epoch", "ddp"]
    if not parts:
        return everything
    wanted = [p.strip() for p in parts.split(",") if p.strip()]
    return [p for p in everything if p in wanted or p.partition(":")[0] in wanted]


def spawn_part(part: str, limit: float, rows_file: Path, log: Any, smoke: bool) -> tuple[str, str]:
    """Run one part in a child process group; ``(outcome, last output line)``, outcome
    ``ok``, ``exit N`` or ``timeout`` (the whole group, DataLoader workers too, is killed)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--rows", str(rows_file)]
    log.write(f"\n===== {part} (limit {limit:.0f} s) =====\n")
    log.flush()
    child_out = rows_file.with_suffix(f".{part.replace(':', '_')}.log")
    with open(child_out, "w") as out:
        proc = subprocess.Popen(cmd + (["--smoke"] if smoke else []), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=REPO)
        try:
            rc = proc.wait(timeout=limit)
            outcome = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            outcome = "timeout"
    text = child_out.read_text(errors="replace")
    log.write(text)
    log.flush()
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return outcome, last[:300]


def header_line(elapsed: float | None = None) -> str:
    import torch

    smi = "?"
    try:
        smi = subprocess.run([SMI[0], "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip().replace("\n", "; ")
    except (OSError, subprocess.SubprocessError):
        pass
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    took = f", {elapsed:.0f} s" if elapsed is not None else ""
    return (f"gpu_check ({when}{took}): {smi}; {torch.cuda.device_count()} GPU(s); torch {torch.__version__}; "
            f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds for everything (default {BUDGET_S})")
    parser.add_argument("--parts", default=None,
                        help="comma-separated: kmeans, throughput (or throughput:MODEL), epoch, ddp (default: all)")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for the table and log (default $OUT)")
    parser.add_argument("--smoke", action="store_true",
                        help="every part on the CPU at tiny sizes: tests the code paths, measures nothing")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--rows", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        run_part(args.part, Path(args.rows), args.smoke)
        return 0

    deadline = time.monotonic() + args.budget
    started = time.monotonic()
    try:
        import torch
    except ImportError as err:
        print(f"gpu_check: cannot import torch with {sys.executable} ({err}); nothing measured")
        return 1
    reason = None if args.smoke else no_gpu_reason()
    if reason is not None:
        print(f"gpu_check: no CUDA GPU on this machine ({reason}); nothing measured")
        return NO_GPU_EXIT
    print(header_line(), flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        log_path = Path(tmp) / "gpu_check.log"
        with open(log_path, "w") as log:
            for part in plan(args.parts):
                kind = part.partition(":")[0]
                if kind == "ddp" and not args.smoke and torch.cuda.device_count() < 2:
                    rows.append(Row("DDP step, 2 processes, NCCL", "not run", "", "na",
                                    f"{torch.cuda.device_count()} GPU: DDP/NCCL step not run"))
                    continue
                left = deadline - time.monotonic()
                if left < 15:
                    rows.append(Row(part, "-", "", "skipped", f"not run: the {args.budget:g}-s budget was spent"))
                    continue
                rows_file = Path(tmp) / "rows.jsonl"
                rows_file.unlink(missing_ok=True)
                t = time.monotonic()
                outcome, last = spawn_part(part, min(PART_LIMITS_S[kind], left), rows_file, log, args.smoke)
                got = [Row(**json.loads(line)) for line in rows_file.read_text().splitlines()] \
                    if rows_file.exists() else []
                rows += got
                if outcome != "ok":
                    rows.append(Row(f"{part} ({'timed out' if outcome == 'timeout' else 'failed'})", "-", "",
                                    "timeout" if outcome == "timeout" else "error",
                                    f"{outcome} after {time.monotonic() - t:.0f} s: {last}"))
                print(f"  {part}: {outcome} in {time.monotonic() - t:.0f} s", flush=True)
        table = f"{header_line(time.monotonic() - started)}\n\n{format_table(rows)}\n"
        print("\n" + table, flush=True)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "gpu_check.md").write_text(table)
            (out / "gpu_check.json").write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
            shutil.copyfile(log_path, out / "gpu_check.log")
    return 1 if any(r.result in ("error", "timeout") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
