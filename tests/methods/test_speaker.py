"""Speaker pretraining: the EER against brute-force and the usual ROC recipe, the trial list,
AAM-softmax, and (on generated shards) a debug run of the method plus the transfer of its
weights into an emotion model with ``train.init_from``."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssl_ser.config import ConfigError, from_dict
from ssl_ser.methods.speaker import Speaker, SpeakerOptions, aam_logits
from ssl_ser.metrics_speaker import TrialError, cosine_scores, eer, make_trials
from ssl_ser.models import build_model
from tests.fakes import FakeContext

# --- EER --------------------------------------------------------------------------------------

def brute_force_eer(scores: np.ndarray, target: np.ndarray) -> float:
    """FAR and FRR at every possible threshold; the EER where they are closest."""
    best, value = math.inf, math.nan
    for t in np.r_[np.unique(scores), np.inf]:
        far = np.mean(scores[~target] >= t)
        frr = np.mean(scores[target] < t)
        if abs(far - frr) < best:
            best, value = abs(far - frr), (far + frr) / 2
    return value


def roc_recipe_eer(scores: np.ndarray, target: np.ndarray) -> float:
    """The VoxCeleb-recipe EER: where 1 - TPR = FPR on sklearn's linearly interpolated ROC."""
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(target, scores)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def test_eer_hand_computed_cases() -> None:
    target = np.array([True, True, True, False, False, False])
    assert eer(np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1]), target)[0] == pytest.approx(1 / 3)
    rate, threshold = eer(np.array([3.0, 2.0, 1.5, 1.0, 0.0, -1.0]), target)
    assert rate == 0.0 and 1.0 < threshold <= 1.5
    assert eer(np.array([0.0, 0.1, 0.2, 0.7, 0.8, 0.9]), target)[0] == pytest.approx(1.0)
    assert eer(np.zeros(6), target)[0] == pytest.approx(0.5)  # all tied: no information


@pytest.mark.parametrize("seed", range(6))
def test_eer_matches_references_on_random_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_tar, n_non = rng.integers(5, 60), rng.integers(5, 200)
    separation = rng.uniform(0, 3)
    scores = np.r_[rng.normal(separation, 1, n_tar), rng.normal(0, 1, n_non)]
    if seed % 2:
        scores = np.round(scores, 1)  # ties
    target = np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]
    perm = rng.permutation(scores.size)
    scores, target = scores[perm], target[perm]
    rate, _ = eer(scores, target)
    assert abs(rate - brute_force_eer(scores, target)) <= 1 / n_tar + 1 / n_non
    assert rate == pytest.approx(roc_recipe_eer(scores, target), abs=1e-6)


def test_eer_needs_both_kinds_of_trial() -> None:
    with pytest.raises(TrialError, match="target and non-target"):
        eer(np.array([0.1, 0.2]), np.array([True, True]))


