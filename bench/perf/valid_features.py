"""Seconds per validation pass of the training loop, with the front-end computed on every pass
(the loop before ``data.feature_cache`` kept the validation features) against the features
kept from the first pass (:data:`ssl_ser.inference.FeatureMemo`): the same loop, weights,
batches and front-end, one process. It also checks that both give the same scores.

By default it generates the demo's synthetic corpus under ``--out`` and validates a tiny
PyResNet on log-mels and an MLP on the functionals front-end (log-mel functionals after an
energy VAD, as ``jobs/functionals_mlp.yaml``); ``--job`` measures one of your jobs instead
(its ``data.valid``; ``--set`` overrides as for ``ssl-ser train``). An ``ssl_encoder`` front-end
memoises its own output per utterance, so for such a job both sides skip the encoder after
their first pass and the ratio shows only what is left. Example::

    python bench/perf/valid_features.py --passes 5
    python bench/perf/valid_features.py --job runs/fm-cv-ravdess_emobox/fm-fold0/config.yaml
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ssl_ser.config import apply_overrides, read_yaml
from ssl_ser.inference import FeatureMemo
from ssl_ser.job_loader import job_from_dict
from ssl_ser.train.loop import Loop
from ssl_ser.train.session import LocalSession

DEMO_JOBS: dict[str, dict[str, Any]] = {
    "log-mel, PyResNet tiny": {"frontend": {"name": "logmel"}, "model": {"name": "pyresnet", "size": "tiny"}},
    "functionals (log-mel + VAD), MLP": {
        "frontend": {"name": "functionals", "base": {"name": "logmel", "vad": True}},
        "model": {"name": "mlp", "hidden": [64]}},
}


def demo_jobs(out: Path) -> dict[str, dict[str, Any]]:
    # deferred: the demo corpus only when no job is given
    from ssl_ser.demo import DemoPaths, build_shard_sets, generate_corpus, prepare_manifests

    paths = DemoPaths.under(out / "demo")
    if not paths.shards["valid"].exists():
        generate_corpus(paths)
        prepare_manifests(paths)
        build_shard_sets(paths, progress=False)
    data = {"train": [str(paths.shards["train_labelled"])],
            "valid": [str(paths.shards["valid"]), str(paths.shards["test"])], "batch_size": 16}
    return {label: {"name": f"bench{i}", "method": {"name": "supervised"}, "data": data, **sections}
            for i, (label, sections) in enumerate(DEMO_JOBS.items())}


def measure(raw: dict[str, Any], out: Path, passes: int) -> dict[str, Any]:
    raw = {**raw, "storage_path": str(out / "runs"), "data": {**raw["data"], "feature_cache": False}}
    job = job_from_dict(raw)
    session = LocalSession(out / "runs" / job.name, 1, "valid_ua", "max")
    loop = Loop(job, session, debug=False, progress=False)
    predictor, valid = loop.predictor, list(job.data.valid)

    def one_pass(memo: FeatureMemo | None) -> tuple[float, Any]:
        start = time.perf_counter()
        scores = predictor.score(predictor.predict(loop.eval_stream(valid), memo=memo))
        return time.perf_counter() - start, scores

    memo = FeatureMemo()
    recomputed, kept = [], []
    for _ in range(passes):  # alternated, so that neither side gets a warmer machine
        recomputed.append(one_pass(None))
        kept.append(one_pass(memo))
    same = all(k[1].metrics == recomputed[0][1].metrics for k in kept)
    return {"utterances": len(recomputed[0][1].keys), "recomputed": statistics.median(t for t, _ in recomputed),
            "first": kept[0][0], "kept": statistics.median(t for t, _ in kept[1:]), "same": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", type=Path, help="a job YAML with data.valid (default: the demo corpus)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override of --job")
    parser.add_argument("--passes", type=int, default=5, help="validation passes per side (at least 2)")
    parser.add_argument("--out", type=Path, help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.passes < 2:
        parser.error("--passes must be at least 2 (the first kept pass computes the features)")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        jobs = ({str(args.job): apply_overrides(read_yaml(args.job), args.set)} if args.job else demo_jobs(out))
        print("| job | utterances | recomputed, s/pass | kept: first pass | kept: later passes | ratio "
              "| same scores |")
        print("|---|---|---|---|---|---|---|")
        for label, raw in jobs.items():
            r = measure(raw, out, args.passes)
            print(f"| {label} | {r['utterances']} | {r['recomputed']:.2f} | {r['first']:.2f} | {r['kept']:.2f} "
                  f"| {r['recomputed'] / r['kept']:.1f}x | {'yes' if r['same'] else 'NO'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
