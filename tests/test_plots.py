from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssl_ser.plots import learning_curves_png, normalise_rows

PNG = b"\x89PNG"


def test_normalise_rows_gives_recall_per_true_class() -> None:
    norm = normalise_rows([[3, 1], [0, 0]])
    assert norm[0].tolist() == [0.75, 0.25] and np.isnan(norm[1]).all()


def test_learning_curves_draw_what_the_run_logged(tmp_path: Path) -> None:
    history = [{"epoch": e, "train_loss": 2.0 / e, "valid_loss": 1.5 / e, "valid_ua": 0.1 * e,
                "valid_n": 24.0, "pre_nmi_hidden": 0.05 * e, "lr": 1e-3} for e in range(1, 4)]
    path = learning_curves_png(history, tmp_path / "curves.png", metric="ua", title="run x")
    assert path is not None and path.read_bytes().startswith(PNG)
    figure = pytest.importorskip("matplotlib.image").imread(path)
    # three panels (loss, validation metrics, clusters) are wider than two (no cluster keys)
    two = learning_curves_png([{k: v for k, v in row.items() if not k.startswith("pre_")} for row in history],
                              tmp_path / "two.png", metric="ua")
    assert two is not None
    assert figure.shape[1] > pytest.importorskip("matplotlib.image").imread(two).shape[1]


def test_learning_curves_need_something_to_draw(tmp_path: Path) -> None:
    assert learning_curves_png([], tmp_path / "a.png") is None
    assert learning_curves_png([{"epoch": 1, "lr": 0.1, "time_s": 2.0}], tmp_path / "b.png") is None
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