def test_trials_are_complete_for_targets_sampled_for_non_targets_and_deterministic() -> None:
    speakers = [f"s{i % 5}" for i in range(40)]  # 5 speakers x 8 utterances
    trials = make_trials(speakers, max_nontarget=100, seed=3)
    pairs = set(zip(trials.left.tolist(), trials.right.tolist()))
    assert len(pairs) == len(trials)  # no duplicates
    assert all(i < j for i, j in pairs)
    same = np.array([speakers[i] == speakers[j] for i, j in zip(trials.left, trials.right)])
    assert np.array_equal(same, trials.target)
    assert trials.target.sum() == 5 * (8 * 7 // 2)  # every same-speaker pair
    assert (~trials.target).sum() == 100
    again = make_trials(speakers, max_nontarget=100, seed=3)
    assert np.array_equal(again.left, trials.left) and np.array_equal(again.right, trials.right)
    other = make_trials(speakers, max_nontarget=100, seed=4)
    assert not np.array_equal(other.left, trials.left) or not np.array_equal(other.right, trials.right)
    everything = make_trials(speakers, max_nontarget=None)
    assert (~everything.target).sum() == 40 * 39 // 2 - 5 * 28
    with pytest.raises(TrialError, match="at least 2 speakers"):
        make_trials(["a", "a", "a"])
    with pytest.raises(TrialError, match="at least 2 utterances"):
        make_trials(["a", "b", "c"])


def test_cosine_scores() -> None:
    emb = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    trials = make_trials(["a", "a", "b"])
    scores = dict(zip(zip(trials.left.tolist(), trials.right.tolist()), cosine_scores(emb, trials)))
    assert scores[(0, 1)] == pytest.approx(1.0)
    assert scores[(0, 2)] == pytest.approx(0.0) and scores[(1, 2)] == pytest.approx(0.0)


# --- AAM-softmax ------------------------------------------------------------------------------

def test_aam_logits_add_the_margin_to_the_target_angle_only() -> None:
    cos = torch.tensor([[0.5, 0.2, -0.3], [0.1, 0.9, 0.0]])
    label = torch.tensor([0, 1])
    assert torch.allclose(aam_logits(cos, label, 0.0, 10.0), 10 * cos)
    out = aam_logits(cos, label, 0.3, 10.0)
    assert out[0, 0] == pytest.approx(10 * math.cos(math.acos(0.5) + 0.3), abs=1e-5)
    assert out[1, 1] == pytest.approx(10 * math.cos(math.acos(0.9) + 0.3), abs=1e-5)
    mask = torch.ones_like(cos, dtype=torch.bool)
    mask[0, 0] = mask[1, 1] = False
    assert torch.allclose(out[mask], 10 * cos[mask])
    # beyond theta = pi - m the target logit keeps decreasing (no wrap-around of cos(theta + m))
    far = aam_logits(torch.tensor([[-0.99, 0.0], [-0.98, 0.0]]), torch.tensor([0, 0]), 0.3, 1.0)
    assert far[0, 0] < far[1, 0] < -0.98


def test_margin_raises_the_loss_and_the_pull_towards_the_centre() -> None:
    torch.manual_seed(0)
    cos = (torch.rand(16, 5) * 2 - 1).requires_grad_()
    label = torch.randint(0, 5, (16,))
    plain = F.cross_entropy(aam_logits(cos, label, 0.0, 30.0), label)
    margin = F.cross_entropy(aam_logits(cos, label, 0.2, 30.0), label)
    assert margin > plain
    margin.backward()
    assert (cos.grad.gather(1, label[:, None]) <= 0).all()  # raising the target cosine lowers the loss


def fake_context(model: torch.nn.Module, field: str = "speaker") -> FakeContext:
    return FakeContext(job=SimpleNamespace(data=SimpleNamespace(labels=SimpleNamespace(field=field))),
                       bare_model=model)


def test_aam_turns_the_models_final_layer_into_a_cosine_classifier() -> None:
    torch.manual_seed(0)
    model = build_model("resnet34_xvector", in_features=23, num_classes=6, size="tiny")
    options = from_dict(SpeakerOptions, {"loss": "aam", "margin": 0.2, "scale": 10.0})
    method = Speaker(options, fake_context(model))
    method.on_epoch_start(0)
    feats, lengths = torch.randn(4, 23, 60), torch.tensor([60, 50, 40, 30])
    out = model(feats, lengths)
    layer = model.classifier
    inputs = []
    handle = layer.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    out = model(feats, lengths)
    handle.remove()
    expected = 10 * F.normalize(inputs[0], dim=-1) @ F.normalize(layer.weight, dim=-1).T
    assert torch.allclose(out["logits"], expected, atol=1e-5)
    targets = SimpleNamespace(label=torch.tensor([0, 3, -1, 5]))
    loss, logs = method.loss(out, targets)
    loss.backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.bias.grad is not None and not layer.bias.grad.any()  # in the graph, never used
    assert set(logs) == {"ce", "accuracy"}
    # a replaced final layer (transfer, reset_classifier) gets the hook on its next use
    model.reset_classifier(6)
    method.on_epoch_start(1)
    out = model(feats, lengths)
    assert out["logits"].abs().max() <= 10 + 1e-4


def test_softmax_loss_ignores_rows_without_a_speaker() -> None:
    model = build_model("resnet34_xvector", in_features=23, num_classes=3, size="tiny")
    method = Speaker(from_dict(SpeakerOptions, {}), fake_context(model))
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]], requires_grad=True)
    loss, logs = method.loss({"logits": logits}, SimpleNamespace(label=torch.tensor([0, -1])))
    assert loss.item() == pytest.approx(F.cross_entropy(logits[:1], torch.tensor([0])).item())
    assert logs["accuracy"] == 1.0


