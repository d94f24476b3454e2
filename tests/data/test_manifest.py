"""Manifest keys: WebDataset-safe and ASCII, with non-ASCII names encoded reversibly."""

from __future__ import annotations

from urllib.parse import unquote

from ssl_ser.data.manifest import make_key


def test_keys_keep_non_ascii_characters_reversibly() -> None:
    key = make_key("émotion_日本語")
    assert key == "%C3%A9motion_%E6%97%A5%E6%9C%AC%E8%AA%9E" and key.isascii()
    assert unquote(key) == "émotion_日本語"  # was "motion": the characters were dropped
    assert make_key("e\u0301") == make_key("é")  # macOS (NFD) and Linux (NFC) names agree
    assert make_key("c", "a b.c/d", None, "") == "c-a_b_c_d"  # unsafe ASCII still becomes '_'
    assert make_key("Ärger", "x") == "%C3%84rger-x"
