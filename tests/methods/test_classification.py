from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssl_ser.config import ConfigError, from_dict
from ssl_ser.labels import IGNORE, LabelSpace
from ssl_ser.methods.classification import (
    ClassificationLoss,
    ClassificationLossOptions,
    balance_weights,
    log_prior,
)
from ssl_ser.methods.supervised import Supervised, SupervisedOptions
from ssl_ser.targets import Targets
from tests.fakes import FakeContext


def loss_of(counts: list[float], **options: object) -> ClassificationLoss:
    opts = from_dict(ClassificationLossOptions, dict(options), prefix="method")
    return ClassificationLoss(opts, FakeContext(counts=torch.tensor(counts)))


def test_balance_weights_ignore_empty_classes() -> None:
    w = balance_weights(np.array([10, 0, 30, 20]))
    assert w[1] == 0 and w.tolist() == pytest.approx([2.0, 0.0, 2 / 3, 1.0])
    assert balance_weights(np.array([5, 5])).tolist() == [1.0, 1.0]


def test_balanced_weights_give_every_class_the_same_share_of_the_loss() -> None:
    """On a batch whose classes are as frequent as in training, the balanced loss is the mean over
    classes of each class's mean cross-entropy: a class with half the clips counts as much."""
    torch.manual_seed(0)
    logits, target = torch.randn(6, 2), torch.tensor([0, 0, 1, 1, 1, 1])
    balanced = loss_of([2, 4], class_weight="balanced")(logits, target)
    per_clip = F.cross_entropy(logits, target, reduction="none")
    assert balanced.item() == pytest.approx(((per_clip[:2].mean() + per_clip[2:].mean()) / 2).item())
    assert loss_of([2, 4])(logits, target).item() == pytest.approx(per_clip.mean().item())


def fitted_bias(tau: float) -> torch.Tensor:
    """The per-class bias that minimises the loss at ``tau`` on labels drawn 1 : 3."""
    loss, target = loss_of([1, 3], logit_adjustment=tau), torch.tensor([0] + [1] * 3)
    bias = torch.zeros(1, 2, requires_grad=True)
    optimizer = torch.optim.LBFGS([bias], lr=0.5, max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss(bias.expand(4, 2), target)
        value.backward()
        return value

    optimizer.step(closure)
    return bias.detach()[0]


def test_logit_adjustment_learns_the_class_conditional_not_the_prior() -> None:
    """A classifier that sees no input (a bias per class): plain cross-entropy learns the prior,
    so it always names the frequent class; at tau = 1 the adjusted loss learns equal logits,
    which is what a balanced decision needs."""
    plain, adjusted = fitted_bias(0.0), fitted_bias(1.0)
    assert (plain[1] - plain[0]).item() == pytest.approx(np.log(3), abs=1e-3)
    assert (adjusted[1] - adjusted[0]).item() == pytest.approx(0.0, abs=1e-3)


def test_a_class_without_training_clips_keeps_finite_adjusted_logits() -> None:
    prior = log_prior(torch.tensor([4.0, 0.0, 4.0]))
    assert torch.isfinite(prior).all() and prior[1] < prior[0] == prior[2]
    value = loss_of([4, 0, 4], logit_adjustment=1.0, class_weight="balanced")(torch.zeros(2, 3),
                                                                                torch.tensor([0, 2]))
    assert torch.isfinite(value)


def test_class_counts_are_read_only_when_an_option_needs_them() -> None:
    loss = ClassificationLoss(ClassificationLossOptions(label_smoothing=0.1), FakeContext())  # no counts
    assert loss.weight is None and loss.offset is None


def test_unknown_class_weight_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="method.class_weight"):
        from_dict(SupervisedOptions, {"class_weight": "inverse"}, prefix="method")
    with pytest.raises(ConfigError, match="method.logit_adjustment"):
        from_dict(SupervisedOptions, {"logit_adjustment": -1.0}, prefix="method")


def test_supervised_trains_on_the_adjusted_weighted_cross_entropy() -> None:
    counts = torch.tensor([1.0, 2.0, 5.0])
    ctx = FakeContext(job=SimpleNamespace(data=SimpleNamespace(attributes=[])),
                      labels=LabelSpace("emotion", ["a", "b", "c"], {}), counts=counts)
    options = from_dict(SupervisedOptions, {"class_weight": "balanced", "logit_adjustment": 0.5,
                                            "label_smoothing": 0.1}, prefix="method")
    torch.manual_seed(0)
    logits = torch.randn(5, 3)
    label = torch.tensor([0, 1, IGNORE, 2, 2])
    targets = Targets(keys=[str(i) for i in range(5)], label=label, attributes=torch.zeros(5, 3),
                      labelled=label != IGNORE)
    total, logs = Supervised(options, ctx).loss({"logits": logits}, targets)
    has = label != IGNORE
    expected = F.cross_entropy(logits[has] + 0.5 * (counts / counts.sum()).log(), label[has],
                               weight=balance_weights(counts.numpy()), label_smoothing=0.1)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6) and logs["ce"] == pytest.approx(expected.item())
