"""DAAE pretraining and fine-tuning (Gao et al. 2021): the loss terms' signs and weights by
their gradients on a tiny model, the lambda ramp, the adversarial effect on generated data
whose speakers are trivially separable, corpus-qualified speakers, and debug runs of both
stages on two generated corpora (the fine-tuning keeps the domain-adversarial network fixed)."""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

from ssl_ser import checkpoint as ckpt
from ssl_ser.config import ConfigError, from_dict
from ssl_ser.data.manifest import utterance, write_manifest
from ssl_ser.data.shards import build_shards
from ssl_ser.inference import Predictor
from ssl_ser.job_loader import job_from_dict
from ssl_ser.labels import IGNORE, LabelSpace
from ssl_ser.methods.daae import (
    DOMAIN_ADVERSARIAL_NETWORK,
    DAAEFinetune,
    DAAEPretrain,
    FinetuneOptions,
    PretrainOptions,
    corpus_speaker_space,
    dann_lambda,
    reconstruction_loss,
)
from ssl_ser.models import build_model
from ssl_ser.probes import probe_accuracy
from ssl_ser.targets import Targets
from ssl_ser.train.runner import run_local
from tests.fakes import FakeContext

FOUR = ["angry", "happy", "neutral", "sad"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: one thread is faster than two fighting over shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- two generated corpora with the same speaker ids -----------------------------------------

SPEAKER_HZ = {"s1": 180.0, "s2": 300.0, "s3": 420.0}
EMOTION_AM = {"angry": 9.0, "happy": 6.0, "neutral": 0.0, "sad": 2.0, "calm": 1.0, "fearful": 12.0}


def _write(path: Path, speaker: str, emotion: str, corpus: str, n: int) -> None:
    """A speaker's tone, amplitude-modulated at its emotion's rate, over its corpus' noise floor."""
    rng = np.random.default_rng(zlib.crc32(f"{corpus}/{speaker}/{emotion}/{n}".encode()))
    t = np.arange(int(0.6 * 16000)) / 16000
    envelope = 1.0 + 0.5 * np.sin(2 * np.pi * EMOTION_AM[emotion] * t)
    noise = 0.005 if corpus == "alpha" else 0.02
    wave = 0.2 * envelope * np.sin(2 * np.pi * SPEAKER_HZ[speaker] * t) + noise * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave.astype(np.float32), 16000, subtype="PCM_16")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Shard sets: ``alpha`` (speakers s1, s2; four emotions), ``beta`` (speakers s1, s2 again:
    the same ids; calm and fearful too, which the four-class map turns into neutral and a
    drop), ``alpha_valid`` (s3)."""
    root = tmp_path_factory.mktemp("daae_corpora")
    plan = {"alpha": (["s1", "s2"], ["angry", "happy", "neutral", "sad"]),
            "beta": (["s1", "s2"], ["angry", "happy", "sad", "calm", "fearful"]),
            "alpha_valid": (["s3"], ["angry", "happy", "neutral", "sad"])}
    out = {}
    for name, (speakers, emotions) in plan.items():
        corpus = name.split("_")[0]
        rows = []
        for spk in speakers:
            for emo in emotions:
                for n in range(2):
                    path = root / "audio" / name / f"{spk}_{emo}_{n}.wav"
                    _write(path, spk, emo, corpus, n)
                    rows.append(utterance(path, key=f"{corpus}-{spk}-{emo}-{n}", corpus=corpus,
                                          speaker=spk, emotion=emo))
        write_manifest(rows, root / f"{name}.jsonl")
        build_shards(root / f"{name}.jsonl", root / "shards" / name, workers=1, progress=False)
        out[name] = root / "shards" / name
    return out


def test_speakers_are_qualified_by_corpus(corpora: dict[str, Path]) -> None:
    space = corpus_speaker_space([str(corpora["alpha"]), str(corpora["beta"])])
    assert space.classes == ["alpha/s1", "alpha/s2", "beta/s1", "beta/s2"]
    enc = lambda corpus, spk: space.encode({"corpus": corpus, "speaker": spk})  # noqa: E731
    assert enc("alpha", "s1") != enc("beta", "s1")
    assert space.classes[enc("beta", "s2")] == "beta/s2"
    assert enc("alpha", "s3") == IGNORE and enc("gamma", "s1") == IGNORE and enc("alpha", None) == IGNORE


# --- the loss, on a tiny model ---------------------------------------------------------------

def fake_context(train: list[str], *, epochs: int = 1, steps_per_epoch: int = 100, speakers: int = 3,
              corpora: int = 2) -> FakeContext:
    """The training context the methods see; the model goes in ``bare_model``."""
    job = SimpleNamespace(
        data=SimpleNamespace(train=train, samples_per_epoch=steps_per_epoch * 32, batch_size=32),
        train=SimpleNamespace(epochs=epochs, max_steps_per_epoch=None, init_from=None),
        debug=SimpleNamespace(max_train_batches=None))
    model = build_model("daae", in_features=24, num_classes=4, size="tiny", num_speakers=speakers,
                        num_corpora=corpora)
    return FakeContext(job=job, labels=LabelSpace("emotion", FOUR, {}), bare_model=model,
                       spaces={"corpus": LabelSpace("corpus", [f"c{i}" for i in range(corpora)], {})})


def pretrain_method(corpora: dict[str, Path], **options: object) -> tuple[DAAEPretrain, FakeContext]:
    loop = fake_context([str(corpora["alpha"])], **{k: options.pop(k) for k in ("epochs", "steps_per_epoch")
                                                 if k in options})
    method = DAAEPretrain(from_dict(PretrainOptions, options, prefix="method"), loop)
    return method, loop


def targets(label: list[int], speaker: list[int], corpus: list[int]) -> Targets:
    n = len(label)
    return Targets(keys=[str(i) for i in range(n)], label=torch.tensor(label), attributes=torch.zeros(n, 3),
                   labelled=torch.tensor([v != IGNORE for v in label]),
                   extra={"speaker": torch.tensor(speaker), "corpus": torch.tensor(corpus)})


@pytest.mark.parametrize("adversarial", [True, False])
def test_loss_terms_reach_each_part_with_their_sign_and_weight(corpora, adversarial: bool) -> None:
    alpha, beta, lam, w_e, w_rec = 0.7, 0.3, 0.5, 0.8, 1.2
    torch.manual_seed(0)
    method, loop = pretrain_method(corpora, alpha=alpha, beta=beta, grl_lambda=lam, emotion_weight=w_e,
                                   reconstruction_weight=w_rec, adversarial=adversarial)
    model = loop.bare_model.eval()  # batch statistics fixed: every forward is the same function
    method.on_epoch_start(0)
    x, lengths = torch.randn(6, 24, 8), torch.tensor([8, 8, 7, 6, 8, 5])
    batch = targets(label=[0, 1, 2, 3, IGNORE, 1], speaker=[0, 1, 2, 0, IGNORE, 1], corpus=[0, 1, 1, 0, 1, IGNORE])
    watched = {"encoder": model.to_latent.weight, "decoder": model.decoder[0][0].weight,
               "emotion head": model.classifier["latent"].weight, "speaker head": model.speaker[-1].weight,
               "corpus head": model.corpus[-1].weight}

    def grads(loss: torch.Tensor) -> dict[str, torch.Tensor]:
        model.zero_grad()
        loss.backward()
        return {k: torch.zeros_like(p) if p.grad is None else p.grad.clone() for k, p in watched.items()}

    total = grads(method.loss(model(x, lengths), batch)[0])

    # Each term alone, through a plain layer instead of the gradient reversal.
    model.grl, reversal = nn.Identity(), model.grl

    def term(name: str) -> torch.Tensor:
        out = model(x, lengths)
        if name == "rec":
            return reconstruction_loss(out["recon"], x, lengths)
        logits, target = {"e": (out["latent_emotion_logits"], batch.label),
                          "s": (out["speaker_logits"], batch.extra["speaker"]),
                          "c": (out["corpus_logits"], batch.extra["corpus"])}[name]
        return F.cross_entropy(logits, target, ignore_index=IGNORE)

    g = {name: grads(term(name)) for name in ("rec", "e", "s", "c")}
    model.grl = reversal
    reach = lam if adversarial else 0.0  # what the reversal lets through to the encoder, negated
    expected = {
        "encoder": w_rec * g["rec"]["encoder"] + alpha * w_e * g["e"]["encoder"]
        - alpha * reach * beta * g["s"]["encoder"] - alpha * reach * (1 - beta) * g["c"]["encoder"],
        "decoder": w_rec * g["rec"]["decoder"],
        "emotion head": alpha * w_e * g["e"]["emotion head"],
        "speaker head": alpha * beta * g["s"]["speaker head"],  # the heads themselves learn normally
        "corpus head": alpha * (1 - beta) * g["c"]["corpus head"],
    }
    for name, value in expected.items():
        assert value.abs().sum() > 0, name
        torch.testing.assert_close(total[name], value, rtol=1e-4, atol=1e-7, msg=name)
    assert g["s"]["encoder"].abs().sum() > 0 and g["c"]["encoder"].abs().sum() > 0


def test_reconstruction_counts_valid_frames_only() -> None:
    target = torch.zeros(2, 3, 4)
    recon = torch.zeros(2, 3, 4)
    recon[0, :, 3] = 100.0  # padding of row 0
    recon[1] = 2.0
    assert reconstruction_loss(recon, target, torch.tensor([3, 4])).item() == pytest.approx(4 * 12 / 21)


def test_lambda_ramps_as_in_dann_and_reaches_the_layer_at_its_step(corpora) -> None:
    method, loop = pretrain_method(corpora, lambda_schedule="dann", grl_lambda=2.0, epochs=4, steps_per_epoch=25)
    values = [method.lambda_at(step) for step in range(0, 101, 10)]
    assert values[0] == 0.0 and all(b > a for a, b in zip(values, values[1:]))
    assert method.lambda_at(50) == pytest.approx(2.0 * (2 / (1 + math.exp(-5)) - 1))
    assert method.lambda_at(100) == pytest.approx(dann_lambda(2.0, 1.0)) == method.lambda_at(500)
    loop.step = 30
    method.on_epoch_start(1)
    assert loop.bare_model.grl.lambda_ == pytest.approx(method.lambda_at(30))
    model = loop.bare_model
    out = model(torch.randn(2, 24, 8), torch.tensor([8, 8]))
    _, logs = method.loss(out, targets([0, 1], [0, 1], [0, 1]))
    assert logs["grl_lambda"] == pytest.approx(method.lambda_at(30))  # the forward's value
    assert model.grl.lambda_ == pytest.approx(method.lambda_at(31))  # ready for the next step
    plain, _ = pretrain_method(corpora, lambda_schedule="dann", adversarial=False)
    assert plain.lambda_at(0) == plain.lambda_at(90) == 0.0


def test_probe_accuracy_separates_what_is_separable() -> None:
    rng = np.random.default_rng(0)
    target = np.repeat(np.arange(3), 20)
    keys = [f"{i:03d}" for i in range(60)]
    separable = rng.normal(0, 1, (60, 5)) + 4 * np.eye(5)[target]
    assert probe_accuracy(separable, target, keys) == 1.0
    assert probe_accuracy(rng.normal(0, 1, (60, 5)), target, keys) < 0.6
    assert probe_accuracy(separable, np.where(target == 0, 0, IGNORE), keys) is None  # one class


# --- the adversarial effect --------------------------------------------------------------

def _domain_batch(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Segments [n, 24, 8]: each of 4 speakers (2 per corpus) a bright band of its own (trivially
    separable), each emotion a weaker band."""
    speaker, emotion = rng.integers(4, size=n), rng.integers(4, size=n)
    x = rng.normal(0, 1, (n, 24, 8))
    for i in range(n):
        x[i, 2 * speaker[i]: 2 * speaker[i] + 2] += 3.0
        x[i, 12 + 2 * emotion[i]: 14 + 2 * emotion[i]] += 1.5
    return torch.tensor(x, dtype=torch.float32), torch.tensor(speaker), torch.tensor(emotion)


