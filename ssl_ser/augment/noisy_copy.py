"""``ssl-ser shards noisy SHARDS NOISE_SHARDS OUT --snr 10``: a noisy copy of a shard set.

For robustness tests (the CopyPaste paper's noisy test sets): every utterance of ``SHARDS``
gets a noise from ``NOISE_SHARDS`` (the same bank and mixing as :mod:`ssl_ser.augment.noise`)
at an SNR from ``--snr`` (one value, or several drawn per utterance), measured over the
whole utterance. Keys, labels and every other manifest field are kept; ``extra.noisy``
records the category, SNR and noise clips. Each utterance's draw is seeded by ``(--seed,
its key)``, so the copy is the same whatever the order, worker count or machine.

The noisy audio is written as FLAC under ``OUT/.noisy-work/`` with a manifest
(``OUT/noisy-manifest.jsonl``), then built into shards by :func:`ssl_ser.data.shards.build_shards`
(same format, index and checks as any shard set); the temporary audio is removed after a
successful build.
"""

from __future__ import annotations

import argparse
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssl_ser import SAMPLE_RATE
from ssl_ser.data.shard_index import INDEX, format_index, read_index
from ssl_ser.errors import SslSerError

HELP = "a noisy copy of a shard set (same keys and labels) for robustness evaluation"
WORK = ".noisy-work"
MANIFEST = "noisy-manifest.jsonl"


def noisy_copy(shards: str | Sequence[str], noise_shards: str | Sequence[str], out_dir: str | Path, *,
               snrs: Sequence[float] = (10.0,), seed: int = 0, categories: dict[str, float] | None = None,
               babble_clips: tuple[int, int] = (3, 7), max_clip_seconds: float = 60.0,
               workers: int | None = 1, overwrite: bool = False, progress: bool = True) -> Any:
    """Write the noisy copy of ``shards`` to ``out_dir``; returns the shard build's report."""
    # deferred: `ssl-ser --help` imports this module to register its arguments; torch costs ~1.5 s
    import torch

    from ssl_ser import audio
    from ssl_ser.augment.draws import derived_seed
    from ssl_ser.augment.noise import NoiseBank, NoiseSampler
    from ssl_ser.data.manifest import Utterance, write_manifest
    from ssl_ser.data.shards import build_shards
    from ssl_ser.data.stream import make_stream

    out_dir = Path(out_dir)
    if (out_dir / INDEX).exists() and not overwrite:
        raise SslSerError(f"{out_dir} already holds a shard set ({INDEX}); pass --overwrite to replace it")
    if not snrs:
        raise SslSerError("give at least one --snr")
    specs = [shards] if isinstance(shards, str) else list(shards)
    noise_specs = [noise_shards] if isinstance(noise_shards, str) else list(noise_shards)
    bank = NoiseBank.from_shards(noise_specs, max_clip_seconds=max_clip_seconds)
    sampler = NoiseSampler(bank, snrs=list(snrs), categories=categories or {}, category_snrs={},
                           babble_clips=babble_clips, where="shards noisy")
    work = out_dir / WORK
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = []
    stream = make_stream(specs, mode="exact", batch_size=1, shuffle=False, num_workers=0,
                         rank=0, world_size=1)
    # deferred: only for progress bars
    from tqdm import tqdm

    with torch.no_grad():
        for batch in tqdm(stream, desc="noisy copy", unit="utt", disable=not progress):
            key, meta = batch.keys[0], dict(batch.meta[0])
            wave = batch.audio[0, :int(batch.lengths[0])]
            noisy, info = sampler.apply(wave, random.Random(derived_seed(seed, key)))
            # keep the mix in range (16-bit FLAC): scale the utterance down rather than clip
            peak = float(noisy.abs().max())
            if peak > 1.0:
                noisy = noisy / peak
            path = work / f"{key}.flac"
            audio.write(path, noisy)
            extra = {k: v for k, v in (meta.get("extra") or {}).items() if k != "num_samples"}
            extra["noisy"] = ({"snr": None, "category": None, "clips": [], "clean_audio": meta.get("audio")}
                              if info is None else
                              {"snr": info.snr, "category": info.category, "clips": info.clips,
                               "clean_audio": meta.get("audio"), "gain": 1.0 / peak if peak > 1.0 else 1.0})
            meta.update(audio=str(path.resolve()), extra=extra, sample_rate=SAMPLE_RATE,
                        duration=wave.numel() / SAMPLE_RATE)
            rows.append(Utterance.from_dict(meta, where=f"{key} in {specs}"))
    if not rows:
        raise SslSerError(f"{specs}: no samples to copy")
    manifest = out_dir / MANIFEST
    write_manifest(rows, manifest)
    report = build_shards(manifest, out_dir, workers=workers, overwrite=overwrite, progress=progress)
    shutil.rmtree(work, ignore_errors=True)
    return report


# --- command line (wired into `ssl-ser shards` as the `noisy` subcommand) ---------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", help="the shard set to copy (directory, glob or URL)")
    parser.add_argument("noise_shards", help="noise shard set(s): MUSAN or a folder of clips, "
                                             "prepared and sharded; comma-separated for several")
    parser.add_argument("out_dir", help="directory for the noisy shard set")
    parser.add_argument("--snr", type=float, action="append", default=None, metavar="DB",
                        help="SNR in dB (repeat for a set drawn per utterance; default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws (default 0)")
    parser.add_argument("--categories", default=None, metavar="NAME[,NAME]",
                        help="noise categories to use (noise, music, babble; default: all the bank has)")
    parser.add_argument("--workers", type=int, default=1,
                        help="encoding processes of the shard build (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace a shard set already in OUT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:

    categories = None
    if args.categories:
        categories = {c.strip(): 1.0 for c in args.categories.split(",") if c.strip()}
    report = noisy_copy(args.shards, [s for s in args.noise_shards.split(",") if s], args.out_dir,
                        snrs=args.snr or [10.0], seed=args.seed, categories=categories,
                        workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    print(report.summary())
    print()
    print(format_index(read_index(report.out_dir)), end="")
    return 0

