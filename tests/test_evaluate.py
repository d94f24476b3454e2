"""Evaluation: the field's numbers for a run on shard sets, as JSON, a table and a PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ssl_ser import checkpoint as ckpt
from ssl_ser.cli import main
from ssl_ser.data.shard_index import read_index
from ssl_ser.data.stream import make_stream
from ssl_ser.evaluate import (
    confusion_png,
    evaluate,
    format_report,
    normalise_rows,
    prediction_rows,
    report_text,
    write_results,
)
from ssl_ser.inference import Predictions, Predictor
from ssl_ser.job_loader import job_from_dict
from ssl_ser.train.runner import run_local

PNG = b"\x89PNG\r\n\x1a\n"


def _train(demo_shards, make_tiny_job, storage: Path, name: str, **sections) -> Path:
    data = make_tiny_job(demo_shards, name=name, **sections)
    data["train"] = {**data["train"], "epochs": 1}
    data["debug"] = {**data["debug"], "max_train_batches": 2}
    data["storage_path"] = str(storage)
    run_local(job_from_dict(data), progress=False)
    return storage / name


@pytest.fixture(scope="module")
def tiny_run(demo_shards, tmp_path_factory) -> Path:
    from tests.conftest import tiny_job

    return _train(demo_shards, tiny_job, tmp_path_factory.mktemp("runs"), "tiny")


@pytest.fixture(scope="module")
def segment_run(demo_shards, tmp_path_factory) -> Path:
    """A segment model with speaker-wise normalisation, trained without the test speaker."""
    from tests.conftest import tiny_job

    return _train(demo_shards, tiny_job, tmp_path_factory.mktemp("runs"), "segments",
                  frontend={"name": "spectrogram_mulaw", "speaker_norm": True},
                  model={"name": "attention_cnn", "size": "tiny"},
                  data={"segment": {"seconds": 1.0, "train_hop": 0.5, "eval_hop": 0.5}})


def test_evaluation_scores_every_utterance_and_writes_consistent_results(
        demo_shards, tiny_run: Path, tmp_path: Path) -> None:
    test = str(demo_shards.shards["test"])
    result = evaluate(tiny_run, [test])
    predictor, _ = Predictor.from_checkpoint(tiny_run)
    direct = predictor.score(predictor.predict(make_stream(test, mode="exact", batch_size=8, num_workers=0,
                                                           max_seconds=30.0)))
    assert sorted(result.predictions.keys) == sorted(direct.keys)
    assert len(result.predictions.keys) == read_index(test).samples
    for key in ("ua", "wa", "macro_f1", "weighted_f1", "loss"):
        assert result.predictions.metrics[key] == pytest.approx(direct.metrics[key], abs=1e-6), key

    paths = write_results(result, tmp_path / "out")
    summary = json.loads(paths["metrics"].read_text())
    cm = np.array(summary["confusion"])
    assert cm.sum() == summary["labelled"] == read_index(test).samples
    for i, name in enumerate(summary["classes"]):
        row = summary["per_class"][name]
        assert row["support"] == cm[i].sum()
        if cm[i].sum():
            assert row["recall"] == pytest.approx(cm[i, i] / cm[i].sum())
            assert summary["confusion_normalised"][i][i] == pytest.approx(row["recall"])
    assert summary["metrics"]["ua"] == pytest.approx(
        np.mean([summary["per_class"][c]["recall"] for c in summary["classes"] if summary["per_class"][c]["support"]]))
    assert summary["metrics"]["wa"] == pytest.approx(np.trace(cm) / cm.sum())
    rows = [json.loads(line) for line in paths["predictions"].read_text().splitlines()]
    assert len(rows) == cm.sum()
    assert sum(r["label"] == r["pred"] for r in rows) == np.trace(cm)
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-4 for r in rows)
    assert paths["confusion"].read_bytes().startswith(PNG)


def test_segment_model_is_scored_per_utterance_with_new_speakers_normalised(
        demo_shards, segment_run: Path, tmp_path: Path) -> None:
    test = str(demo_shards.shards["test"])
    norm = ckpt.load_state(ckpt.find_checkpoint(segment_run))["speaker_norm"]
    # the run normalised its train and valid speakers; the test speaker is new to it
    fitted = evaluate(segment_run, [test])
    pooled = evaluate(segment_run, [test], fit_new_speakers=False)
    assert len(fitted.predictions.keys) == read_index(test).samples  # utterances, not segments
    assert fitted.speaker_norm == {"from_checkpoint": 0, "fitted_here": len(read_index(test).speakers)}
    assert not set(norm["speakers"]) & {f"synthetic/{s}" for s in read_index(test).speakers}
    assert not np.allclose(fitted.predictions.probs, pooled.predictions.probs)
    again = evaluate(segment_run, [str(demo_shards.shards["valid"])])  # known speakers keep theirs
    assert again.speaker_norm == {"from_checkpoint": len(read_index(demo_shards.shards["valid"]).speakers),
                                  "fitted_here": 0}


def test_new_speakers_are_shrunk_towards_the_training_speakers_with_the_runs_prior(
        demo_shards, segment_run: Path) -> None:
    test = str(demo_shards.shards["test"])
    pooled = evaluate(segment_run, [test], fit_new_speakers=False)
    predictor, meta = Predictor.from_checkpoint(segment_run)
    predictor.speaker_norm.prior = 1e9  # as a run with frontend.speaker_prior would store it
    overwhelmed = evaluate(segment_run, [test], predictor=predictor, meta=meta)
    assert overwhelmed.speaker_norm["fitted_here"] == len(read_index(test).speakers)
    np.testing.assert_allclose(overwhelmed.predictions.probs, pooled.predictions.probs, atol=1e-4)


def test_report_table_normalises_per_true_class_and_shows_ccc() -> None:
    confusion = [[3, 1, 0], [0, 0, 0], [1, 1, 2]]
    norm = normalise_rows(confusion)
    assert norm[0].tolist() == [0.75, 0.25, 0.0] and all(math.isnan(v) for v in norm[1])
    assert norm[2].tolist() == [0.25, 0.25, 0.5]
    text = format_report({"ua": 0.625, "wa": 0.625, "macro_f1": 0.6, "weighted_f1": 0.61, "n": 8,
                          "ccc_arousal": 0.5, "ccc_valence": 0.25, "ccc_mean": 0.375},
                         {"angry": {"recall": 0.75, "precision": 0.75, "f1": 0.75, "support": 4},
                          "happy": {"recall": None, "precision": 0.0, "f1": 0.0, "support": 0},
                          "sad": {"recall": 0.5, "precision": 1.0, "f1": 0.667, "support": 4}},
                         confusion, ["angry", "happy", "sad"], title="demo")
    lines = text.splitlines()
    assert lines[0] == "demo"
    assert lines[1].startswith("UA 0.6250  WA 0.6250  macro F1 0.6000  weighted F1 0.6100  (n = 8)")
    assert "CCC arousal 0.5000  valence 0.2500 (mean 0.3750)" in text
    angry = next(line for line in lines if line.startswith("angry") and "%" in line)
    assert "3 (75%)" in angry and "1 (25%)" in angry
    happy_scores = next(line for line in lines if line.startswith("happy") and "%" not in line and "0.000" in line)
    assert happy_scores.split()[1] == "-"  # no support: no recall


def test_prediction_rows_carry_attributes_and_the_png_is_written(tmp_path: Path) -> None:
    pred = Predictions(keys=["a", "b"], probs=np.array([[0.9, 0.1], [0.2, 0.8]]), labels=np.array([0, -1]),
                       attributes=np.array([[0.5, -0.5, 0.0], [1.0, 2.0, 3.0]]),
                       gold_attributes=np.array([[0.4, np.nan, 0.0], [1.0, 2.0, 3.0]]),
                       meta=[{"corpus": "c", "speaker": "s"}, {"corpus": "c", "speaker": "t"}])
    rows = list(prediction_rows(pred, ["low", "high"], ["arousal", "valence"]))
    assert rows[0]["label"] == "low" and rows[0]["pred"] == "low" and rows[1]["label"] is None
    assert rows[1]["pred"] == "high" and rows[0]["speaker"] == "s"
    assert rows[0]["attributes"] == {"arousal": 0.5, "valence": -0.5}
    assert rows[0]["gold_attributes"] == {"arousal": 0.4, "valence": None}
    path = confusion_png([[5, 0], [2, 3]], ["low", "high"], tmp_path / "cm.png", "title")
    assert path.read_bytes().startswith(PNG) and path.stat().st_size > 1000


def test_evaluate_command(demo_shards, tiny_run: Path, tmp_path: Path, capsys) -> None:
    test = str(demo_shards.shards["test"])
    assert main(["evaluate", str(tiny_run), test, "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("UA ") and "confusion (rows: true" in out
    assert {p.name for p in (tmp_path / "ev").iterdir()} == {"metrics.json", "predictions.jsonl", "confusion.png"}
    summary = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert f"UA {summary['metrics']['ua']:.4f}" in out

    assert main(["evaluate", str(tmp_path / "nothing"), test]) == 2
    assert "no such run or checkpoint" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_run), str(tmp_path / "no-shards")]) == 2
    assert "no-shards" in capsys.readouterr().err


def test_report_text_counts_unlabelled_utterances(demo_shards, tiny_run: Path) -> None:
    result = evaluate(tiny_run, [str(demo_shards.shards["train_unlabelled"])], max_seconds=None)
    assert result.summary()["labelled"] == 0 and len(result.predictions.keys) > 0
    text = report_text(result)
    assert "without a usable label" in text and "confusion" not in text


def _test_set_in_shards_of_4(demo_shards, tmp_path: Path) -> Path:
    from ssl_ser.data.shards import build_shards

    build_shards(demo_shards.manifests["test"], tmp_path / "test", max_count=4, workers=1, progress=False)
    return tmp_path / "test"


def test_a_missing_shard_fails_evaluation_unless_allowed_and_then_is_recorded(
        demo_shards, tiny_run: Path, tmp_path: Path, capsys) -> None:
    test = _test_set_in_shards_of_4(demo_shards, tmp_path)
    total = read_index(test).samples
    gone = max(test.glob("shard-*.tar"))
    lost = read_index(test).raw["shards"][-1]["samples"]
    gone.unlink()
    assert main(["evaluate", str(tiny_run), str(test), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ssl-ser evaluate: error: {test}: read {total - lost} "
                                                   f"of the {total} samples the shard index lists")
    assert str(gone) in err and "--allow-missing" in err and not (tmp_path / "ev" / "metrics.json").exists()

    assert main(["evaluate", str(tiny_run), str(test), "--out", str(tmp_path / "ev"), "--allow-missing"]) == 0
    assert "warning: incomplete (--allow-missing): read" in capsys.readouterr().out
    summary = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert summary["utterances"] == total - lost
    assert summary["shortfall"] == {"expected": total, "read": total - lost, "missing": lost,
                                    "shards_failed": 1, "failed_shards": [str(gone)], "samples_failed": 0}


def test_a_truncated_shard_fails_evaluation(demo_shards, tiny_run: Path, tmp_path: Path) -> None:
    from ssl_ser.evaluate import EvaluationError

    test = _test_set_in_shards_of_4(demo_shards, tmp_path)
    victim = min(test.glob("shard-*.tar"))
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(EvaluationError, match=f"1 shard.s. missing or broken: {victim}"):
        evaluate(tiny_run, [str(test)])
    result = evaluate(tiny_run, [str(test)], allow_missing=True)
    assert result.shortfall is not None and result.shortfall.missing > 0
    assert result.summary()["shortfall"]["read"] == len(result.predictions.keys)
    assert evaluate(tiny_run, [str(demo_shards.shards["test"])]).summary()["shortfall"] is None


def test_an_unusable_out_is_refused_before_the_evaluation(
        demo_shards, tiny_run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import ssl_ser.evaluate

    def must_not_run(*args, **kwargs):
        raise AssertionError("evaluated before checking --out")

    monkeypatch.setattr(ssl_ser.evaluate, "evaluate", must_not_run)
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "results"
    assert main(["evaluate", str(tiny_run), str(demo_shards.shards["test"]), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"ssl-ser evaluate: error: --out {out} is not writable: Not a directory\n"