def _train_heads(corpora, adversarial: bool, steps: int = 80) -> list[tuple[float, float]]:
    """Speaker and corpus heads' accuracy on held-out segments every 10 steps."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    method, loop = pretrain_method(corpora, adversarial=adversarial, lambda_schedule="dann",
                                   steps_per_epoch=steps)
    model = build_model("daae", in_features=24, num_classes=4, size="tiny", num_speakers=4, num_corpora=2)
    loop.bare_model = model
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    method.on_epoch_start(0)
    held_x, held_speaker, _ = _domain_batch(256, np.random.default_rng(99))
    accuracy = []
    for step in range(steps):
        x, speaker, emotion = _domain_batch(32, rng)
        model.train()
        loss, _ = method.loss(model(x, torch.full((32,), 8)), targets(emotion.tolist(), speaker.tolist(),
                                                                      (speaker // 2).tolist()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loop.step += 1
        if (step + 1) % 10 == 0:
            with torch.no_grad():
                out = model.eval()(held_x, torch.full((256,), 8))
            accuracy.append((float((out["speaker_logits"].argmax(1) == held_speaker).float().mean()),
                             float((out["corpus_logits"].argmax(1) == held_speaker // 2).float().mean())))
    return accuracy


def test_adversarial_training_drives_the_domain_heads_towards_chance(corpora) -> None:
    accuracy = np.array(_train_heads(corpora, adversarial=True))
    late = accuracy[len(accuracy) // 2:].mean(0)
    assert late[0] < 0.45 and late[1] < 0.75  # chance: 0.25 (4 speakers), 0.5 (2 corpora)
    assert accuracy[: len(accuracy) // 2, 0].max() > late[0] + 0.2  # learnt first, then lost


def test_without_the_adversary_the_heads_read_speaker_and_corpus_off_the_latent(corpora) -> None:
    accuracy = np.array(_train_heads(corpora, adversarial=False))
    late = accuracy[len(accuracy) // 2:].mean(0)
    assert late[0] > 0.9 and late[1] > 0.9


# --- the two stages end to end ---------------------------------------------------------------

def stage_job(corpora: dict[str, Path], tmp: Path, name: str, method: dict, train: list[str],
              **train_section: object) -> dict:
    return {
        "name": name, "storage_path": str(tmp / "runs"), "method": method,
        "frontend": {"name": "spectrogram_daae", "normalize": True},
        "model": {"name": "daae", "size": "tiny"},
        "data": {"train": [str(corpora[c]) for c in train], "valid": [str(corpora["alpha_valid"])],
                 "batch_size": 8, "crop_seconds": 0.265, "num_workers": 0, "shuffle_buffer": 20,
                 "segment": {"seconds": 0.265, "train_hop": 0.265, "eval_hop": 0.265},
                 "labels": {"classes": FOUR, "mapping_file": "four_class"}},
        "optim": {"name": "adadelta", "lr": 1.0},
        "train": {"epochs": 2, "seed": 0, "metric": "ua", **train_section},
        "debug": {"max_train_batches": 3, "max_eval_batches": 2, "num_workers": 0},
    }


@pytest.fixture(scope="module")
def pretrained(corpora, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("daae_runs")
    job = stage_job(corpora, tmp, "pretrain", {"name": "daae_pretrain", "lambda_schedule": "dann",
                                               "domain_max_batches": 4}, ["alpha", "beta"])
    run_local(job_from_dict(job), progress=False)
    return tmp / "runs" / "pretrain"


def test_pretraining_debug_run_on_two_corpora(pretrained: Path) -> None:
    history = [json.loads(line) for line in (pretrained / "metrics.jsonl").read_text().splitlines()]
    last = history[-1]
    for key in ("train_recon", "train_speaker_ce", "train_corpus_ce", "train_speaker_acc", "train_grl_lambda",
                "valid_ua", "valid_wa", "valid_recon", "valid_speaker_acc", "valid_speaker_chance",
                "valid_corpus_acc", "valid_probe_speaker_acc", "valid_probe_corpus_acc"):
        assert key in last and math.isfinite(last[key]), key
    assert history[0]["pre_grl_lambda"] == 0.0 < history[1]["pre_grl_lambda"] < 1.0  # DANN ramp
    meta = ckpt.load_meta(ckpt.find_checkpoint(pretrained, "latest"))
    assert meta["extra_labels"]["speaker"]["classes"] == ["alpha/s1", "alpha/s2", "beta/s1", "beta/s2"]
    assert meta["extra_labels"]["corpus"]["classes"] == ["alpha", "beta"]
    assert meta["model_kwargs"] == {"num_classes": 4, "num_speakers": 4, "num_corpora": 2}


@pytest.fixture(scope="module")
def finetuned(corpora, pretrained: Path) -> Path:
    tmp = pretrained.parent.parent
    job = stage_job(corpora, tmp, "finetune", {"name": "daae_finetune"}, ["alpha"], init_from=str(pretrained))
    run_local(job_from_dict(job), progress=False)
    return tmp / "runs" / "finetune"


def test_finetuning_keeps_the_domain_adversarial_network_exactly(pretrained: Path, finetuned: Path) -> None:
    before = ckpt.load_state(ckpt.find_checkpoint(pretrained, "best"))["model"]
    after = ckpt.load_state(ckpt.find_checkpoint(finetuned, "latest"))["model"]
    frozen = [k for k in after if k.startswith(DOMAIN_ADVERSARIAL_NETWORK)]
    assert any(k.startswith("classifier.latent.") for k in frozen)  # init_from skips it; restored
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    for key in ("to_latent.weight", "decoder.0.0.weight", "to_deep.weight", "blstm.weight_ih_l0",
                "classifier.fused.weight"):
        assert not torch.equal(before[key], after[key]), f"{key} should have been trained"


def test_finetuned_run_scores_utterances_from_segments(corpora, finetuned: Path) -> None:
    last = json.loads((finetuned / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train_recon", "train_ce", "valid_ua", "valid_wa"} <= set(last)
    predictor, meta = Predictor.from_checkpoint(finetuned)
    assert predictor.segment is not None and meta["model_kwargs"]["num_speakers"] == 4
    from ssl_ser.data.stream import make_stream

    batches = make_stream(str(corpora["alpha_valid"]), mode="exact", batch_size=4, num_workers=0)
    pred = predictor.score(predictor.predict(batches))
    assert pred.probs.shape == (8, 4) and np.allclose(pred.probs.sum(1), 1.0, atol=1e-5)


def test_frozen_parameters_stay_fixed_even_where_the_losses_reach_them(corpora) -> None:
    """The encoder gets gradients from both fine-tuning losses: frozen, it must not move, even
    under an optimiser with weight decay and momentum."""
    torch.manual_seed(0)
    loop = fake_context([str(corpora["alpha"])])
    options = from_dict(FinetuneOptions, {"frozen": [*DOMAIN_ADVERSARIAL_NETWORK, "encoder."]})
    method = DAAEFinetune(options, loop)
    model = loop.bare_model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    assert method.on_epoch_start(0) == {"frozen_tensors": float(len(method.frozen_names()))}
    assert loop.refreshed == 1
    for _ in range(3):
        loss, logs = method.loss(model(torch.randn(4, 24, 8), torch.tensor([8, 8, 6, 8])),
                                 targets([0, 1, 2, IGNORE], [0, 0, 0, 0], [0, 0, 0, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert {"recon", "ce", "acc"} <= set(logs)
    after = dict(model.named_parameters())
    frozen = method.frozen_names()
    assert any(k.startswith("encoder.") for k in frozen)
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["to_latent.weight"], after["to_latent.weight"])
    method.on_epoch_start(1)
    assert loop.refreshed == 1  # already fixed: nothing to rebuild


@pytest.mark.ray
def test_both_stages_under_ray_train_with_two_workers(corpora, tmp_path: Path) -> None:
    """DDP: stage one leaves branches untrained; stage two turns gradients off after wrapping."""
    import os

    import ray

    from ssl_ser.train.runner import run_training

    saved = dict(os.environ)
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        scaling = {"num_workers": 2, "resources_per_worker": {"CPU": 1}}
        pre = stage_job(corpora, tmp_path, "ray_pretrain", {"name": "daae_pretrain", "domain_max_batches": 1},
                        ["alpha", "beta"], max_steps_per_epoch=2)
        assert run_training(job_from_dict({**pre, "scaling": scaling}))["epoch"] == 2
        fine = stage_job(corpora, tmp_path, "ray_finetune", {"name": "daae_finetune"}, ["alpha"],
                         max_steps_per_epoch=2, init_from=str(tmp_path / "runs" / "ray_pretrain"))
        metrics = run_training(job_from_dict({**fine, "scaling": scaling}))
    finally:
        ray.shutdown()
        os.environ.clear()  # ray.init sets RAY_AUTH_MODE=token for this process and its children
        os.environ.update(saved)
    assert metrics["epoch"] == 2 and "valid_ua" in metrics
    before = ckpt.load_state(ckpt.find_checkpoint(tmp_path / "runs" / "ray_pretrain", "best"))["model"]
    after = ckpt.load_state(ckpt.find_checkpoint(tmp_path / "runs" / "ray_finetune", "latest"))["model"]
    for key in after:
        if key.startswith(DOMAIN_ADVERSARIAL_NETWORK):
            assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["to_latent.weight"], after["to_latent.weight"])


# --- configuration errors --------------------------------------------------------------------

def test_metric_names_and_bad_frozen_prefixes(corpora, tmp_path: Path) -> None:
    job = stage_job(corpora, tmp_path, "x", {"name": "daae_pretrain"}, ["alpha"], metric="probe_speaker_acc")
    job_from_dict(job)
    job["train"]["metric"] = "eer"
    with pytest.raises(ConfigError, match="eer.*probe_speaker_acc"):
        job_from_dict(job)
    job["method"] = {"name": "daae_pretrain", "beta": 1.5}
    job["train"]["metric"] = "ua"
    with pytest.raises(ConfigError, match="method.beta"):
        job_from_dict(job)

    loop = fake_context([str(corpora["alpha"])])
    method = DAAEFinetune(from_dict(FinetuneOptions, {"frozen": ["speaker.", "discriminator."]}), loop)
    with pytest.raises(ConfigError, match="'discriminator.' matches no parameter"):
        method.on_epoch_start(0)


def test_finetuning_cross_entropy_takes_the_class_weight_and_logit_adjustment(corpora) -> None:
    torch.manual_seed(0)
    loop = fake_context([str(corpora["alpha"])])
    loop.counts = torch.tensor([1.0, 2.0, 3.0, 6.0])
    method = DAAEFinetune(from_dict(FinetuneOptions, {"class_weight": "balanced", "logit_adjustment": 1.0}),
                          loop)
    method.on_epoch_start(0)
    outputs = loop.bare_model.train()(torch.randn(4, 24, 8), torch.tensor([8, 8, 6, 8]))
    label = torch.tensor([0, 1, 3, IGNORE])
    _, logs = method.loss(outputs, targets(label.tolist(), [0, 0, 0, 0], [0, 0, 0, 0]))
    prior = loop.counts / loop.counts.sum()
    expected = F.cross_entropy(outputs["logits"][:3].float() + prior.log(), label[:3],
                               weight=prior.reciprocal() / 4)
    assert logs["ce"] == pytest.approx(expected.item(), rel=1e-5)