def test_the_method_needs_speaker_labels() -> None:
    model = build_model("resnet34_xvector", in_features=23, num_classes=3, size="tiny")
    with pytest.raises(ConfigError, match="data.labels.field: speaker"):
        Speaker(from_dict(SpeakerOptions, {}), fake_context(model, field="emotion"))
    with pytest.raises(ConfigError, match="method.margin"):
        from_dict(SpeakerOptions, {"margin": 2.0}, prefix="method")


def test_trial_sets_without_two_speakers_are_refused_before_training(demo_shards) -> None:
    model = build_model("resnet34_xvector", in_features=23, num_classes=3, size="tiny")
    noise = str(demo_shards.shards["noise"])  # clips without speakers
    with pytest.raises(ConfigError, match=r"method.trials_from .*noise.*0 speaker\(s\)"):
        Speaker(from_dict(SpeakerOptions, {"trials_from": [noise]}), fake_context(model, field="speaker"))


# --- the method in the loop, and transfer into an emotion model -------------------------------

@pytest.fixture(scope="module")
def speaker_run(demo_shards, tmp_path_factory: pytest.TempPathFactory):
    """A finished 1-epoch debug run of the speaker method (AAM, noise augmentation) on the
    demo corpus' training speakers, EER trials from its valid and test speakers."""
    from ssl_ser.job_loader import job_from_dict
    from ssl_ser.train.runner import run_training
    from tests.conftest import tiny_job

    root = tmp_path_factory.mktemp("speaker")
    shards = demo_shards.shards
    data = tiny_job(
        demo_shards, name="pretrain", frontend={"name": "mfcc"},
        method={"name": "speaker", "loss": "aam", "margin": 0.2, "scale": 30.0,
                "trials_from": [str(shards["valid"]), str(shards["test"])]},
        augment={"noise": {"shards": [str(shards["noise"])], "fraction": 0.5}},
        data={"valid": [str(shards["train_labelled"])], "labels": {"field": "speaker"}},
        train={"epochs": 1, "metric": "eer", "metric_mode": "min"},
        debug={"max_train_batches": 2, "max_eval_batches": 3, "num_workers": 0})
    data["storage_path"] = str(root / "runs")
    job = job_from_dict(data)
    metrics = run_training(job, debug=True)
    return SimpleNamespace(job=job, metrics=metrics, run=root / "runs" / "pretrain", root=root)


def test_speaker_debug_run_reports_accuracy_and_eer(speaker_run) -> None:
    from ssl_ser import checkpoint as ckpt

    m = speaker_run.metrics
    assert 0.0 <= m["valid_accuracy"] <= 1.0 and m["valid_accuracy"] == m["valid_wa"]
    assert 0.0 <= m["valid_eer"] <= 1.0
    # the demo's valid and test splits hold one unseen speaker each: 2 x C(n, 2) target trials
    assert m["valid_trials_target"] > 0 and m["valid_trials_nontarget"] > 0
    assert {"train_ce", "train_accuracy"} <= set(m)
    path = ckpt.find_checkpoint(speaker_run.run, "best")
    meta, state = ckpt.load_meta(path), ckpt.load_state(path)
    assert meta["labels"]["field"] == "speaker" and meta["score_attribute"] == "valid_eer"
    assert state["augment"]["calls"] == 2 and state["augment"]["steps"]["noise"]["utterances"] == 16


