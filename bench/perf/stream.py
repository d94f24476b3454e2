"""Audio-seconds per second delivered as decoded batches, on the same utterances, by:

1. the shard reader (:func:`ssl_ser.data.stream.make_stream`, exact mode, whole utterances);
2. the usual per-file ``torch.utils.data.Dataset``: one ``soundfile`` read + downmix +
   resample per item (``ssl_ser.audio.load``), same DataLoader worker count and batch size;
3. bare FLAC decoding of the shards' own bytes from memory (``ssl_ser.audio.decode``): the
   decode cost that any reader pays, in one process and in ``workers`` processes at once;
   the latter bounds what the readers can reach with that many workers on this machine;
4. both readers again over HTTP on loopback (storage-like): the shard set and the file tree
   served by a ``ThreadingHTTPServer`` in another process, the shard reader streaming
   ``http://127.0.0.1:PORT/shards/`` (curl, one GET per shard), the per-file Dataset doing
   one ``urllib`` GET per file; once as served, once with ``--http-latency-ms`` added to
   every request (object stores answer a GET in milliseconds, not microseconds).

Each rate is also given per CPU-second of the reader's processes (main + DataLoader workers
and their curl children; not the server's), which other work on a shared machine disturbs
less than wall time. By default it generates a synthetic corpus (2000 utterances, about an
hour); ``--manifest`` measures your own data instead. Example::

    python bench/perf/stream.py --workers 2 --batch-size 16
    python bench/perf/stream.py --manifest data/iemocap.jsonl --workers 8 --out /scratch/bench
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import multiprocessing
import os
import resource
import statistics
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from ssl_ser import SAMPLE_RATE, audio
from ssl_ser.data.manifest import Utterance, read_manifest, write_manifest
from ssl_ser.data.shard_index import read_index


class FileDataset(torch.utils.data.Dataset):
    """What a project without shards does: read each file from the directory tree."""

    def __init__(self, rows: list[Utterance]) -> None:
        self.paths = [r.audio for r in rows]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return audio.load(self.paths[i])


class HttpFileDataset(torch.utils.data.Dataset):
    """The per-file Dataset on storage reached over HTTP: one GET per file."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls

    def __len__(self) -> int:
        return len(self.urls)

    def __getitem__(self, i: int) -> torch.Tensor:
        with urllib.request.urlopen(self.urls[i], timeout=60) as response:
            return audio.load(response.read())


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder, quietly, waiting ``latency_s`` before answering each request."""

    def __init__(self, *args: Any, latency_s: float, **kwargs: Any) -> None:
        self.latency_s = latency_s
        super().__init__(*args, **kwargs)

    def send_head(self) -> Any:
        if self.latency_s:
            time.sleep(self.latency_s)
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


def _serve(root: str, latency_s: float, conn: Connection) -> None:
    handler = functools.partial(_Handler, directory=root, latency_s=latency_s)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    conn.send(server.server_address[1])
    server.serve_forever()


@contextlib.contextmanager
def http_server(root: Path, latency_s: float = 0.0) -> Iterator[str]:
    """Serve ``root`` on a free loopback port from another process (so that serving does not
    take the readers' GIL); yields the base URL, ``http://127.0.0.1:PORT``."""
    ours, theirs = multiprocessing.Pipe()
    # fork: the server needs nothing of torch, and a spawned child would re-import this script
    server = multiprocessing.get_context("fork").Process(target=_serve, daemon=True,
                                                         args=(str(root), latency_s, theirs))
    server.start()
    try:
        if not ours.poll(30):
            raise RuntimeError("the HTTP server did not start")
        yield f"http://127.0.0.1:{ours.recv()}"
    finally:
        server.terminate()
        server.join()


def file_urls(base: str, root: Path, paths: list[str]) -> list[str]:
    """The URLs under which ``http_server(root)`` at ``base`` serves these files."""
    return [f"{base}/{urllib.parse.quote(os.path.relpath(p, root))}" for p in paths]


def pad_collate(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        batch[row, :wave.numel()] = wave
    return batch, lengths


Measurement = tuple[float, float, float]
"""(audio seconds delivered, wall seconds, CPU seconds of this process and its children)."""


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(count_samples: Callable[[], int]) -> Measurement:
    cpu, started = _cpu_seconds(), time.perf_counter()
    samples = count_samples()  # DataLoader workers are joined by the end: their CPU is counted
    return samples / SAMPLE_RATE, time.perf_counter() - started, _cpu_seconds() - cpu


def _consume(waves: torch.Tensor, lengths: torch.Tensor) -> int:
    """Read every sample of the batch, as a trainer copying it to the GPU does (a reader that
    leaves work for first access, e.g. mapping shared memory, pays it here); numpy: one thread.
    Returns the batch's audio samples."""
    waves.numpy().sum()
    return int(lengths.sum())


def time_shard_reader(shards: str | Path | list[str], workers: int, batch_size: int) -> Measurement:
    # deferred: the shard reader's import is part of what the other methods need not pay
    from ssl_ser.data.stream import make_stream

    stream = make_stream(shards, mode="exact", batch_size=batch_size, num_workers=workers,
                         rank=0, world_size=1)
    return _timed(lambda: sum(_consume(batch.audio, batch.lengths) for batch in stream))


def time_file_dataset(dataset: torch.utils.data.Dataset, workers: int, batch_size: int) -> Measurement:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         collate_fn=pad_collate)
    return _timed(lambda: sum(_consume(waves, lengths) for waves, lengths in loader))


def shard_flac_blobs(shard_dir: Path) -> list[bytes]:
    blobs = []
    for shard in sorted(shard_dir.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            blobs += [tar.extractfile(m).read() for m in tar.getmembers()  # type: ignore[union-attr]
                      if m.name.endswith(".flac")]
    return blobs


def time_bare_decode(shard_dir: Path) -> Measurement:
    blobs = shard_flac_blobs(shard_dir)
    return _timed(lambda: sum(audio.decode(blob)[0].shape[1] for blob in blobs))


def _decode_share(blobs: list[bytes], go: Any, results: Connection) -> None:
    go.wait()
    results.send(sum(audio.decode(blob)[0].shape[1] for blob in blobs))


def time_parallel_decode(shard_dir: Path, processes: int) -> Measurement:
    """Bare decoding in ``processes`` processes at once, each an interleaved share of the
    bytes: the limit for that many DataLoader workers as this machine runs them now (the
    1-process rate times ``processes`` assumes idle cores)."""
    blobs = shard_flac_blobs(shard_dir)
    context = multiprocessing.get_context("fork")  # children share the bytes, not copy them
    go = context.Event()
    pipes, children = [], []
    for i in range(processes):
        ours, theirs = context.Pipe(duplex=False)
        children.append(context.Process(target=_decode_share, args=(blobs[i::processes], go, theirs)))
        children[-1].start()
        pipes.append(ours)

    def run() -> int:
        go.set()
        samples = sum(int(pipe.recv()) for pipe in pipes)
        for child in children:
            child.join()  # joined: its CPU time is counted
        return samples

    return _timed(run)


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float
    goal: float
    """The ratio should be at least this."""

    @property
    def met(self) -> bool:
        return self.value >= self.goal

    def line(self) -> str:
        return f"{self.name:<48} = {self.value:5.2f}  (goal >= {self.goal:g}{'' if self.met else ', MISSED'})"


def ratios(rates: dict[str, float], processes: int, latency_ms: float | None) -> list[Ratio]:
    """The issue's goals: the shard reader near the decode limit of its worker processes, not
    slower than per-file reads from a warm disk, and well ahead of them over HTTP."""
    limit = rates.get(f"bare FLAC decode, {processes} processes",
                      rates["bare FLAC decode, 1 process"] * processes)
    out = [Ratio(f"shard reader / decode limit ({processes} proc)", rates["shard reader"] / limit, 0.8),
           Ratio("shard reader / per-file Dataset, warm disk",
                 rates["shard reader"] / rates["per-file Dataset"], 1.0)]
    for suffix in [""] + ([f", +{latency_ms:g} ms"] if latency_ms else []):
        files, shards = rates.get(f"per-file Dataset, HTTP{suffix}"), rates.get(f"shard reader, HTTP{suffix}")
        if files and shards:
            out.append(Ratio(f"shard reader / per-file Dataset, HTTP{suffix}", shards / files, 3.0))
    return out


def shards_per_set(utterances: int, workers: int) -> int:
    """Samples per shard: at most 64, and at least 4 shards per DataLoader worker, so that no
    worker of the shard reader sits idle while another reads the last shard."""
    return max(1, min(64, math.ceil(utterances / (4 * max(1, workers)))))


def measure(methods: dict[str, Callable[[], Measurement]], repeats: int
            ) -> tuple[dict[str, float], dict[str, float]]:
    """Median audio-s per wall second and per CPU second of each method over ``repeats`` passes."""
    rates, cpu_rates = {}, {}
    for name, method in methods.items():
        passes = [method() for _ in range(repeats)]
        rates[name] = statistics.median(seconds / wall for seconds, wall, _ in passes)
        cpu_rates[name] = statistics.median(seconds / max(cpu, 1e-9) for seconds, _, cpu in passes)
        print(f"{name:<34} {rates[name]:8.0f} audio-s/s {cpu_rates[name]:8.0f} audio-s/CPU-s   "
              f"(passes: {', '.join(f'{s / w:.0f}' for s, w, _ in passes)})", flush=True)
    return rates, cpu_rates


def synthetic_manifest(work: Path, utterances: int) -> Path:
    from ssl_ser.data.corpora import prepare
    from ssl_ser.data.synthetic import SyntheticConfig, generate

    speakers = 8
    per_class = max(1, round(utterances / (speakers * 4)))
    cfg = SyntheticConfig(speakers=speakers, utterances_per_class=per_class, unlabelled_speakers=0,
                          unlabelled_per_speaker=0, noise_clips=0)
    root = generate(work / "corpus", cfg, workers=os.cpu_count() or 1, overwrite=True)
    manifest = work / "bench.jsonl"
    write_manifest(prepare("synthetic", root), manifest)
    return manifest


def measure_http(shard_dir: Path, paths: list[str], latency_ms: float, workers: int,
                 batch_size: int, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Both readers over loopback HTTP: the shard set and the audio files' common folder, each
    served by its own server process answering every request ``latency_ms`` late."""
    suffix = f", +{latency_ms:g} ms" if latency_ms else ""
    files_root = Path(os.path.commonpath([os.path.dirname(p) for p in paths]))
    shards = [os.path.abspath(p) for p in read_index(shard_dir).shards]  # explicit URLs, not
    # ".../shards/": that form is new, and the same command measures the code before it
    with http_server(shard_dir, latency_ms / 1000) as shard_base, \
            http_server(files_root, latency_ms / 1000) as file_base:
        urls = file_urls(file_base, files_root, paths)
        return measure({
            f"shard reader, HTTP{suffix}": lambda: time_shard_reader(
                file_urls(shard_base, shard_dir, shards), workers, batch_size),
            f"per-file Dataset, HTTP{suffix}": lambda: time_file_dataset(HttpFileDataset(urls),
                                                                          workers, batch_size),
        }, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", help="measure these utterances (default: generate some)")
    parser.add_argument("--utterances", type=int, default=2000,
                        help="size of the generated corpus (default 2000, about an hour)")
    parser.add_argument("--out", help="working directory (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3,
                        help="passes per method; the median rate is reported (default 3)")
    parser.add_argument("--http-latency-ms", type=float, default=5.0,
                        help="added to every HTTP request in the second HTTP run, as object "
                             "stores take milliseconds per GET (default 5; 0: one HTTP run)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP cases")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.out or tmp)
        work.mkdir(parents=True, exist_ok=True)
        manifest = Path(args.manifest) if args.manifest else synthetic_manifest(work, args.utterances)
        rows = read_manifest(manifest)

        # deferred: the builder is only needed once the corpus exists
        from ssl_ser.data.shards import build_shards

        per_shard = shards_per_set(len(rows), args.workers)
        started = time.perf_counter()
        report = build_shards(manifest, work / "shards", max_count=per_shard, overwrite=True,
                              progress=False)
        build_seconds = time.perf_counter() - started
        shard_count = len(list((work / "shards").glob("shard-*.tar")))
        processes = max(1, min(args.workers, os.cpu_count() or 1))
        print(f"data: {report.samples} utterances ({report.seconds_of_audio:.0f} s of audio) from "
              f"{manifest}; {shard_count} shards of <= {per_shard} built in {build_seconds:.1f} s")
        print(f"readers: {args.workers} DataLoader worker(s), batch {args.batch_size}, "
              f"median of {args.repeats} passes; {os.cpu_count()} CPU(s)\n")

        paths = [os.path.abspath(r.audio) for r in rows]
        methods: dict[str, Callable[[], Measurement]] = {
            "shard reader": lambda: time_shard_reader(work / "shards", args.workers, args.batch_size),
            "per-file Dataset": lambda: time_file_dataset(FileDataset(rows), args.workers,
                                                          args.batch_size),
            "bare FLAC decode, 1 process": lambda: time_bare_decode(work / "shards"),
        }
        if processes > 1:
            methods[f"bare FLAC decode, {processes} processes"] = lambda: time_parallel_decode(
                work / "shards", processes)
        rates, cpu_rates = measure(methods, args.repeats)
        latencies = [] if args.no_http else [0.0] + ([args.http_latency_ms] if args.http_latency_ms else [])
        for latency in latencies:
            print(f"\nHTTP on loopback, {latency:g} ms added per request:")
            http_rates, http_cpu = measure_http(work / "shards", paths, latency, args.workers,
                                                args.batch_size, args.repeats)
            rates.update(http_rates)
            cpu_rates.update(http_cpu)

        found = ratios(rates, processes, args.http_latency_ms)
        print()
        for ratio in found:
            print(ratio.line())
        if processes > 1:
            ideal = rates["bare FLAC decode, 1 process"] * processes
            print(f"  (the limit measured with {processes} decoding processes at once; against "
                  f"{processes} x the 1-process rate, as on idle cores: "
                  f"{rates['shard reader'] / ideal:.2f})")
        per_cpu = ratios(cpu_rates, 1, args.http_latency_ms)  # per CPU-second the limit is 1 process's
        print("\nper CPU-second of the readers' processes (the HTTP servers' not counted):")
        for ratio in per_cpu:
            print(ratio.line().replace(" (1 proc)", " per CPU-s"))
        if args.json:
            Path(args.json).write_text(json.dumps(dict(
                rates=rates, cpu_rates=cpu_rates,
                ratios={r.name: {"value": r.value, "goal": r.goal, "met": r.met} for r in found},
                cpu_ratios={r.name.replace(" (1 proc)", " per CPU-s"): r.value for r in per_cpu},
                workers=args.workers, batch_size=args.batch_size, http_latency_ms=args.http_latency_ms,
                utterances=report.samples, audio_seconds=report.seconds_of_audio, shards=shard_count,
                cpus=os.cpu_count(), build_seconds=build_seconds), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
