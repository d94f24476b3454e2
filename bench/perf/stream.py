"""Audio-seconds per second delivered as decoded batches, three ways, on the same utterances:

1. the shard reader (:func:`ssl_ser.data.stream.make_stream`, exact mode, whole utterances);
2. the usual per-file ``torch.utils.data.Dataset``: one ``soundfile`` read + downmix +
   resample per item (``ssl_ser.audio.load``), same DataLoader worker count and batch size;
3. bare FLAC decoding of the shards' own bytes from memory, in one process: the decode cost
   that any reader pays, so ``workers x`` this rate bounds what the readers can reach.

By default it generates a synthetic corpus (a few hundred utterances); ``--manifest`` measures
your own data instead. Example::

    python bench/perf/stream.py --workers 2 --batch-size 16
    python bench/perf/stream.py --manifest data/iemocap.jsonl --workers 8 --out /scratch/bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from ssl_ser import SAMPLE_RATE, audio
from ssl_ser.data.manifest import Utterance, read_manifest, write_manifest


class FileDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """What a project without shards does: read each file from the directory tree."""

    def __init__(self, rows: list[Utterance]) -> None:
        self.paths = [r.audio for r in rows]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return audio.load(self.paths[i])


def pad_collate(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        batch[row, :wave.numel()] = wave
    return batch, lengths


def time_shard_reader(shard_dir: Path, workers: int, batch_size: int) -> tuple[float, float]:
    from ssl_ser.data.stream import make_stream

    stream = make_stream(shard_dir, mode="exact", batch_size=batch_size, num_workers=workers,
                         rank=0, world_size=1)
    started = time.perf_counter()
    samples = sum(int(batch.lengths.sum()) for batch in stream)
    return samples / SAMPLE_RATE, time.perf_counter() - started


def time_file_dataset(rows: list[Utterance], workers: int, batch_size: int) -> tuple[float, float]:
    loader = torch.utils.data.DataLoader(FileDataset(rows), batch_size=batch_size,
                                         num_workers=workers, collate_fn=pad_collate)
    started = time.perf_counter()
    samples = sum(int(lengths.sum()) for _, lengths in loader)
    return samples / SAMPLE_RATE, time.perf_counter() - started


def time_bare_decode(shard_dir: Path) -> tuple[float, float]:
    blobs = []
    for shard in sorted(shard_dir.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            blobs += [tar.extractfile(m).read() for m in tar.getmembers()  # type: ignore[union-attr]
                      if m.name.endswith(".flac")]
    started = time.perf_counter()
    samples = sum(audio.decode(blob)[0].shape[1] for blob in blobs)
    return samples / SAMPLE_RATE, time.perf_counter() - started


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", help="measure these utterances (default: generate some)")
    parser.add_argument("--utterances", type=int, default=640,
                        help="size of the generated corpus (default 640, about 20 minutes)")
    parser.add_argument("--out", help="working directory (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3,
                        help="passes per method; the median rate is reported (default 3)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.out or tmp)
        work.mkdir(parents=True, exist_ok=True)
        manifest = Path(args.manifest) if args.manifest else synthetic_manifest(work, args.utterances)
        rows = read_manifest(manifest)

        from ssl_ser.data.shards import build_shards

        started = time.perf_counter()
        report = build_shards(manifest, work / "shards", max_count=64, overwrite=True, progress=False)
        build_seconds = time.perf_counter() - started
        print(f"data: {report.samples} utterances ({report.seconds_of_audio:.0f} s of audio) from "
              f"{manifest}; shards built in {build_seconds:.1f} s with {os.cpu_count()} processes")
        print(f"readers: {args.workers} DataLoader worker(s), batch {args.batch_size}, "
              f"median of {args.repeats} passes; {os.cpu_count()} CPU(s)\n")

        methods = {
            "shard reader (make_stream)": lambda: time_shard_reader(work / "shards", args.workers,
                                                                    args.batch_size),
            "per-file Dataset (soundfile)": lambda: time_file_dataset(rows, args.workers,
                                                                      args.batch_size),
            "bare FLAC decode, 1 process": lambda: time_bare_decode(work / "shards"),
        }
        rates: dict[str, float] = {}
        for name, measure in methods.items():
            passes = []
            for _ in range(args.repeats):
                seconds, elapsed = measure()
                passes.append(seconds / elapsed)
            rates[name] = statistics.median(passes)
            print(f"{name:<30} {rates[name]:10.0f} audio-s/s   "
                  f"(passes: {', '.join(f'{r:.0f}' for r in passes)})")

        shard, files, decode = rates.values()
        limit = decode * max(1, min(args.workers, os.cpu_count() or 1))
        print(f"\nshard reader / per-file Dataset      = {shard / files:.2f}x")
        print(f"shard reader / decode limit ({max(1, args.workers)} proc) = {shard / limit:.2f}")
        print(f"per-file Dataset / decode limit      = {files / limit:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps(dict(
                rates=rates, workers=args.workers, batch_size=args.batch_size,
                utterances=report.samples, audio_seconds=report.seconds_of_audio,
                cpus=os.cpu_count(), build_seconds=build_seconds), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
