"""The manifest: one JSON object per utterance, the common currency of every corpus recipe.

Recipes (``ssl_ser.data.corpora``) write it, the shard builder reads it and stores each row
next to its audio in the shards, so every streamed sample carries its own labels.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ssl_ser import audio
from ssl_ser.errors import SslSerError

ATTRIBUTES = ("arousal", "valence", "dominance")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-\u0080-\U0010ffff]+")  # unsafe ASCII only


class ManifestError(SslSerError, ValueError):
    """A manifest that cannot be used; the message names the file, line and field."""


@dataclass(kw_only=True)
class Utterance:
    key: str
    """Unique sample key; no dots (WebDataset splits sample keys at the first dot)."""
    audio: str
    """Absolute path of the audio file."""
    corpus: str
    speaker: str | None
    emotion: str | None
    """The corpus' own emotion label, or None."""
    arousal: float | None = None
    valence: float | None = None
    dominance: float | None = None
    labelled: bool
    split: str | None = None
    duration: float | None
    """Seconds, from the file header; None when the header is unreadable (the shard build rejects it)."""
    sample_rate: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    """Corpus-specific fields (gender, intensity, subset, ...)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, row: dict[str, Any], where: str = "row") -> Utterance:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(row) - names
        if unknown:
            raise ManifestError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(names)}")
        try:
            utt = cls(**row)
        except TypeError as err:
            raise ManifestError(f"{where}: {err}") from None
        utt.validate(where)
        return utt

    def validate(self, where: str = "row") -> None:
        if not self.key or "." in self.key or "/" in self.key:
            raise ManifestError(f"{where}: key {self.key!r} must be non-empty without '.' or '/'")
        for name in ATTRIBUTES:
            value = getattr(self, name)
            if value is not None and not isinstance(value, (int, float)):
                raise ManifestError(f"{where}: {name} must be a number or null, got {value!r}")
        if not isinstance(self.labelled, bool):
            raise ManifestError(f"{where}: labelled must be true/false, got {self.labelled!r}")


def make_key(*parts: object) -> str:
    """A WebDataset-safe ASCII key from parts, joined by '-'.

    ASCII characters other than letters, digits, '-' and '_' (dots, slashes, spaces) become '_'.
    Non-ASCII characters are percent-encoded as UTF-8 after NFC normalisation (RFC 3986, as in
    URLs), so none is lost: ``urllib.parse.unquote`` gives them back
    (``émotion_日本語`` -> ``%C3%A9motion_%E6%97%A5%E6%9C%AC%E8%AA%9E``).
    """
    text = "-".join(str(p) for p in parts if p is not None and str(p) != "")
    text = _KEY_UNSAFE.sub("_", unicodedata.normalize("NFC", text)).strip("_")
    return "".join(c if c.isascii() else quote(c, safe="") for c in text)


def utterance(path: str | Path, *, key: str, corpus: str, speaker: str | None = None,
              emotion: str | None = None, labelled: bool | None = None, split: str | None = None,
              arousal: float | None = None, valence: float | None = None,
              dominance: float | None = None, **extra: Any) -> Utterance:
    """Build a row for an audio file, reading duration and rate from its header.

    An unreadable header is kept (duration/sample_rate None, reason in ``extra``) so the shard
    build reports it as a reject instead of the file silently vanishing here.
    """
    path = Path(path).resolve()
    try:
        duration, rate = audio.info(path)
    except audio.AudioError as err:
        duration, rate = None, None
        extra["header_error"] = str(err)
    if labelled is None:
        labelled = emotion is not None or any(v is not None for v in (arousal, valence, dominance))
    return Utterance(key=key, audio=str(path), corpus=corpus, speaker=speaker, emotion=emotion,
                     arousal=arousal, valence=valence, dominance=dominance, labelled=labelled,
                     split=split, duration=duration, sample_rate=rate, extra=extra)


def write_manifest(rows: Iterable[Utterance], path: str | Path) -> int:
    """Write rows atomically (temporary file, then rename); refuses duplicate keys."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    seen: set[str] = set()
    with tmp.open("w") as out:
        for row in rows:
            if row.key in seen:
                tmp.unlink()
                raise ManifestError(f"duplicate key {row.key!r} (audio {row.audio})")
            seen.add(row.key)
            row.validate()
            out.write(row.to_json() + "\n")
    os.replace(tmp, path)
    return len(seen)


def iter_manifest(path: str | Path) -> Iterator[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    seen: set[str] = set()
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{where}: not valid JSON ({err})") from None
            if not isinstance(raw, dict):
                raise ManifestError(f"{where}: each line must be a JSON object")
            utt = Utterance.from_dict(raw, where)
            if utt.key in seen:
                raise ManifestError(f"{where}: duplicate key {utt.key!r}")
            seen.add(utt.key)
            yield utt


def read_manifest(path: str | Path) -> list[Utterance]:
    return list(iter_manifest(path))
