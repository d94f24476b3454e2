"""The job schema refuses out-of-range values with the key, before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.cli import main
from ssl_ser.config import ConfigError
from ssl_ser.job_loader import job_from_dict


def _job(**sections: dict) -> dict:
    job: dict = {"name": "x", "data": {"train": ["shards/train"]}}
    for key, value in sections.items():
        job[key] = {**job.get(key, {}), **value}
    return job


@pytest.mark.parametrize(("section", "values", "key"), [
    ("optim", {"lr": -0.1}, "optim.lr"),
    ("optim", {"lr": 0}, "optim.lr"),
    ("optim", {"betas": [0.9, 1.5]}, "optim.betas.1"),
    ("optim", {"weight_decay": -1e-4}, "optim.weight_decay"),
    ("train", {"epochs": 0}, "train.epochs"),
    ("train", {"epochs": -1}, "train.epochs"),
    ("train", {"grad_clip": 0}, "train.grad_clip"),
    ("train", {"num_to_keep": 0}, "train.num_to_keep"),
    ("schedule", {"gamma": 0}, "schedule.gamma"),
    ("schedule", {"step_size": 0}, "schedule.step_size"),
    ("data", {"batch_size": 0}, "data.batch_size"),
    ("data", {"crop_seconds": -3}, "data.crop_seconds"),
    ("data", {"unlabelled_weight": 1.5}, "data.unlabelled_weight"),
    ("scaling", {"num_workers": 0}, "scaling.num_workers"),
    ("debug", {"max_train_batches": 0}, "debug.max_train_batches"),
])
def test_out_of_range_values_are_refused_naming_the_key(section: str, values: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^job: {key}: Input should be "):
        job_from_dict(_job(**{section: values}), check_data=False)


def test_in_range_edges_are_accepted() -> None:
    job_from_dict(_job(train={"epochs": 1, "grad_clip": None}, data={"crop_seconds": None},
                       scaling={"max_failures": -1}), check_data=False)


def test_the_command_line_says_one_line_before_training(tmp_path: Path, capsys) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("name: x\ndata: {train: [nowhere]}\n")
    assert main(["train", str(path), "--set", "optim.lr=-0.1", "--debug"]) == 2
    err = capsys.readouterr().err
    assert err == f"ssl-ser train: error: {path}: optim.lr: Input should be greater than 0 (got -0.1)\n"
    assert not (tmp_path / "runs").exists()
