"""Where a training epoch's time goes and what the input looks like, on one cv fold.

    python measure.py FOLD_JOB.yaml      (a job written by fold_job.py)

Times one pass of the training stream (decode + crop), the front-end on its batches and the
model's forward + backward, then prints per-utterance and per-speaker statistics of the
features (log-mel levels differ by speaker: what speaker normalisation removes).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from ssl_ser.data.histograms import class_histogram
from ssl_ser.features import build_frontend
from ssl_ser.inference import frontend_section
from ssl_ser.job import component
from ssl_ser.job_loader import load_job
from ssl_ser.labels import build_label_space
from ssl_ser.models import build_model
from ssl_ser.train.data import make_eval_stream, make_train_stream


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    args = parser.parse_args()
    torch.set_num_threads(1)
    job = load_job(args.job)
    labels = build_label_space(job.data.labels, class_histogram(job.data.train, job.data.labels.field))
    name, options, _ = frontend_section(job.frontend)
    frontend = build_frontend(name, **options)
    model_name, model_options = component(job.model, "model")
    model = build_model(model_name, in_features=frontend.num_features, num_classes=labels.num_classes,
                        **model_options)
    print(f"model {model_name} {model_options}: {sum(p.numel() for p in model.parameters())} parameters")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    cpu = torch.device("cpu")
    stream = make_train_stream(job, [(job.data.train, 1.0)], 0, rank=0, world_size=1, debug=True, device=cpu)
    t_read = t_front = t_model = 0.0
    n = 0
    start = time.perf_counter()
    batches = []
    for batch in stream:
        t0 = time.perf_counter()
        t_read += t0 - start
        feats, frames = frontend(batch.audio, batch.lengths)
        t1 = time.perf_counter()
        out = model(feats, frames)
        y = torch.tensor(labels.encode_all(batch.meta))
        loss = torch.nn.functional.cross_entropy(out["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        t_front += t1 - t0
        t_model += t2 - t1
        n += len(batch.keys)
        batches.append(feats.shape)
        start = time.perf_counter()
    total = t_read + t_front + t_model
    print(f"training epoch: {n} crops, {total:.1f} s = read/decode/crop {t_read:.1f} s "
          f"({100 * t_read / total:.0f}%), front-end {t_front:.1f} s ({100 * t_front / total:.0f}%), "
          f"model fwd+bwd+step {t_model:.1f} s ({100 * t_model / total:.0f}%); feature map {list(batches[0])}")

    # feature statistics of whole utterances (eval mode: no SpecAugment)
    frontend.eval()
    per_utt: list[tuple[str, str, float, float]] = []
    t0 = time.perf_counter()
    durations = []
    for batch in make_eval_stream(job, job.data.train, rank=0, world_size=1, debug=True, device=cpu):
        with torch.no_grad():
            feats, frames = frontend(batch.audio, batch.lengths)
        for row, meta in enumerate(batch.meta):
            f = feats[row, :, : int(frames[row])]
            per_utt.append((str(meta.get("speaker")), str(meta.get("emotion")), float(f.mean()), float(f.std())))
            durations.append(int(batch.lengths[row]) / 16000)
    print(f"exact pass over the training set (decode + front-end, whole utterances): {time.perf_counter() - t0:.1f} s, "
          f"{len(per_utt)} utterances, duration {np.mean(durations):.2f} +- {np.std(durations):.2f} s "
          f"(min {np.min(durations):.2f}, max {np.max(durations):.2f})")
    by_spk: dict[str, list[float]] = defaultdict(list)
    by_emo: dict[str, list[float]] = defaultdict(list)
    for spk, emo, m, _ in per_utt:
        by_spk[spk].append(m)
        by_emo[emo].append(m)
    means = np.array([m for _, _, m, _ in per_utt])
    stds = np.array([s for _, _, _, s in per_utt])
    spk_means = np.array([np.mean(v) for v in by_spk.values()])
    print(f"utterance mean level: {means.mean():.2f} +- {means.std():.2f} (std within utterance {stds.mean():.2f})")
    print(f"speaker mean level: spread (std over speakers) {spk_means.std():.2f}, range "
          f"{spk_means.min():.2f}..{spk_means.max():.2f}")
    print("emotion mean level: " + ", ".join(f"{e} {np.mean(v):.2f}" for e, v in sorted(by_emo.items())))


if __name__ == "__main__":
    main()
