"""The Python API: a run or an export loaded once, then paths, waveforms or batches scored; the
same numbers as ``ssl-ser predict`` and the same refusals as the shard builder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssl_ser.audio import AudioRejected
from ssl_ser.cli import main
from ssl_ser.errors import SslSerError
from ssl_ser.recognizer import Recognizer, Refusal

_RUNS: dict[str, Path] = {}


@pytest.fixture
def tiny_run(demo_shards, make_tiny_job, tmp_path_factory) -> Path:
    """A one-batch run of a model with arousal/valence heads and speaker norm (trained once)."""
    if "run" not in _RUNS:
        from ssl_ser.job_loader import job_from_dict
        from ssl_ser.train.runner import run_local

        data = make_tiny_job(demo_shards, name="run", train={"epochs": 1},
                             debug={"max_train_batches": 1, "max_eval_batches": 1, "num_workers": 0})
        data["data"]["attributes"] = ["arousal", "valence"]
        data["data"]["eval_max_seconds"] = 4.0
        data["model"] = {"name": "vgg16_cluster", "size": "tiny"}
        data["frontend"] = {"name": "logmel_deepemocluster", "speaker_norm": True}
        data["storage_path"] = str(tmp_path_factory.mktemp("runs"))
        run_local(job_from_dict(data), progress=False)
        _RUNS["run"] = Path(data["storage_path"]) / "run"
    return _RUNS["run"]


def test_a_path_a_waveform_and_a_batch_give_the_same_scores(tiny_run: Path, write_audio, tmp_path: Path) -> None:
    recognizer = Recognizer.from_run(tiny_run, device="cpu")
    assert recognizer.classes and recognizer.attributes == ["arousal", "valence"]
    assert recognizer.window == 4.0 and recognizer.hop is None  # the job's eval_max_seconds
    path = write_audio(tmp_path / "a.wav", seconds=1.5, rate=22_050, channels=2)
    by_path = recognizer.predict(path, embedding=True)
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    by_wave = recognizer.predict(data.T, rate, embedding=True)  # [channels, samples] and its rate
    by_tensor = recognizer.predict((torch.from_numpy(data.T.copy()), rate))
    assert by_path.label == by_wave.label == by_tensor.label == max(by_path.probs, key=by_path.probs.get)
    assert by_path.probs == by_wave.probs == by_tensor.probs
    assert abs(sum(by_path.probs.values()) - 1) < 1e-5 and by_path.duration == pytest.approx(1.5)
    assert set(by_path.attributes) == {"arousal", "valence"} and by_tensor.embedding is None
    assert by_path.embedding == by_wave.embedding and len(by_path.embedding) > 0
    batch = recognizer.predict_batch([path, (data.T, rate)])
    assert [b.probs for b in batch] == [by_path.probs, by_path.probs]
    with pytest.raises(SslSerError, match=r"\[channels, samples\].*transpose"):
        recognizer.predict(data, rate)  # soundfile's [samples, channels] layout
    with pytest.raises(SslSerError, match="needs its sample rate"):
        recognizer.predict(data.T)


def test_long_recordings_give_per_window_and_aggregated_scores(tiny_run: Path, write_audio,
                                                              tmp_path: Path) -> None:
    recognizer = Recognizer.from_run(tiny_run, device="cpu", window=2.0, hop=1.0)
    result = recognizer.predict(write_audio(tmp_path / "long.wav", seconds=5.5), per_window=True)
    assert [(w.start, w.end) for w in result.windows] == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0),
                                                          (3.5, 5.5)]
    mean = np.mean([[w.probs[c] for c in recognizer.classes] for w in result.windows], axis=0)
    assert np.allclose(mean, [result.probs[c] for c in recognizer.classes], atol=1e-6)
    assert all(set(w.attributes) == {"arousal", "valence"} for w in result.windows)


def test_predict_command_and_api_give_identical_outputs(tiny_run: Path, write_audio, tmp_path: Path) -> None:
    folder = tmp_path / "audio"
    paths = [write_audio(folder / "one.wav", seconds=1.0, rate=22_050, channels=2),
             write_audio(folder / "two.flac", seconds=9.0, seed=3),
             write_audio(folder / "sub" / "three.wav", seconds=0.6, rate=8_000, seed=5)]
    loud = folder / "loud.wav"
    sf.write(str(loud), (4.0 * np.sin(np.arange(16_000) / 7.0)).astype(np.float32), 16_000, subtype="FLOAT")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", str(tiny_run), str(folder), "--out", str(out), "--embeddings", "--per-window",
                 "--hop", "2", "--device", "cpu"]) == 0
    from_command = [json.loads(line) for line in out.read_text().splitlines()]
    recognizer = Recognizer.from_run(tiny_run, device="cpu", hop=2.0)
    from_api = [recognizer.predict(p, embedding=True, per_window=True).to_dict()
                for p in sorted([*paths, loud])]
    assert [r["path"] for r in from_command] == [str(p) for p in sorted([*paths, loud])]
    assert from_command == from_api  # the same bytes of JSON, field for field
    assert [len(r.get("windows", [])) for r in from_command] == [0, 0, 0, 4]
    assert from_command[0]["normalised_from_peak"] == pytest.approx(4.0, rel=1e-3)  # loud.wav, scaled


def test_bad_audio_gets_the_same_refusal_from_api_predict_and_shard_builder(
        tiny_run: Path, write_audio, tmp_path: Path, capsys) -> None:
    from ssl_ser.data.manifest import utterance, write_manifest
    from ssl_ser.data.shards import build_shards

    bad = tmp_path / "bad"
    bad.mkdir()
    sf.write(str(bad / "zeros.wav"), np.zeros(16_000, np.float32), 16_000)  # predict said "angry 0.87"
    write_audio(bad / "ten_ms.wav", seconds=0.01)
    sf.write(str(bad / "empty.wav"), np.zeros(0, np.float32), 16_000)
    nan = np.full(8000, 0.1, np.float32)
    nan[5] = np.inf
    sf.write(str(bad / "nan.wav"), nan, 16_000, subtype="FLOAT")
    sf.write(str(bad / "flat.wav"), np.full(8000, -0.25, np.float32), 16_000, subtype="FLOAT")
    (bad / "junk.wav").write_bytes(b"RIFF not audio")
    (bad / "gone.wav").symlink_to(tmp_path / "deleted.wav")
    names = sorted(p.name for p in bad.iterdir())

    rows = [utterance(bad / n, key=n[:-4], corpus="c") for n in names]
    for name, row in zip(names, rows):
        row.audio = str(bad / name)  # the link itself, as predict sees it
    write_manifest(rows, tmp_path / "m.jsonl")
    build_shards(tmp_path / "m.jsonl", tmp_path / "shards", workers=1, progress=False)
    shards = {r["key"] + ".wav": f"{r['reason']}: {r['detail']}"
              for r in map(json.loads, (tmp_path / "shards" / "rejects.jsonl").read_text().splitlines())}

    assert main(["predict", str(tiny_run), str(bad), "--out", str(tmp_path / "p.jsonl"), "--device", "cpu"]) == 1
    predicted = {Path(r["path"]).name: r["error"]
                 for r in map(json.loads, (tmp_path / "p.jsonl").read_text().splitlines())}
    assert "zeros.wav: silent: all samples are zero at 16-bit resolution" in capsys.readouterr().err

    recognizer = Recognizer.from_run(tiny_run, device="cpu")
    api = {}
    for name in names:
        with pytest.raises(AudioRejected) as info:
            recognizer.predict(bad / name)
        api[name] = str(info.value)
    assert shards == predicted == api
    assert {v.split(":")[0] for v in api.values()} == {"silent", "too_short", "empty", "non_finite",
                                                        "constant", "unreadable", "missing"}
    assert [type(r) for r in recognizer.predict_files([bad / "zeros.wav"])] == [Refusal]


def test_output_paths_are_checked_before_the_work(tiny_run: Path, write_audio, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    audio = write_audio(tmp_path / "a.wav")
    for argv in (["predict", str(tiny_run), str(audio), "--out", str(tmp_path / "file" / "p.jsonl")],
                 ["export", str(tiny_run), "--format", "torchscript", "--out", str(tmp_path / "file" / "m.pt")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"ssl-ser {argv[0]}: error: cannot write {argv[-1]}: {tmp_path / 'file'} is a file, "
                       f"not a folder")
    assert main(["predict", str(tiny_run), str(audio), "--out", str(tmp_path)]) == 2
    assert "is a folder; give a file name" in capsys.readouterr().err


def test_an_export_loads_and_scores_like_the_run(tiny_run: Path, write_audio, tmp_path: Path) -> None:
    assert main(["export", str(tiny_run), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    exported = Recognizer.from_export(tmp_path / "m.pt", device="cpu", window=4.0)
    run = Recognizer.from_run(tiny_run, device="cpu")
    assert exported.classes == run.classes and exported.attributes == run.attributes
    path = write_audio(tmp_path / "a.wav", seconds=6.0, rate=44_100)
    a, b = exported.predict(path, embedding=True, per_window=True), run.predict(path, embedding=True, per_window=True)
    assert a.label == b.label and len(a.windows) == len(b.windows) == 2
    assert max(abs(a.probs[c] - b.probs[c]) for c in run.classes) < 1e-5
    assert max(abs(a.attributes[k] - b.attributes[k]) for k in run.attributes) < 1e-4
    assert np.allclose(a.embedding, b.embedding, atol=1e-4)
