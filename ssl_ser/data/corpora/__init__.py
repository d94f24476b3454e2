"""Corpus recipes: one module per corpus, each parsing that corpus' own published layout.

A recipe is a function ``prepare_<corpus>(root: Path, **options) -> list[Utterance]``
registered under the corpus name; ``ssl-ser prepare NAME ROOT --out MANIFEST.jsonl`` is a thin
layer over :func:`prepare`, which refuses unknown options and checks option types first.

Conventions shared by every recipe:

* keys are ``<corpus>-<the corpus' own file id>``, so they stay unique when corpora are combined;
* emotions keep the corpus' own classes, spelled with the words in :data:`EMOTIONS` so the same
  class has the same name everywhere (EmoDB ``W`` "Ärger", CREMA-D ``ANG`` and RAVDESS ``05``
  are all ``angry``); "no majority among the raters" (IEMOCAP ``xxx``, MSP-Podcast ``X``) is
  ``no_agreement`` and such rows stay labelled: filtering classes is the training config's job;
* speakers are the corpus' own ids (``03``, ``Ses01F``): unique within a corpus, so combine them
  with ``corpus`` when corpora are mixed; gender, when known, is ``extra["gender"]``
  (``female``/``male``);
* audio is any file with a suffix in :data:`ssl_ser.audio.AUDIO_SUFFIXES` (``.wav``, ``.flac``,
  ``.ogg``, ``.mp3``, ``.aiff``, ...: the list ``predict`` uses too); hidden files (``._x.wav`` from
  macOS archives) and broken links are skipped with a warning that counts them;
* files that do not follow the corpus' naming are skipped with a warning (a few names and the
  count), never silently; finding nothing at all is a :class:`CorpusError`;
* rows come back sorted by key.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from ssl_ser.audio import AUDIO_SUFFIXES, is_audio_file
from ssl_ser.data.manifest import Utterance
from ssl_ser.errors import SslSerError
from ssl_ser.registry import Registry

Recipe = Callable[..., list[Utterance]]

CORPORA: Registry[Recipe] = Registry("corpus recipe", package="ssl_ser.data.corpora")

#: The shared emotion vocabulary (recipes map each corpus' codes onto these words).
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
            "boredom", "frustrated", "excited", "contempt", "other", "no_agreement")

log = logging.getLogger(__name__)

_OPTION_CONFIG = ConfigDict(coerce_numbers_to_str=True)


class CorpusError(SslSerError):
    """A corpus root, layout, label file or option that cannot be used; the message names it."""


def prepare(name: str, root: str | Path, *, licence: str | None = None, **options: Any) -> list[Utterance]:
    """Run recipe ``name`` on ``root`` after checking ``options`` against its signature.

    ``licence`` (every recipe takes it) is recorded in each row as ``extra["licence"]``; model
    cards report it for the models trained on these rows."""
    recipe = CORPORA.get(name)
    rows = recipe(Path(root).expanduser(), **check_options(name, recipe, options))
    if licence:
        for row in rows:
            row.extra["licence"] = str(licence)
    return rows


def recipe_options(recipe: Recipe) -> dict[str, inspect.Parameter]:
    """The recipe's options: its keyword parameters after ``root``."""
    params = list(inspect.signature(recipe).parameters.values())[1:]
    return {p.name: p for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def describe_options(recipe: Recipe) -> str:
    options = recipe_options(recipe).items()
    return ", ".join(f"{name}={p.default!r}" for name, p in options) or "none"


def check_options(name: str, recipe: Recipe, options: dict[str, Any]) -> dict[str, Any]:
    """Refuse unknown options (listing the allowed ones) and validate values by annotation."""
    allowed = recipe_options(recipe)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(recipe).parameters.values())
    unknown = sorted(set(options) - set(allowed))
    if unknown and not takes_any:
        raise CorpusError(f"{name}: unknown option(s) {', '.join(unknown)}; "
                          f"allowed (with defaults): {describe_options(recipe)}")
    hints = typing.get_type_hints(recipe)
    checked = {}
    for key, value in options.items():
        try:
            adapter = TypeAdapter(hints.get(key, Any), config=_OPTION_CONFIG)
            checked[key] = adapter.validate_python(value)
        except ValidationError as err:
            why = "; ".join(e["msg"] for e in err.errors())
            raise CorpusError(f"{name}: option {key}={value!r}: {why}") from None
    return checked


# --- helpers for recipes -----------------------------------------------------------------

def require_dir(root: Path, corpus: str, layout: str) -> Path:
    """``root`` resolved, or a :class:`CorpusError` saying which layout was expected."""
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise CorpusError(f"{corpus}: root {root} {what}; expected {layout}")
    return root.resolve()


def audio_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Audio files under ``folder`` in sorted order. Files that look like audio (by suffix) but
    are hidden, inside a hidden folder, or broken links are left out with a warning counting
    them, never silently."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    kept, hidden, broken = [], [], []
    for path in found:
        if path.suffix.lower() not in AUDIO_SUFFIXES or path.is_dir():
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            hidden.append(path)
        elif path.is_symlink() and not path.exists():
            broken.append(path)
        elif is_audio_file(path) and path.is_file():
            kept.append(path)
    report_skipped(folder.name, hidden, "are hidden or in a hidden folder")
    report_skipped(folder.name, broken, "are broken links (their target does not exist)")
    return sorted(kept)


def report_skipped(corpus: str, paths: Iterable[Path | str], why: str, shown: int = 5) -> int:
    """Warn about files that were left out (a few names plus the count); returns the count."""
    paths = sorted(str(p) for p in paths)
    if paths:
        more = f", ... ({len(paths) - shown} more)" if len(paths) > shown else ""
        log.warning("%s: skipped %d file(s) that %s: %s%s", corpus, len(paths), why,
                    ", ".join(str(p) for p in paths[:shown]), more)
    return len(paths)


def finish(corpus: str, rows: list[Utterance], root: Path, layout: str) -> list[Utterance]:
    """Refuse an empty result or colliding keys, and sort rows by key."""
    if not rows:
        raise CorpusError(f"{corpus}: no usable audio files found under {root}; expected {layout}")
    rows = sorted(rows, key=lambda r: r.key)
    for before, row in zip(rows, rows[1:]):
        if before.key == row.key:
            raise CorpusError(f"{corpus}: {before.audio} and {row.audio} both map to key "
                              f"{row.key!r} (the same recording twice, e.g. as .wav and .flac?)")
    return rows


def gender(code: str | None) -> str | None:
    """``m``/``Male``/``f``/``Female`` -> ``male``/``female``; anything else -> None."""
    return {"m": "male", "male": "male", "f": "female", "female": "female"}.get(
        (code or "").strip().lower())
