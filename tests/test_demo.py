from __future__ import annotations

import json

import yaml

from ssl_ser.cli import main
from ssl_ser.data.manifest import read_manifest
from ssl_ser.data.shard_index import read_index
from ssl_ser.data.stream import make_stream
from ssl_ser.data.synthetic import SyntheticConfig
from ssl_ser.demo import PARTS, DemoPaths, run_demo

TINY = dict(speakers=4, valid_speakers=1, test_speakers=1, utterances_per_class=2,
            unlabelled_speakers=1, unlabelled_per_speaker=6, noise_clips=4, max_seconds=1.5)


def test_run_demo_builds_every_shard_set(tmp_path):
    lines: list[str] = []
    paths = run_demo(tmp_path / "demo", SyntheticConfig(**TINY), progress=False, log=lines.append)

    assert paths == DemoPaths.under(tmp_path / "demo")
    assert (paths.corpus / "labels.csv").is_file()
    expected = {"train_labelled": 2 * 4 * 2, "train_unlabelled": 6, "valid": 8, "test": 8, "noise": 4}
    keys: set[str] = set()
    for part in PARTS:
        rows = read_manifest(paths.manifests[part])
        index = read_index(paths.shards[part])
        assert len(rows) == index.samples == expected[part], part
        assert index.raw["totals"]["rejected"] == 0
        keys |= {r.key for r in rows}
    assert len(keys) == sum(expected.values())  # the parts do not overlap
    assert read_index(paths.shards["train_unlabelled"]).labelled == 0
    valid_speakers = set(read_index(paths.shards["valid"]).speakers)
    assert valid_speakers.isdisjoint(read_index(paths.shards["train_labelled"]).speakers)
    assert any("[3/3] building shard sets" in line for line in lines)

    batch = next(iter(make_stream(paths.shards["train_labelled"], batch_size=4, crop_seconds=1.0,
                                  rank=0, world_size=1, num_workers=0)))
    assert batch.audio.shape == (4, 16000) and batch.labelled.all()


def test_demo_command_prints_summaries(tmp_path, capsys):
    settings = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    assert main(["demo", "--out", str(tmp_path / "d"), "--workers", "1", "--quiet", "--no-train",
                 *settings]) == 0
    out = capsys.readouterr().out
    for part in PARTS:
        assert f"== {part} ==" in out
    assert "rows        16 = 16 samples + 0 rejected" in out
    assert main(["demo", "--out", str(tmp_path / "d"), "--set", "speakrs=3"]) == 2
    assert "did you mean 'speakers'" in capsys.readouterr().err


def test_demo_trains_deepemocluster_and_its_baseline_and_scores_both(tmp_path, capsys):
    settings = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    assert main(["demo", "--out", str(tmp_path / "d"), "--workers", "1", "--quiet", "--debug", *settings,
                 "--job-set", "train.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "[6/6] evaluating both best checkpoints on the test speakers" in out
    table = out[out.index("cluster sizes (K = 8)"):].splitlines()
    assert [line.split()[0] for line in table[1:3]] == ["1", "2"]  # re-clustered every epoch
    assert sum(int(n) for n in table[1].split()[1:9]) == 16 + 6  # labelled + unlabelled, each once
    assert "DeepEmoCluster (labelled + unlabelled)" in out and "supervised, labelled part only" in out
    runs = tmp_path / "d" / "runs"
    for name in ("demo", "demo_supervised"):
        assert (runs / name / "metrics.jsonl").read_text().count("\n") == 2
        assert (runs / name / "curves.png").read_bytes().startswith(b"\x89PNG")
        result = json.loads((tmp_path / "d" / "results" / name / "metrics.json").read_text())
        assert result["utterances"] == 8 and 0.0 <= result["metrics"]["ua"] <= 1.0
        assert (tmp_path / "d" / "results" / name / "confusion.png").is_file()
    dec = [json.loads(line) for line in (runs / "demo" / "metrics.jsonl").read_text().splitlines()]
    assert all(row["pre_reclustered"] == 1.0 and "pre_nmi_hidden" in row for row in dec)
    baseline = yaml.safe_load((tmp_path / "d" / "demo_job_supervised.yaml").read_text())
    assert baseline["method"] == {"name": "supervised"} and baseline["data"]["unlabelled"] == []
    assert baseline["data"]["samples_per_epoch"] == 16 + 6  # as many steps as DeepEmoCluster
