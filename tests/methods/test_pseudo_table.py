"""The compact pseudo-label table: lookups (missing keys -> IGNORE), duplicates, collisions,
checkpoint round trip and the load of an old checkpoint's key list."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from ssl_ser.labels import IGNORE
from ssl_ser.methods import pseudo_table
from ssl_ser.methods.pseudo_table import HashCollision, PseudoLabelTable, key_hashes, last_of_each


def test_lookup_returns_each_keys_value_and_ignore_for_missing_keys() -> None:
    keys = [f"ravdess-03-01-{i:04d}" for i in range(500)]
    values = np.arange(500) % 7
    table = PseudoLabelTable.from_keys(keys, values)
    assert len(table) == 500 and table.values.dtype == np.int32 and table.hashes.dtype == np.uint64
    assert table.nbytes == 500 * 12
    probe = ["nope", keys[3], keys[499], "ravdess-03-01-9999", keys[0]]
    assert table.lookup(probe).tolist() == [IGNORE, 3, 499 % 7, IGNORE, 0]
    assert PseudoLabelTable().lookup(["a", "b"]).tolist() == [IGNORE, IGNORE]  # an empty table
    assert table.lookup([]).tolist() == []


def test_a_key_given_twice_keeps_its_last_value() -> None:
    table = PseudoLabelTable.from_keys(["a", "b", "a", "c", "b"], np.array([1, 2, 3, 4, 5]))
    assert len(table) == 3 and table.lookup(["a", "b", "c"]).tolist() == [3, 5, 4]
    assert set(last_of_each(key_hashes(["x", "y", "x"]), np.array([5, 0, 1])).tolist()) == {0, 1}  # larger key wins


def test_hashes_are_blake2b_64_and_a_collision_names_both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = int.from_bytes(hashlib.blake2b(b"utt1", digest_size=8).digest(), "little")
    assert key_hashes(["utt1"]).tolist() == [expected]
    assert key_hashes(["utt1", "utt1"]).tolist() == [expected, expected]  # equal keys are no collision

    class Constant:
        def __init__(self, data: bytes, digest_size: int) -> None:
            pass

        def digest(self) -> bytes:
            return b"\x01" * 8

    monkeypatch.setattr(pseudo_table.hashlib, "blake2b", Constant)
    with pytest.raises(HashCollision, match="'k1' and 'k2'"):
        key_hashes(["k1", "k2"])


def test_unsorted_hashes_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted and unique"):
        PseudoLabelTable(np.array([3, 1], np.uint64), np.array([0, 0]))


def test_state_round_trip_survives_torch_save_with_weights_only(tmp_path) -> None:
    keys = [f"k{i}" for i in range(100)]
    table = PseudoLabelTable.from_keys(keys, np.arange(100))
    assert (table.hashes >= 2**63).any()  # hashes beyond int64: the int64 view must keep them
    torch.save(table.state(), tmp_path / "t.pt")
    back = PseudoLabelTable.from_state(torch.load(tmp_path / "t.pt", weights_only=True))
    assert np.array_equal(back.hashes, table.hashes) and np.array_equal(back.values, table.values)
    assert back.lookup(keys).tolist() == list(range(100))


def test_hashing_in_chunks_matches_one_key_at_a_time_across_the_chunk_boundary() -> None:
    keys = [f"k{i}" for i in range(pseudo_table._CHUNK + 10)]
    hashes = key_hashes(keys)
    for i in (0, pseudo_table._CHUNK - 1, pseudo_table._CHUNK, len(keys) - 1):
        assert hashes[i] == int.from_bytes(hashlib.blake2b(keys[i].encode(), digest_size=8).digest(), "little")
    table = PseudoLabelTable.from_keys([*keys, "k0"], np.r_[np.arange(len(keys)), 99])  # k0 again, last
    assert len(table) == len(keys) and table.lookup(["k0", f"k{pseudo_table._CHUNK}"]).tolist() == [
        99, pseudo_table._CHUNK]
