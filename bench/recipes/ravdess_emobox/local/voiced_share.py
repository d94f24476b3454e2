"""How much of each clip the energy VAD keeps: the share of voiced frames at the functionals
job's framing (128 log-mels, 1024-sample window, 256-sample hop), per corpus folder.

    python voiced_share.py DATA/ravdess DATA/urdu [--every 4]

Prints, per folder, the mean and the 10th / 90th percentiles over every ``--every``-th FLAC
file (sorted paths). Round 9's README section quotes it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import soundfile as sf
import torch

from ssl_ser.features import build_frontend


def voiced_shares(folder: Path, every: int) -> list[float]:
    frontend = build_frontend("logmel", n_mels=128, n_fft=1024, hop_length=256, vad=True)
    shares = []
    for path in sorted(folder.rglob("*.flac"))[::every]:
        audio, _ = sf.read(path, dtype="float32", always_2d=True)
        wave = torch.from_numpy(audio.mean(1))[None]
        shares.append(float(frontend.voiced(wave, torch.tensor([wave.shape[1]]))[0].float().mean()))
    return shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=4, help="take every N-th file (default 4)")
    args = parser.parse_args(argv)
    print("| corpus | clips | voiced share, mean | 10th percentile | 90th percentile |")
    print("|---|---|---|---|---|")
    for folder in args.folders:
        if not folder.is_dir():
            print(f"voiced_share.py: {folder} is not a folder", file=sys.stderr)
            return 2
        shares = sorted(voiced_shares(folder, args.every))
        if not shares:
            print(f"voiced_share.py: no .flac files under {folder}", file=sys.stderr)
            return 2
        tenth, ninetieth = shares[len(shares) // 10], shares[9 * len(shares) // 10]
        print(f"| {folder.name} | {len(shares)} | {statistics.mean(shares):.3f} | {tenth:.3f} | {ninetieth:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
