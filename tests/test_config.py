from dataclasses import field
from pathlib import Path

import pytest

from ssl_ser.config import ConfigError, config, dump_yaml, load


@config
class Optim:
    name: str = "adam"
    lr: float = 1e-3


@config
class Job:
    epochs: int
    optim: Optim = field(default_factory=Optim)
    stages: list[Optim] = field(default_factory=list)


def test_loads_yaml_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("epochs: 3\noptim:\n  name: sgd\n")
    job = load(Job, path, overrides=["optim.lr=0.05", "epochs=5"])
    assert job == Job(epochs=5, optim=Optim(name="sgd", lr=0.05))


def test_unknown_key_is_named_with_suggestion_and_allowed_keys() -> None:
    with pytest.raises(ConfigError) as err:
        load(Job, data={"epochs": 1, "optim": {"lrr": 0.1}})
    message = str(err.value)
    assert "'optim.lrr'" in message and "did you mean 'lr'" in message and "name, lr" in message


def test_unknown_key_inside_a_list_of_sections() -> None:
    with pytest.raises(ConfigError, match=r"'stages\.0\.nme'.*allowed here: name, lr"):
        load(Job, data={"epochs": 1, "stages": [{"nme": "x"}]})


def test_wrong_type_and_missing_key_are_named() -> None:
    with pytest.raises(ConfigError, match="epochs: .*integer.*'three'"):
        load(Job, data={"epochs": "three"})
    with pytest.raises(ConfigError, match="missing required key 'epochs'"):
        load(Job, data={})


def test_missing_file_and_bad_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(Job, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="key.path=value"):
        load(Job, data={"epochs": 1}, overrides=["epochs"])


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    job = Job(epochs=2, stages=[Optim(name="sgd")])
    dump_yaml(job, tmp_path / "resolved.yaml")
    assert load(Job, tmp_path / "resolved.yaml") == job
