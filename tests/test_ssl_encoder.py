"""The frozen SSL encoder front-end (``ssl_encoder``), on a tiny randomly initialised wav2vec 2.0
saved as a torchaudio state dict: nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchaudio.models as tam

import ssl_ser.ssl_encoder as ssl_encoder
from ssl_ser.config import ConfigError
from ssl_ser.export import ExportError, check_exportable
from ssl_ser.features import build_frontend
from ssl_ser.inference import Predictor
from ssl_ser.job_loader import job_from_dict
from ssl_ser.ssl_encoder import EncoderCacheError, SSLEncoder
from ssl_ser.train.runner import run_training

LAYERS, DIM = 3, 16


def tiny_wav2vec2() -> tam.Wav2Vec2Model:
    # base-style GroupNorm extractor (its time normalisation is why rows are encoded alone)
    return tam.wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=[(8, 10, 5), (8, 3, 2), (8, 2, 2)],
        extractor_conv_bias=False, encoder_embed_dim=DIM, encoder_projection_dropout=0.1,
        encoder_pos_conv_kernel=4, encoder_pos_conv_groups=2, encoder_num_layers=LAYERS, encoder_num_heads=2,
        encoder_attention_dropout=0.1, encoder_ff_interm_features=32, encoder_ff_interm_dropout=0.1,
        encoder_dropout=0.1, encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None)


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tiny`` registered as an architecture, its random weights saved; returns their path."""
    monkeypatch.setitem(ssl_encoder.ARCHS, "tiny", tiny_wav2vec2)
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    torch.save(tiny_wav2vec2().state_dict(), path)
    return path


def encoder(weights: Path, **options: object) -> SSLEncoder:
    frontend = build_frontend("ssl_encoder", arch="tiny", weights=str(weights), **options)
    assert isinstance(frontend, SSLEncoder)
    return frontend


