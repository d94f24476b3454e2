"""bench/recipes/ravdess_emobox/local/speaker_free.py on a tiny synthetic corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from ssl_ser.audio import write
from tests.bench.scripts import ROOT, load_script

SCRIPT = ROOT / "bench" / "recipes" / "ravdess_emobox" / "local" / "speaker_free.py"


def test_standardise_pools_the_training_rows_or_takes_each_group_its_own():
    mod = load_script(SCRIPT, "speaker_free")
    rng = np.random.default_rng(0)
    speaker = np.array(["01", "01", "02", "02", "03", "03", "04", "04"])  # odd actors are male
    x = rng.normal(size=(8, 3)) + np.repeat(np.arange(4.0), 2)[:, None] * 10
    train = np.isin(speaker, ["01", "02", "03"])
    pooled = mod.standardise(x, speaker, train, "pooled")
    assert np.allclose(pooled[train].mean(0), 0, atol=1e-6) and abs(pooled[~train].mean()) > 1  # no test statistic
    own = mod.standardise(x, speaker, train, "speaker")
    for s in "01", "02", "03", "04":
        assert np.allclose(own[speaker == s].mean(0), 0, atol=1e-6)
    gender = mod.standardise(x, speaker, train, "gender")
    male = np.isin(speaker, ["01", "03"])
    assert np.allclose(gender[male].mean(0), 0, atol=1e-6)  # both male actors train
    assert np.allclose(gender[speaker == "02"].mean(0), 0, atol=1e-6)  # the only female training actor
    assert not np.allclose(gender[speaker == "04"].mean(0), 0, atol=1e-3)


def corpus(tmp_path: Path) -> tuple[Path, Path]:
    """8 actors x 2 emotions x 2 takes of 0.5-s tones (emotion = pitch), 2 folds of 2 test actors."""
    rows, torch_gen = [], torch.Generator().manual_seed(0)
    t = torch.arange(8000) / 16000
    for a in range(1, 9):
        for e, (emotion, hz) in enumerate((("angry", 300.0), ("sad", 150.0))):
            for take in range(2):
                tone = torch.sin(2 * torch.pi * hz * (1 + 0.05 * a) * t)
                wave = 0.3 * tone + 0.01 * torch.randn(8000, generator=torch_gen)
                path = tmp_path / f"{a:02d}-{e}-{take}.flac"
                write(path, wave)
                rows.append({"key": path.stem, "audio": str(path), "emotion": emotion, "speaker": f"{a:02d}"})
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    group = lambda *ids: [f"ravdess-{i:02d}" for i in ids]  # noqa: E731
    folds = [{"name": "f0", "train": group(3, 4, 5, 6), "valid": group(7, 8), "test": group(1, 2)},
             {"name": "f1", "train": group(1, 2, 5, 6), "valid": group(7, 8), "test": group(3, 4)}]
    folds_json = tmp_path / "folds.json"
    folds_json.write_text(json.dumps({"folds": folds}))
    return manifest, folds_json


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def test_tables_from_a_tiny_corpus(tmp_path):
    manifest, folds_json = corpus(tmp_path)
    cache = tmp_path / "cache" / "feats.npz"
    done = run("--manifest", manifest, "--folds-json", folds_json, "--cache", cache, "--actors", "2", "6")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    heads = [line for line in lines if line.startswith("| MLP") or line.startswith("| logistic")]
    assert len(heads) == 6
    assert any(line.startswith("| 2 |") for line in lines) and any(line.startswith("| 6 |") for line in lines)
    assert np.load(cache)["x"].shape[0] == 32  # one functional vector per utterance, kept for the next call
    too_many = run("--manifest", manifest, "--folds-json", folds_json, "--cache", cache, "--table", "speakers",
                   "--actors", "7")
    assert too_many.returncode != 0 and "--actors 7" in too_many.stderr and too_many.stderr.count("\n") == 1


def test_the_cache_follows_its_manifest(tmp_path):
    mod = load_script(SCRIPT, "speaker_free")
    manifest, _ = corpus(tmp_path)
    cache = tmp_path / "feats.npz"
    first = mod.vectors(manifest, cache)
    assert first[0].shape[0] == 32 and mod.vectors(manifest, cache)[3].tolist() == first[3].tolist()
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(manifest.read_text().splitlines(keepends=True)[:5]))
    again = mod.vectors(fewer, cache)  # another manifest: recomputed, not the stale 32 rows
    assert again[3].tolist() == first[3].tolist()[:5] and np.allclose(again[0], first[0][:5], atol=1e-5)


def test_an_unreadable_clip_is_one_line(tmp_path):
    manifest, folds_json = corpus(tmp_path)
    rows = manifest.read_text().splitlines(keepends=True)
    (tmp_path / "broken.flac").write_bytes(b"not audio")
    rows[3] = json.dumps({**json.loads(rows[3]), "audio": str(tmp_path / "broken.flac")}) + "\n"
    manifest.write_text("".join(rows))
    done = run("--manifest", manifest, "--folds-json", folds_json, "--cache", tmp_path / "c.npz")
    assert done.returncode != 0 and "broken.flac" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "c.npz").exists()


def test_another_corpus_joins_the_training_actors(tmp_path):
    manifest, folds_json = corpus(tmp_path)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    other = tmp_path / "other.jsonl"
    sad = [{**r, "speaker": "x" + r["speaker"]} for r in rows if r["emotion"] == "sad"]
    other.write_text("".join(json.dumps(r) + "\n" for r in sad))
    args = ("--manifest", manifest, "--folds-json", folds_json, "--cache", tmp_path / "c.npz", "--table", "none")
    done = run(*args, "--extra-manifest", other, "--extra-cache", tmp_path / "o.npz")
    assert done.returncode == 0, done.stderr
    assert [line.split(" |")[0] for line in done.stdout.strip().splitlines()[2:]] == [
        "| the fold's training actors", "| + every utterance of the other corpus"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rows[0], "emotion": "bored"}) + "\n")
    refused = run(*args, "--extra-manifest", bad, "--extra-cache", tmp_path / "b.npz")
    assert refused.returncode != 0 and "['bored']" in refused.stderr and refused.stderr.count("\n") == 1
    alone = run(*args, "--extra-manifest", other)
    assert alone.returncode != 0 and "go together" in alone.stderr


def test_a_missing_folds_file_is_one_line(tmp_path):
    manifest, _ = corpus(tmp_path)
    done = run("--manifest", manifest, "--folds-json", tmp_path / "nope.json", "--cache", tmp_path / "c.npz")
    assert done.returncode != 0 and "nope.json" in done.stderr and done.stderr.count("\n") == 1
