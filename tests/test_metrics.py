import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    normalized_mutual_info_score,
)

from ssl_ser.metrics import ccc, ccc_loss, classification_report, nmi, purity


def test_classification_report_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    rep = classification_report(y_true, y_pred, ["a", "b", "c", "d"])
    assert rep["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert rep["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert rep["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert rep["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    assert np.array(rep["confusion"]).sum() == 200


def test_class_without_support_is_left_out_of_ua() -> None:
    rep = classification_report(np.array([0, 0, 1]), np.array([0, 2, 1]), ["a", "b", "c"])
    assert rep["ua"] == pytest.approx((0.5 + 1.0) / 2)
    assert rep["per_class"]["c"]["recall"] is None


def _ccc_reference(x: np.ndarray, y: np.ndarray) -> float:
    # Lin (1989), written out independently of the implementation under test
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * sxy / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_ccc_and_its_loss_equal_a_numpy_reference() -> None:
    rng = np.random.default_rng(1)
    gold = rng.normal(size=(64, 3))
    pred = 0.7 * gold + rng.normal(scale=0.5, size=(64, 3)) + 0.3
    refs = [_ccc_reference(pred[:, a], gold[:, a]) for a in range(3)]
    assert [ccc(pred[:, a], gold[:, a]) for a in range(3)] == pytest.approx(refs)
    loss = ccc_loss(torch.tensor(pred), torch.tensor(gold))
    assert float(loss) == pytest.approx(1 - np.mean(refs), abs=1e-6)


def test_ccc_loss_masks_missing_gold_and_has_gradients() -> None:
    gold = torch.tensor([[1.0, float("nan")], [2.0, 1.0], [3.0, float("nan")], [4.0, 2.0]])
    pred = torch.tensor([[1.0, 0.0], [2.5, 1.0], [2.0, 5.0], [4.0, 2.0]], requires_grad=True)
    loss = ccc_loss(pred, gold)
    expected = np.mean([1 - _ccc_reference(pred.detach().numpy()[:, 0], gold.numpy()[:, 0]),
                        1 - _ccc_reference(np.array([1.0, 2.0]), np.array([1.0, 2.0]))])
    assert float(loss.detach()) == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert pred.grad is not None and torch.all(pred.grad[[0, 2], 1] == 0)


def test_purity_counts_each_clusters_majority_label() -> None:
    clusters = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([5, 5, 7, 7, 7, 9])
    assert purity(clusters, labels) == pytest.approx(5 / 6)
    assert purity(labels, labels) == 1.0 and np.isnan(purity(np.array([]), np.array([])))


def test_nmi_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 5, 300), rng.integers(0, 7, 300)
    assert nmi(a, b) == pytest.approx(normalized_mutual_info_score(a, b))
    assert nmi(a, a) == pytest.approx(1.0)
