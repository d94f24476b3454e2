"""Corpus recipes: one module per corpus, each parsing that corpus' own published layout.

A recipe is a function ``prepare(root: Path, **options) -> list[Utterance]`` registered under
the corpus name; ``ssl-ser prepare NAME ROOT --out MANIFEST.jsonl`` is a thin layer over it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssl_ser.data.manifest import Utterance
from ssl_ser.registry import Registry

Recipe = Callable[..., list[Utterance]]

CORPORA: Registry[Recipe] = Registry("corpus recipe", package="ssl_ser.data.corpora")


def prepare(name: str, root: str | Path, **options: Any) -> list[Utterance]:
    return CORPORA.get(name)(Path(root), **options)
