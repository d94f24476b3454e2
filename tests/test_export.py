"""Export: waveform in, scores out; TorchScript and ONNX files match the PyTorch pipeline."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ssl_ser.cli import main
from ssl_ser.export import (
    ExportError,
    check_exportable,
    export_predictor,
    load_exported,
    verify,
)
from ssl_ser.features import build_frontend
from ssl_ser.inference import Predictor
from ssl_ser.labels import LabelSpace
from ssl_ser.models import MODELS, build_model
from ssl_ser.speaker_norm import SpeakerNorm

CLASSES = ["angry", "happy", "neutral", "sad"]


def _predictor(frontend: str, model: str, seed: int = 0, segment: dict | None = None,
               speaker_norm: bool = False, **frontend_options) -> Predictor:
    torch.manual_seed(seed)
    fe = build_frontend(frontend, **frontend_options).eval()
    sized = "size" in inspect.signature(MODELS.get(model).__init__).parameters  # utterance_stats has no sizes
    net = build_model(model, in_features=fe.num_features, num_classes=4, **({"size": "tiny"} if sized else {})).eval()
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


def test_the_fbank_front_end_is_refused_up_front() -> None:
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(ExportError, match="Kaldi fbank"):
            check_exportable(_predictor("fbank", "resnet34_xvector"), fmt)
    with pytest.raises(ExportError, match="unknown export format"):
        check_exportable(_predictor("logmel", "pyresnet"), "tflite")


def _recipe_pairs() -> list[tuple[str, dict, str, dict | None]]:
    """Every (front-end with its options, model, segment setting) the shipped jobs/*.yaml use."""
    import yaml

    pairs: dict[tuple[str, str], tuple[str, dict, str, dict | None]] = {}
    for job in sorted((Path(__file__).resolve().parents[1] / "jobs").glob("*.yaml")):
        data = yaml.safe_load(job.read_text())
        frontend = dict(data["frontend"])
        name = frontend.pop("name")
        if name == "ssl_encoder":  # refused with its reason (tests/test_ssl_encoder.py)
            continue
        frontend.pop("speaker_norm", None)
        model = data["model"]["name"]
        pairs.setdefault((name, model), (name, frontend, model, (data.get("data") or {}).get("segment")))
    return [pairs[k] for k in sorted(pairs)]


RECIPE_PAIRS = _recipe_pairs()


def _speechlike(rows: int, seconds: float, seed: int) -> torch.Tensor:
    """Voiced bursts (harmonics of a wandering f0) between pauses of near silence, so the MFCC
    VAD has frames to drop, as in speech."""
    generator = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    t = torch.arange(n) / 16000
    out = []
    for _ in range(rows):
        f0 = 120 + 100 * torch.rand(1, generator=generator) + 20 * torch.sin(2 * torch.pi * 0.7 * t)
        phase = 2 * torch.pi * torch.cumsum(f0, 0) / 16000
        voiced = sum(torch.sin(k * phase) / k for k in range(1, 6))
        gate = (torch.rand(int(seconds * 5) + 1, generator=generator) > 0.35).float()
        envelope = gate.repeat_interleave(3200)[:n]
        out.append(0.25 * voiced * envelope + 1e-4 * torch.randn(n, generator=generator))
    return torch.stack(out)


# ONNX's STFT differs from torch's by float32 rounding. In the speech-like audio's near-silent
# gaps (1e-4 noise) that moves the log power, and the utterance functionals (sd, quantiles,
# change over every frame) carry it to the outputs: measured 2.6e-4 on probabilities, 3e-4
# relative on the embedding. The functionals alone export to within 1e-6, and TorchScript
# passes the default tolerance. The functionals front-end + MLP computes the same statistics.
LOOSER = {("onnx", "utterance_stats"): 10.0, ("onnx", "mlp"): 10.0}


def test_the_shipped_recipes_use_these_pairs() -> None:
    assert {(f, m) for f, _, m, _ in RECIPE_PAIRS} == {
        ("mfcc", "resnet34_xvector"), ("logmel", "pyresnet"), ("logmel_deepemocluster", "vgg16_cluster"),
        ("spectrogram_mulaw", "attention_cnn"), ("spectrogram_daae", "daae"), ("logmel", "utterance_stats"),
        ("functionals", "mlp")}


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("frontend, options, model, segment", RECIPE_PAIRS,
                         ids=[f"{f}-{m}" for f, _, m, _ in RECIPE_PAIRS])
def test_every_recipe_pair_exports_and_matches_pytorch_on_real_length_audio(
        frontend: str, options: dict, model: str, segment: dict | None, fmt: str, tmp_path: Path) -> None:
    """Max abs difference, export vs PyTorch, on 6.4-s (batch 2) and 11-s speech-like audio:
    tolerance 1e-4 x max(1, largest output) (ssl_ser.export.TOLERANCE). Measured on these tiny
    models: TorchScript at most 4.5e-8, ONNX at most 1.1e-7 (probs) and 5.4e-6 (embeddings)."""
    from ssl_ser.export import TOLERANCE

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    predictor = _predictor(frontend, model, segment={k: segment[k] for k in ("seconds", "eval_hop")}
                           if segment else None, speaker_norm=True, **options)
    report = export_predictor(predictor, tmp_path / f"model.{fmt}", fmt, example_seconds=3.0)
    run = load_exported(tmp_path / f"model.{fmt}", fmt)
    for rows, seconds, seed in [(2, 6.4, 0), (1, 11.0, 1)]:
        wave = _speechlike(rows, seconds, seed)
        expected = _reference(predictor, wave)
        got = dict(zip(report.outputs, run(wave)))
        assert set(got) == set(expected) - {"attributes"} | ({"attributes"} & set(got))
        for name, value in got.items():
            diff = float((value - expected[name]).abs().max())
            allowed = TOLERANCE * LOOSER.get((fmt, model), 1.0)
            assert diff <= allowed * max(1.0, float(expected[name].abs().max())), (name, diff)
            key = f"{fmt} {frontend}+{model} {name}"
            MEASURED[key] = max(diff, MEASURED.get(key, 0))
    if frontend == "mfcc":  # the audio makes the VAD drop frames, so the fixed-width packing is exercised
        fe = predictor.frontend
        voiced = fe.voiced(wave, torch.tensor([wave.shape[1]]))
        assert 0.3 < float(voiced.float().mean()) < 0.9 and fe.vad


MEASURED: dict[str, float] = {}


def _plus_functionals(base: dict, network: str = "pyresnet") -> Predictor:
    torch.manual_seed(0)
    fe = build_frontend("plus_functionals", base=base, functionals={"cepstra": 4}).eval()
    net = build_model("with_functionals", in_features=fe.num_features, num_classes=4, bands=fe.bands,
                      base={"name": network, "size": "tiny"}, functionals={"hidden": [8]}).eval()
    return Predictor(fe, net, LabelSpace("emotion", CLASSES, {}))


@pytest.mark.parametrize(("base", "network"), [
    ({"name": "logmel", "n_mels": 24}, "pyresnet"),
    ({"name": "spectrogram_mulaw", "n_fft": 400, "win_length": 400, "num_bins": 100}, "attention_cnn"),
    ({"name": "spectrogram_daae"}, "daae"),
])
def test_a_network_beside_the_front_ends_functionals_exports(tmp_path: Path, base: dict, network: str) -> None:
    """The recipes' joint models, segment models included (they take whole utterances here)."""
    predictor = _plus_functionals(base, network)
    report = export_predictor(predictor, tmp_path / "model.torchscript", "torchscript", example_seconds=3.0)
    wave = _speechlike(1, 5.0, 0)
    got = dict(zip(report.outputs, load_exported(tmp_path / "model.torchscript", "torchscript")(wave)))
    torch.testing.assert_close(got["probs"], _reference(predictor, wave)["probs"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("frontend, model, segment, fmt", [
    ("spectrogram_mulaw", "attention_cnn", {"seconds": 1.0, "eval_hop": 0.4}, "torchscript"),
    ("spectrogram_daae", "daae", {"seconds": 0.265, "eval_hop": 0.1}, "torchscript"),
    ("spectrogram_daae", "daae", {"seconds": 0.265, "eval_hop": 0.1}, "onnx"),
], ids=["attention_cnn", "daae", "daae-onnx"])
def test_a_segment_model_on_voiced_frames_exports_with_the_windows_evaluation_cuts(
        tmp_path: Path, frontend: str, model: str, segment: dict, fmt: str) -> None:
    """Its windows are cut from each row's voiced frames, as in evaluation; a row with less
    voice than one segment gives one short window (the DAAE's BLSTM reads its valid frames)."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    predictor = _predictor(frontend, model, segment=segment, speaker_norm=True, vad=True)
    path = tmp_path / f"model.{fmt}"
    report = export_predictor(predictor, path, fmt, example_seconds=2.0)
    assert report.max_abs_diff < 1e-4
    wave = _speechlike(3, 3.3, 1)
    wave[2, 960:] = 1e-4 * torch.randn(wave.shape[1] - 960)  # 0.06 s of voice at most, then silence
    lengths = torch.full((3,), wave.shape[1])
    feats, frames = predictor.frontend(wave, lengths)
    size, _ = predictor.window_frames(segment["eval_hop"])
    assert frames[2] < size < frames[0] < predictor.frontend.frame_lengths(lengths)[0]
    got = dict(zip(report.outputs, load_exported(path, fmt)(wave)))
    expected = _reference(predictor, wave)
    torch.testing.assert_close(got["probs"], expected["probs"], atol=1e-5, rtol=0)
    torch.testing.assert_close(got["embedding"], expected["embedding"], atol=1e-5, rtol=0)
    assert json.loads(path.with_name(path.name + ".json").read_text())["segments"]["from"] == "voiced frames"


def test_a_vad_inside_another_front_end_exports_and_the_predictor_keeps_its_own(tmp_path: Path) -> None:
    """``functionals`` of a VAD base (the functionals job) is covered by the recipe pairs; here
    ``plus_functionals``, where both the base's map and the functionals' base drop frames."""
    predictor = _plus_functionals({"name": "logmel", "n_mels": 24, "vad": True})
    report = export_predictor(predictor, tmp_path / "model.torchscript", "torchscript", example_seconds=3.0)
    wave = _speechlike(2, 6.4, 0)
    got = dict(zip(report.outputs, load_exported(tmp_path / "model.torchscript", "torchscript")(wave)))
    torch.testing.assert_close(got["probs"], _reference(predictor, wave)["probs"], atol=1e-5, rtol=0)
    assert not predictor.frontend.base.fixed_width  # the export packed a copy at a fixed width


@pytest.mark.parametrize("vad", [True, {"trim": True}], ids=["voiced", "trim"])
def test_a_log_mel_vad_exports_with_its_frames_packed_at_a_fixed_width(tmp_path: Path, vad: bool | dict) -> None:
    predictor = _predictor("logmel", "pyresnet", n_mels=40, n_fft=512, hop_length=160, vad=vad, normalize=True)
    report = export_predictor(predictor, tmp_path / "model.torchscript", "torchscript", example_seconds=3.0)
    wave = _speechlike(2, 6.4, 0)  # gated: the VAD drops frames
    lengths = torch.tensor([wave.shape[1]] * 2)
    assert (predictor.frontend(wave, lengths)[1] < predictor.frontend.frame_lengths(lengths)).all()
    got = dict(zip(report.outputs, load_exported(tmp_path / "model.torchscript", "torchscript")(wave)))
    torch.testing.assert_close(got["probs"], _reference(predictor, wave)["probs"], atol=1e-5, rtol=0)


def test_onnx_export_without_the_onnx_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    with pytest.raises(ExportError, match=r"needs onnxscript: pip install 'ssl-ser\[onnx\]'"):
        check_exportable(_predictor("logmel", "pyresnet"), "onnx")
    check_exportable(_predictor("logmel", "pyresnet"), "torchscript")  # needs nothing extra


def test_export_command_from_a_checkpoint(demo_shards, make_tiny_job, tmp_path: Path, capsys) -> None:
    from ssl_ser.job_loader import job_from_dict
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
