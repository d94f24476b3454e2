"""Checkpoint files: atomic writes, damaged checkpoints passed over, refusals without bad advice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ssl_ser import checkpoint as ckpt


def _save(directory: Path, epoch: int) -> Path:
    return ckpt.save(directory, {"epoch": epoch, "w": torch.full((3,), float(epoch))},
                     {"epoch": epoch, "history": [{"epoch": epoch, "loss": torch.tensor(0.5).item()}]})


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_tmp(tmp_path: Path, monkeypatch) -> None:
    old = _save(tmp_path / "ckpt", 1)
    real_save = torch.save

    def disk_full(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        _save(old, 2)
    assert sorted(p.name for p in old.iterdir()) == [ckpt.META, ckpt.STATE]
    assert int(ckpt.load_state(old)["epoch"]) == 1 and ckpt.load_meta(old)["epoch"] == 1


def test_numbers_in_the_meta_stay_numbers(tmp_path: Path) -> None:
    directory = ckpt.save(tmp_path / "c", {"x": torch.zeros(1)},
                          {"history": [{"epoch": 1, "loss": torch.tensor(0.25), "n": torch.tensor(3)}],
                           "where": tmp_path})
    meta = ckpt.load_meta(directory)
    assert meta["history"] == [{"epoch": 1, "loss": 0.25, "n": 3}] and meta["where"] == str(tmp_path)


def test_the_newest_intact_checkpoint_is_loaded_and_the_damaged_ones_named(tmp_path: Path) -> None:
    one, two, three = (_save(tmp_path / f"checkpoint_epoch-{i:06d}", i) for i in (1, 2, 3))
    state = three / ckpt.STATE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    (two / ckpt.META).write_text('{"epoch": 2, "hist')
    restored = ckpt.load_newest_intact([three, two, one])
    assert restored is not None and restored.directory == one and int(restored.state["epoch"]) == 1
    assert [p for p, _ in restored.skipped] == [three, two]
    assert "cannot load checkpoint" in restored.skipped[0][1] and "cannot read" in restored.skipped[1][1]
    assert ckpt.load_newest_intact([]) is None
    with pytest.raises(ckpt.CheckpointError, match="none of the 2 checkpoint"):
        ckpt.load_newest_intact([three, two])
    # the best/latest picker ignores a checkpoint whose meta cannot be read
    assert ckpt.find_checkpoint(tmp_path, "latest") == three
    assert {p.name: m["epoch"] for p, m in ckpt.checkpoints_of(tmp_path).items()} == {one.name: 1, three.name: 3}


def test_a_pickle_is_refused_without_advising_weights_only_false(tmp_path: Path) -> None:
    directory = tmp_path / "evil"
    directory.mkdir()
    torch.save({"payload": os.system}, directory / ckpt.STATE)  # a function: not safe-loadable
    (directory / ckpt.META).write_text(json.dumps({"epoch": 1}))
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load_state(directory)
    message = str(err.value)
    assert "refusing checkpoint" in message and "arbitrary code" in message
    assert "weights_only" not in message and "\n" not in message


def test_under_ray_the_older_checkpoints_of_local_storage_follow_the_registered_one(
        tmp_path: Path, monkeypatch) -> None:
    import ray.train

    from ssl_ser.train.session import RaySession

    run = tmp_path / "run"
    names = ["checkpoint_2026-01-01_10-00-00.000001", "checkpoint_2026-01-01_10-00-05.000001",
             "checkpoint_2026-01-01_10-00-09.000001", "checkpoint_2026-01-01_10-00-12.000001"]
    for epoch, name in enumerate(names, 1):
        _save(run / name, epoch)
    (run / "checkpoint_tmp_unfinished").mkdir()
    registered = run / names[2]  # Ray's latest registered one; names[3] came after it
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: ray.train.Checkpoint.from_directory(str(registered)))
    session = object.__new__(RaySession)  # no Ray worker context needed for this
    with session.checkpoints() as found:
        assert found == [registered, run / names[1], run / names[0]]
