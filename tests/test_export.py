"""Export: waveform in, scores out; TorchScript and ONNX files match the PyTorch pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ssl_ser.cli import main
from ssl_ser.export import ExportError, check_exportable, export_predictor, load_exported, verify
from ssl_ser.features import build_frontend
from ssl_ser.inference import Predictor
from ssl_ser.labels import LabelSpace
from ssl_ser.models import build_model
from ssl_ser.speaker_norm import SpeakerNorm

CLASSES = ["angry", "happy", "neutral", "sad"]


def _predictor(frontend: str, model: str, seed: int = 0, segment: dict | None = None,
               speaker_norm: bool = False, **frontend_options) -> Predictor:
    torch.manual_seed(seed)
    fe = build_frontend(frontend, **frontend_options).eval()
    net = build_model(model, in_features=fe.num_features, num_classes=4, size="tiny").eval()
    norm = None
    if speaker_norm:  # statistics of an imaginary training set; an export uses the pooled ones
        f = fe.num_features
        norm = SpeakerNorm(["c/a"], torch.randn(1, f), torch.rand(1, f) + 0.5, torch.randn(f), torch.rand(f) + 0.5)
    return Predictor(fe, net, LabelSpace("emotion", CLASSES, {}), speaker_norm=norm,
                     segment=SimpleNamespace(**segment) if segment else None)


def _reference(predictor: Predictor, wave: torch.Tensor) -> dict[str, torch.Tensor]:
    return predictor.outputs(wave, torch.full((wave.shape[0],), wave.shape[1]), None)


def test_torchscript_export_matches_pytorch_at_any_batch_and_length(tmp_path: Path) -> None:
    predictor = _predictor("logmel", "pyresnet", speaker_norm=True, n_mels=64, n_fft=512, hop_length=256)
    report = export_predictor(predictor, tmp_path / "model.pt", "torchscript", example_seconds=1.5)
    assert report.max_abs_diff < 1e-5 and report.outputs == ["probs", "embedding"]
    assert [c["shape"][0] for c in report.checks] == [2, 1, 3]
    module = torch.jit.load(str(tmp_path / "model.pt"))
    wave = 0.2 * torch.randn(4, 27_123)  # a length and batch size the trace never saw
    probs, embedding = module(wave)
    expected = _reference(predictor, wave)
    assert torch.allclose(probs, expected["probs"], atol=1e-5)
    assert torch.allclose(embedding, expected["embedding"], atol=1e-4)
    info = json.loads((tmp_path / "model.pt.json").read_text())
    assert info["classes"] == CLASSES and info["speaker_norm"].startswith("global")
    assert info["input"]["shape"] == ["batch", "samples"] and info["sample_rate"] == 16000


def test_onnx_export_of_a_segment_model_matches_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    predictor = _predictor("spectrogram_mulaw", "attention_cnn", segment={"seconds": 1.0, "eval_hop": 0.4})
    report = export_predictor(predictor, tmp_path / "model.onnx", "onnx", example_seconds=1.6)
    assert report.max_abs_diff < 1e-4
    run = load_exported(tmp_path / "model.onnx", "onnx")
    wave = 0.2 * torch.randn(2, 45_000)  # 2.8 s: 5 segments of 1 s every 0.4 s inside the graph
    probs, embedding = run(wave)
    expected = _reference(predictor, wave)
    assert np.allclose(probs.numpy(), expected["probs"].numpy(), atol=1e-5)
    assert np.allclose(embedding.numpy(), expected["embedding"].numpy(), atol=1e-4)
    assert json.loads((tmp_path / "model.onnx.json").read_text())["segments"]["hop"] == 0.4


def test_an_export_that_differs_from_pytorch_is_refused(tmp_path: Path) -> None:
    first = _predictor("logmel", "resnet34_xvector", seed=0, n_mels=40, n_fft=512, hop_length=160)
    export_predictor(first, tmp_path / "a.pt", "torchscript", example_seconds=1.0)
    other = _predictor("logmel", "resnet34_xvector", seed=1, n_mels=40, n_fft=512, hop_length=160)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        verify(other, tmp_path / "a.pt", "torchscript", ["probs", "embedding"], 1600, lengths=(16000,))


def test_front_ends_and_models_that_cannot_export_are_refused_up_front() -> None:
    cases = [("fbank", "resnet34_xvector", "onnx", {}, "Kaldi fbank"),
             ("fbank", "resnet34_xvector", "torchscript", {}, "Kaldi fbank"),
             ("mfcc", "resnet34_xvector", "onnx", {}, "VAD"),
             ("spectrogram_daae", "daae", "onnx", {}, "packed-sequence"),
             ("spectrogram_daae", "daae", "torchscript", {}, "gradient reversal")]
    for frontend, model, fmt, options, reason in cases:
        with pytest.raises(ExportError, match=reason):
            check_exportable(_predictor(frontend, model, **options), fmt)
    check_exportable(_predictor("mfcc", "resnet34_xvector", vad=False), "onnx")  # no VAD: fine
    with pytest.raises(ExportError, match="unknown export format"):
        check_exportable(_predictor("logmel", "pyresnet"), "tflite")


def test_onnx_export_without_the_onnx_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    with pytest.raises(ExportError, match=r"needs onnxscript: pip install 'ssl-ser\[onnx\]'"):
        check_exportable(_predictor("logmel", "pyresnet"), "onnx")
    check_exportable(_predictor("logmel", "pyresnet"), "torchscript")  # needs nothing extra


def test_export_command_from_a_checkpoint(demo_shards, make_tiny_job, tmp_path: Path, capsys) -> None:
    from ssl_ser.train.config import job_from_dict
    from ssl_ser.train.runner import run_local

    data = make_tiny_job(demo_shards, name="run", train={"epochs": 1},
                         debug={"max_train_batches": 1, "max_eval_batches": 1, "num_workers": 0})
    data["frontend"] = {"name": "logmel", "speaker_norm": True, "n_mels": 40, "n_fft": 512, "hop_length": 160}
    data["storage_path"] = str(tmp_path / "runs")
    run_local(job_from_dict(data), progress=False)
    out = tmp_path / "export" / "model.pt"
    assert main(["export", str(tmp_path / "runs" / "run"), "--format", "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max abs difference vs PyTorch" in printed and out.is_file()
    diff = float(printed.strip().splitlines()[-1].rsplit(" ", 1)[1])
    assert diff < 1e-5
    assert main(["export", str(tmp_path / "nothing"), "--format", "onnx", "--out", str(out)]) == 2
    assert "no such run or checkpoint" in capsys.readouterr().err


def test_a_write_failure_is_not_blamed_on_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def full_disk(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    predictor = _predictor("logmel", "pyresnet", n_mels=40, n_fft=512, hop_length=256)
    with pytest.raises(ExportError) as info:
        export_predictor(predictor, tmp_path / "m.pt", "torchscript", example_seconds=1.0)
    assert str(info.value) == f"cannot write {tmp_path / 'm.pt'}: No space left on device"