def emotion_job(demo_shards, speaker_run, name: str, **sections):
    from ssl_ser.job_loader import job_from_dict
    from tests.conftest import tiny_job

    data = tiny_job(demo_shards, name=name, frontend={"name": "mfcc"},
                    train={"epochs": 1, "init_from": str(speaker_run.run)},
                    debug={"max_train_batches": 2, "max_eval_batches": 2, "num_workers": 0})
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    data["storage_path"] = str(speaker_run.root / "runs")
    return job_from_dict(data)


def test_init_from_loads_every_weight_but_the_final_layer(demo_shards, speaker_run) -> None:
    from ssl_ser import checkpoint as ckpt
    from ssl_ser.job import run_dir
    from ssl_ser.train.loop import Loop
    from ssl_ser.train.session import LocalSession

    job = emotion_job(demo_shards, speaker_run, "transfer")
    loop = Loop(job, LocalSession(run_dir(job), 2, "valid_ua", "max"), debug=True, progress=False)
    source = ckpt.load_state(ckpt.find_checkpoint(speaker_run.run, "best"))["model"]
    own = loop.bare_model.state_dict()
    body = [k for k in own if not k.startswith("classifier.")]
    assert len(body) > 20 and set(body) <= set(source)
    for key in body:
        assert torch.equal(own[key].cpu(), source[key]), key
    assert own["classifier.weight"].shape[0] == loop.labels.num_classes == 4  # emotions, not speakers
    assert source["classifier.weight"].shape[0] == 3  # the demo's 3 training speakers


def test_init_from_with_another_architecture_names_the_keys(demo_shards, speaker_run) -> None:
    from ssl_ser import checkpoint as ckpt
    from ssl_ser.job import run_dir
    from ssl_ser.train.loop import Loop
    from ssl_ser.train.session import LocalSession

    job = emotion_job(demo_shards, speaker_run, "mismatch",
                      model={"name": "resnet34_xvector", "size": "tiny", "embedding_dim": 24})
    expected = r"(?s)shapes differ.*embedding\.weight: checkpoint \(16, 96\) vs model \(24, 96\)"
    with pytest.raises(ckpt.CheckpointError, match=expected):
        Loop(job, LocalSession(run_dir(job), 2, "valid_ua", "max"), debug=True, progress=False)


def test_frozen_first_phase_then_copypaste_fine_tuning(demo_shards, speaker_run) -> None:
    """freeze_body_epochs=1: the first epoch trains only the new layer; with CopyPaste and noise."""
    from ssl_ser import checkpoint as ckpt
    from ssl_ser.train.runner import run_training

    job = emotion_job(demo_shards, speaker_run, "frozen",
                      train={"epochs": 1, "init_from": str(speaker_run.run), "freeze_body_epochs": 1},
                      augment={"copypaste": {"scheme": "both", "crop_seconds": 1.0, "batch_fraction": 1.0},
                               "noise": {"shards": [str(demo_shards.shards["noise"])]}})
    run_training(job, debug=True)
    before = ckpt.load_state(ckpt.find_checkpoint(speaker_run.run, "best"))["model"]
    state = ckpt.load_state(ckpt.find_checkpoint(speaker_run.root / "runs" / "frozen", "latest"))
    after = state["model"]
    from ssl_ser.models import build_model

    body = {n for n in build_model("resnet34_xvector", in_features=23, num_classes=4,
                                   size="tiny").state_dict() if not n.startswith("classifier.")}
    assert any("running_mean" in n for n in body)
    for key in body:  # weights and BatchNorm statistics alike
        assert torch.equal(after[key], before[key]), key
    cp = state["augment"]["steps"]["copypaste"]["stats"]
    assert cp["batches"] == 2 and cp["added"] > 0