def reference(weights: Path, wave: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output ``[T', D]`` of one utterance, straight from torchaudio."""
    model = tiny_wav2vec2()
    model.load_state_dict(torch.load(weights))
    with torch.no_grad():
        layers, _ = model.eval().extract_features(wave[None])
    return [h[0] for h in layers]


def test_pooled_features_are_the_mean_of_a_layer_or_of_all_layers(weights: Path) -> None:
    wave = torch.randn(8000) * 0.1
    layers = reference(weights, wave)
    one = encoder(weights, layer=2).eval()
    feats, frames = one(wave[None], torch.tensor([8000]))
    assert feats.shape == (1, DIM, 1) and frames.tolist() == [1] and one.describes_utterance
    torch.testing.assert_close(feats[0, :, 0], layers[1].mean(0))
    every = encoder(weights, pooling="mean_std").eval()
    feats, _ = every(wave[None], torch.tensor([8000]))
    mean = torch.stack(layers).mean(0)
    assert every.num_features == 2 * DIM
    torch.testing.assert_close(feats[0, :, 0], torch.cat([mean.mean(0), mean.std(0, unbiased=False)]))


def test_frame_level_features_follow_the_encoders_frames_and_rows_do_not_see_the_padding(weights: Path) -> None:
    frontend = encoder(weights, pooling="frames", layer=LAYERS).eval()
    assert not frontend.describes_utterance
    short, long = torch.randn(3000) * 0.1, torch.randn(8000) * 0.1
    batch = torch.zeros(2, 8000)
    batch[0, :3000], batch[1] = short, long
    feats, frames = frontend(batch, torch.tensor([3000, 8000]))
    assert frames.tolist() == [frontend.frames(3000), frontend.frames(8000)]
    assert feats.shape == (2, DIM, frontend.frames(8000))
    alone = reference(weights, short)[-1].T
    assert alone.shape[-1] == frames[0]
    torch.testing.assert_close(feats[0, :, : frames[0]], alone)  # not the padded row's GroupNorm
    assert feats[0, :, frames[0]:].abs().sum() == 0


def test_the_encoder_is_frozen_and_stays_in_eval_mode(weights: Path) -> None:
    frontend = encoder(weights).train()
    assert frontend.training and not frontend.encoder.training
    assert not any(p.requires_grad for p in frontend.parameters())
    wave = torch.randn(1, 6000) * 0.1
    frontend._memo.clear()
    first, _ = frontend(wave, torch.tensor([6000]))
    frontend._memo.clear()
    second, _ = frontend(wave, torch.tensor([6000]))  # no dropout in train mode
    torch.testing.assert_close(first, second)


def test_each_waveform_is_encoded_once_and_cache_dir_shares_it_across_instances(
        weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    run = SSLEncoder._run
    monkeypatch.setattr(SSLEncoder, "_run", lambda self, row: calls.append(row.numel()) or run(self, row))
    waves = torch.randn(2, 5000) * 0.1
    first = encoder(weights, cache_dir=str(tmp_path / "cache"))
    a, _ = first(waves, torch.tensor([5000, 4000]))
    b, _ = first(waves, torch.tensor([5000, 4000]))
    assert calls == [5000, 4000]  # the second pass came from the memo
    second = encoder(weights, cache_dir=str(tmp_path / "cache"))
    c, _ = second(waves, torch.tensor([5000, 4000]))
    assert calls == [5000, 4000]  # and a new instance (another fold) from the disk
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    files = list((tmp_path / "cache").rglob("*"))
    assert sum(f.suffix == ".pt" for f in files) == 2 and not any(f.name.endswith(".tmp") for f in files)
    moved = tmp_path / "elsewhere" / "copy.pth"  # the cache follows the weights' bytes, not their path
    moved.parent.mkdir()
    moved.write_bytes(weights.read_bytes())
    encoder(moved, cache_dir=str(tmp_path / "cache"))(waves, torch.tensor([5000, 4000]))
    assert len(calls) == 2
    other = encoder(weights, cache_dir=str(tmp_path / "cache"), layer=1)  # another setting: its own folder
    other(waves, torch.tensor([5000, 4000]))
    assert len(calls) == 4


def test_cache_dir_problems_are_one_line_naming_the_path(weights: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(EncoderCacheError, match="cannot write cached features to .*file"):
        encoder(weights, cache_dir=str(blocked))(torch.randn(1, 4000), torch.tensor([4000]))
    good = encoder(weights, cache_dir=str(tmp_path / "cache"))
    good(torch.ones(1, 4000) * 0.1, torch.tensor([4000]))
    (stored,) = (tmp_path / "cache").rglob("*.pt")
    stored.write_bytes(b"truncated")
    with pytest.raises(EncoderCacheError, match=f"cannot read cached features {stored}"):
        encoder(weights, cache_dir=str(tmp_path / "cache"))(torch.ones(1, 4000) * 0.1, torch.tensor([4000]))


@pytest.mark.parametrize(("options", "message"), [
    ({"weights": "/nowhere/tiny.pth"}, "weights file '/nowhere/tiny.pth' not found .*nothing is downloaded"),
    ({"arch": "wavlm_huge"}, "unknown arch 'wavlm_huge'; choose one of"),
    ({"layer": LAYERS + 1}, f"layer must lie in \\[1, {LAYERS}\\]"),
    ({"pooling": "max"}, "option 'pooling'"),
    ({"layers": 2}, "unknown option 'layers' \\(did you mean 'layer'\\?\\)"),
])
def test_bad_options_are_one_line(weights: Path, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        build_frontend("ssl_encoder", **{"arch": "tiny", "weights": str(weights), **options})
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_the_architectures_state_dict_is_one_line(weights: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    state = torch.load(weights)
    state["encoder.feature_projection.projection.weight"] = torch.zeros(3, 3)
    del state["encoder.transformer.layers.0.attention.k_proj.weight"]
    torch.save(state, other)
    with pytest.raises(ConfigError, match=r"is not a tiny state dict: 1 missing \(first 'encoder.transformer"
                                          r".layers.0.attention.k_proj.weight'\), 1 of another shape"):
        encoder(other)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 10)
    with pytest.raises(ConfigError, match=f"cannot read weights '{garbage}'"):
        encoder(garbage)


def test_the_large_architectures_normalise_the_waveform(weights: Path) -> None:
    assert ssl_encoder.NORMALIZED <= set(ssl_encoder.ARCHS)
    assert not encoder(weights).normalize and encoder(weights, normalize=True).normalize
    wave = torch.randn(1, 6000) * 0.1
    plain, _ = encoder(weights, normalize=True).eval()(wave, torch.tensor([6000]))
    louder, _ = encoder(weights, normalize=True).eval()(wave * 5, torch.tensor([6000]))
    torch.testing.assert_close(plain, louder, atol=1e-4, rtol=1e-4)  # level removed


@pytest.mark.parametrize("pooling", ["mean_std", "frames"])
def test_a_job_trains_on_cached_speaker_normalised_encoder_features_and_reloads(
        pooling: str, weights: Path, demo_shards, make_tiny_job, tmp_path: Path) -> None:
    data = make_tiny_job(demo_shards, name="ssl",
                         frontend={"name": "ssl_encoder", "arch": "tiny", "weights": str(weights),
                                   "pooling": pooling, "speaker_norm": True,
                                   "cache_dir": str(tmp_path / "cache")},
                         data={"feature_cache": True})
    data["model"] = {"name": "mlp", "hidden": [8]}
    data["storage_path"] = str(tmp_path / "runs")
    metrics = run_training(job_from_dict(data), debug=True)
    assert metrics["epoch"] == 3 and 0.0 <= metrics["valid_ua"] <= 1.0
    history = [json.loads(x) for x in (tmp_path / "runs" / "ssl" / "metrics.jsonl").read_text().splitlines()]
    assert all(h["train_batches"] > 0 for h in history)
    predictor, _ = Predictor.from_checkpoint(tmp_path / "runs" / "ssl")
    assert isinstance(predictor.frontend, SSLEncoder) and predictor.speaker_norm is not None
    with pytest.raises(ExportError, match="cannot export to onnx: the ssl_encoder front-end"):
        check_exportable(predictor, "onnx")


def test_rows_shorter_than_one_encoder_frame_get_one_frame(weights: Path) -> None:
    frontend = encoder(weights, pooling="frames").eval()
    feats, frames = frontend(torch.randn(2, 4000) * 0.1, torch.tensor([4000, 10]))
    assert frames.tolist()[1] == 1 and torch.isfinite(feats).all()


def test_the_shipped_job_is_valid_and_takes_the_weights_from_the_command_line(weights: Path, demo_shards) -> None:
    from ssl_ser.job_loader import load_job

    root = Path(__file__).resolve().parents[1]
    job = load_job(root / "jobs" / "ssl_encoder_mlp.yaml",
                   [f"data.train=[{demo_shards.shards['train_labelled']}]", "frontend.arch=tiny",
                    f"frontend.weights={weights}"])
    options = {k: v for k, v in job.frontend.items() if k not in ("name", "speaker_norm")}
    frontend = build_frontend(job.frontend["name"], **options)
    assert isinstance(frontend, SSLEncoder) and frontend.layer is None and frontend.describes_utterance
    assert job.data.feature_cache and job.frontend["speaker_norm"] is False


def test_the_memo_stops_at_its_byte_budget(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssl_encoder, "MEMO_BYTES", DIM * 4 * 3)  # three pooled vectors
    frontend = encoder(weights).eval()
    frontend(torch.randn(5, 4000) * 0.1, torch.tensor([4000] * 5))
    assert len(frontend._memo) == 3 and frontend._memo_bytes == DIM * 4 * 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_encoder_runs_on_the_gpu(weights: Path) -> None:
    wave, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 5000])
    cpu, _ = encoder(weights, pooling="frames").eval()(wave, lengths)
    gpu, frames = encoder(weights, pooling="frames").cuda().eval()(wave.cuda(), lengths.cuda())
    assert gpu.is_cuda and frames.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("as_base", [False, True])
def test_a_missing_weights_file_is_refused_when_the_job_loads(as_base: bool, demo_shards, tmp_path: Path) -> None:
    from ssl_ser.job_loader import load_job

    encoder_section = {"name": "ssl_encoder", "arch": "tiny", "weights": str(tmp_path / "none.pth")}
    frontend = ({"name": "functionals", "base": {**encoder_section, "pooling": "frames"}} if as_base
                else encoder_section)
    root = Path(__file__).resolve().parents[1]
    overrides = [f"data.train=[{demo_shards.shards['train_labelled']}]", f"frontend={json.dumps(frontend)}"]
    with pytest.raises(ConfigError, match=f"weights file '{tmp_path / 'none.pth'}' not found") as err:
        load_job(root / "jobs" / "ssl_encoder_mlp.yaml", overrides)
    assert "\n" not in str(err.value)
    load_job(root / "jobs" / "ssl_encoder_mlp.yaml", overrides, check_data=False)  # a cluster's path: not checked
