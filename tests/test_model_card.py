"""Model cards: next to every run's best checkpoint and every export, stating classes, data
(hours, speakers), protocol, scores, front-end, date, version and licences."""

from __future__ import annotations

import json
from pathlib import Path

from ssl_ser import __version__
from ssl_ser import checkpoint as ckpt
from ssl_ser.cli import main
from ssl_ser.data.corpora import prepare
from ssl_ser.data.manifest import write_manifest
from ssl_ser.data.shard_index import read_index
from ssl_ser.data.shards import build_shards
from ssl_ser.job_loader import job_from_dict
from ssl_ser.model_card import card_from_meta, to_markdown
from ssl_ser.train.runner import run_local


def test_a_finished_run_has_a_card_in_its_best_checkpoint_and_so_has_its_export(
        demo_shards, make_tiny_job, tmp_path: Path) -> None:
    data = make_tiny_job(demo_shards, name="run", train={"epochs": 2},
                         debug={"max_train_batches": 1, "max_eval_batches": 1, "num_workers": 0})
    data["storage_path"] = str(tmp_path / "runs")
    run_local(job_from_dict(data), progress=False)
    best = ckpt.find_checkpoint(tmp_path / "runs" / "run", "best")
    card = json.loads((best / "model_card.json").read_text())
    meta = ckpt.load_meta(best)
    assert card["classes"] == meta["labels"]["classes"] and card["label_map"] == meta["labels"]
    assert card["ssl_ser_version"] == __version__ and card["sample_rate"] == 16000
    assert card["frontend"] == {"name": "logmel"} and card["model"]["name"] == "resnet34_xvector"
    train = read_index(demo_shards.shards["train_labelled"])
    [summary] = card["training_data"]["train"]
    assert (summary["hours"], summary["samples"]) == (round(train.hours, 4), train.samples)
    assert summary["speakers"] == sorted(train.corpus_speakers)
    assert card["protocol"]["speaker_independent"] is True  # the demo's valid speaker is held out
    assert card["protocol"]["selection"].startswith(f"epoch {meta['epoch']} of 2, the best by valid_ua")
    assert card["scores"]["valid_ua"] == meta["metrics"]["valid_ua"]
    assert card["licences"] == {"synthetic": "not recorded"}
    text = (best / "MODEL.md").read_text()
    for needle in ("# Model card: run", "## Training data", "## Licences", "synthetic: not recorded",
                   f"ssl-ser {__version__}", "sample rate 16000 Hz"):
        assert needle in text

    out = tmp_path / "export" / "model.pt"
    assert main(["export", str(tmp_path / "runs" / "run"), "--format", "torchscript", "--out", str(out)]) == 0
    exported = json.loads(out.with_name("model.pt.json").read_text())["card"]
    assert exported["checkpoint"] == str(best) and exported["training_data"] == card["training_data"]
    assert "# Model card: run" in out.with_name("model.pt.md").read_text()


def test_licences_recorded_at_prepare_reach_the_card(write_audio, tmp_path: Path) -> None:
    for i, emotion in enumerate(["angry", "sad"] * 2):
        write_audio(tmp_path / "corpus" / emotion / f"{i}.wav", seconds=0.5, seed=i)
    rows = prepare("folder", tmp_path / "corpus", label_field="emotion", corpus="mine", licence="CC BY-NC-SA 4.0")
    assert {r.extra["licence"] for r in rows} == {"CC BY-NC-SA 4.0"}
    write_manifest(rows, tmp_path / "m.jsonl")
    build_shards(tmp_path / "m.jsonl", tmp_path / "shards", workers=1, progress=False)
    meta = {"job": {"name": "x", "data": {"train": [str(tmp_path / "shards")], "test": [str(tmp_path / "nope")]}},
            "labels": {"field": "emotion", "classes": ["angry", "sad"]}}
    card = card_from_meta(meta)
    assert card["licences"] == {"mine": "CC BY-NC-SA 4.0"}
    assert card["training_data"]["train"][0]["hours"] == round(4 * 0.5 / 3600, 4)
    assert "no shard index" in card["training_data"]["test"][0]["error"]  # said, not a traceback
    assert "- mine: CC BY-NC-SA 4.0" in to_markdown(card)
