"""Fixtures shared by the method tests (generated data only)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def mostly_unlabelled_shards(demo_shards, tmp_path_factory: pytest.TempPathFactory):
    """The demo's labelled training set with the labels of all but every 4th utterance hidden
    (``labelled=false``, no emotion, no attributes), plus the demo's unlabelled set: a small
    labelled fraction, as semi-supervised methods meet it. ``.keys`` are every training key."""
    from ssl_ser.data.manifest import read_manifest, write_manifest
    from ssl_ser.data.shards import build_shards

    root = tmp_path_factory.mktemp("mostly_unlabelled")
    rows = read_manifest(demo_shards.manifests["train_labelled"])
    hidden = [r if i % 4 == 0 else dataclasses.replace(r, labelled=False, emotion=None, arousal=None,
                                                          valence=None, dominance=None)
              for i, r in enumerate(sorted(rows, key=lambda r: r.key))]
    manifest = root / "train.jsonl"
    write_manifest(hidden, manifest)
    build_shards(manifest, root / "train", max_count=16, workers=1, overwrite=True, progress=False)
    unlabelled = read_manifest(demo_shards.manifests["train_unlabelled"])
    return SimpleNamespace(train=root / "train", unlabelled=demo_shards.shards["train_unlabelled"],
                           valid=demo_shards.shards["valid"],
                           keys=sorted([r.key for r in hidden] + [r.key for r in unlabelled]),
                           labelled=sum(r.labelled for r in hidden), total=len(hidden) + len(unlabelled))


def deepemocluster_job(demo_shards, storage: Path, name: str = "dec", **sections: object) -> dict:
    """A tiny DeepEmoCluster job (dict) on the demo shards: VGG-16 tiny, K=4, CCC + emotion CE."""
    from tests.conftest import tiny_job

    shards = demo_shards.shards
    job = tiny_job(demo_shards, name=name,
                   method={"name": "deepemocluster", "num_clusters": 4, "kmeans": {"niter": 5},
                           "emotion_weight": 0.5},
                   frontend={"name": "logmel_deepemocluster", "n_mels": 32, "n_fft": 512, "hop_length": 256},
                   model={"name": "vgg16_cluster", "size": "tiny"},
                   data={"unlabelled": [str(shards["train_unlabelled"])], "unlabelled_weight": 0.5,
                         "attributes": ["arousal", "valence", "dominance"], "batch_size": 8,
                         "crop_seconds": 1.0},
                   train={"epochs": 2, "metric": "ccc_mean"},
                   debug={"max_train_batches": 2, "max_eval_batches": 2, "num_workers": 0})
    for key, value in sections.items():
        job[key] = {**job.get(key, {}), **value} if isinstance(value, dict) else value
    job["storage_path"] = str(storage)
    return job


@pytest.fixture
def make_deepemocluster_job():
    return deepemocluster_job
