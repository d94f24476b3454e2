"""Prediction on new audio: any rate and channel count, long files in windows, bad files reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssl_ser.cli import main
from ssl_ser.features import build_frontend
from ssl_ser.inference import Predictor
from ssl_ser.job_loader import job_from_dict
from ssl_ser.labels import LabelSpace
from ssl_ser.models import build_model
from ssl_ser.predict import (
    PredictError,
    PredictorScorer,
    find_audio,
    score_wave,
    windows,
)
from ssl_ser.recognizer import Recognizer
from ssl_ser.train.runner import run_local

CLASSES = ["angry", "happy", "neutral", "sad"]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    frontend = build_frontend("logmel", n_mels=40, n_fft=512, hop_length=160).eval()
    model = build_model("resnet34_xvector", in_features=40, num_classes=4, size="tiny").eval()
    return Predictor(frontend, model, LabelSpace("emotion", CLASSES, {}))


def predict_files(predictor: Predictor, paths, *, window=None, hop=None, **options):
    """Rows as ``ssl-ser predict`` writes them."""
    recognizer = Recognizer(PredictorScorer(predictor), window=window, hop=hop)
    return (r.to_dict() for r in recognizer.predict_files(paths, **options))


def _probs(row: dict) -> np.ndarray:
    return np.array([row["probs"][c] for c in CLASSES])


def test_windows_cover_the_whole_file() -> None:
    assert windows(100, 40, 20) == [(0, 40), (20, 60), (40, 80), (60, 100)]
    assert windows(110, 40, 40) == [(0, 40), (40, 80), (70, 110)]  # the last one ends at the end
    assert windows(30, 40, 20) == [(0, 30)]
    with pytest.raises(PredictError, match="positive"):
        windows(10, 0, 1)


def test_any_rate_and_channel_count(predictor: Predictor, write_audio, tmp_path: Path) -> None:
    mono16 = write_audio(tmp_path / "mono16.wav", seconds=2.0, rate=16000, freq=300.0)
    stereo16 = tmp_path / "stereo16.flac"
    data, rate = sf.read(mono16, dtype="float32")
    sf.write(stereo16, np.stack([data, data], 1), rate, subtype="PCM_16")  # the same signal twice
    stereo44 = write_audio(tmp_path / "stereo44.wav", seconds=3.0, rate=44100, channels=2, freq=300.0)
    mono8 = write_audio(tmp_path / "mono8.flac", seconds=1.5, rate=8000, freq=300.0)
    rows = list(predict_files(predictor, [mono16, stereo16, stereo44, mono8]))
    assert [r.get("error") for r in rows] == [None] * 4
    assert [r["duration"] for r in rows] == [2.0, 2.0, 3.0, 1.5]
    assert np.allclose(_probs(rows[0]), _probs(rows[1]), atol=1e-6)  # a downmix of two equal channels
    for row in rows:
        assert abs(sum(row["probs"].values()) - 1) < 1e-4 and row["pred"] == max(row["probs"], key=row["probs"].get)


def test_long_recordings_are_scored_in_windows(predictor: Predictor, write_audio, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "long.wav", seconds=25.0, rate=22050, freq=200.0)
    row = next(predict_files(predictor, [path], window=10.0, hop=5.0, per_window=True, embedding=True))
    spans = [(w["start"], w["end"]) for w in row["windows"]]
    assert spans == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (15.0, 25.0)]
    window_probs = np.array([[w["probs"][c] for c in CLASSES] for w in row["windows"]])
    assert np.allclose(_probs(row), window_probs.mean(0), atol=1e-5)  # the file's score: their mean
    assert len(row["embedding"]) == predictor.model.embedding_dim
    # each window scored as a file of its own gives the same numbers
    from ssl_ser.audio import load_checked

    wave = load_checked(path).wave
    alone = score_wave(PredictorScorer(predictor), wave[5 * 16000:15 * 16000]).to_dict()
    assert np.allclose(_probs(alone), window_probs[1], atol=1e-5)
    whole = next(predict_files(predictor, [path], window=None, per_window=True))
    assert "windows" not in whole and not np.allclose(_probs(whole), _probs(row), atol=1e-6)


def test_unreadable_files_are_reported_and_the_rest_scored(predictor: Predictor, write_audio,
                                                           tmp_path: Path) -> None:
    good = write_audio(tmp_path / "a" / "good.wav", seconds=1.0)
    (tmp_path / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00not really audio")
    empty = tmp_path / "a" / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), 16000)
    also_good = write_audio(tmp_path / "a" / "sub" / "deeper.flac", seconds=1.2, rate=48000)
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    paths = find_audio([tmp_path / "a", tmp_path / "missing.wav"])
    assert [p.name for p in paths] == ["broken.wav", "empty.wav", "good.wav", "deeper.flac", "missing.wav"]
    rows = list(predict_files(predictor, paths))
    by_name = {Path(r["path"]).name: r for r in rows}
    broken = by_name["broken.wav"]["error"]
    assert broken.startswith("unreadable: ") and "cannot decode" in broken
    assert by_name["empty.wav"]["error"] == "empty: no audio samples"
    assert by_name["missing.wav"]["error"] == f"missing: no such file: {tmp_path / 'missing.wav'}"
    assert by_name["missing.wav"]["reason"] == "missing"
    assert "error" not in by_name["good.wav"] and "error" not in by_name["deeper.flac"]
    assert by_name["good.wav"]["path"] == str(good) and by_name["deeper.flac"]["path"] == str(also_good)


def test_predict_command(demo_shards, make_tiny_job, write_audio, tmp_path: Path, capsys) -> None:
    data = make_tiny_job(demo_shards, name="run", train={"epochs": 1},
                         debug={"max_train_batches": 1, "max_eval_batches": 1, "num_workers": 0})
    data["data"]["attributes"] = ["arousal", "valence"]
    data["model"] = {"name": "vgg16_cluster", "size": "tiny"}
    data["frontend"] = {"name": "logmel_deepemocluster", "speaker_norm": True}
    data["storage_path"] = str(tmp_path / "runs")
    run_local(job_from_dict(data), progress=False)
    audio = tmp_path / "audio"
    write_audio(audio / "one.wav", seconds=1.0, rate=22050, channels=2)
    write_audio(audio / "two.flac", seconds=12.0, rate=16000)
    (audio / "three.wav").write_bytes(b"junk")
    out = tmp_path / "preds.jsonl"
    code = main(["predict", str(tmp_path / "runs" / "run"), str(audio), "--out", str(out), "--embeddings",
                 "--window", "5", "--per-window"])
    assert code == 1  # one file could not be scored
    err = capsys.readouterr().err
    assert "three.wav" in err and "scored 2 file(s)" in err
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"one.wav", "two.flac", "three.wav"} and "error" in rows["three.wav"]
    assert set(rows["one.wav"]["attributes"]) == {"arousal", "valence"} and rows["one.wav"]["embedding"]
    assert [w["end"] for w in rows["two.flac"]["windows"]] == [5.0, 10.0, 12.0]
    assert "windows" not in rows["one.wav"]
