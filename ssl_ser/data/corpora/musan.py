"""MUSAN (Snyder et al. 2015): music, speech and noise, for augmentation.

Published layout: ``noise/{free-sound,sound-bible}/*.wav``, ``music/<source>/*.wav``,
``speech/<source>/*.wav`` (plus ANNOTATIONS/LICENSE text files, ignored). Nothing is labelled:
``emotion`` is null and the subset (noise/music/speech) and source folder go in ``extra``;
``subsets`` picks which to include.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ssl_ser.data.corpora import (
    CORPORA,
    CorpusError,
    audio_files,
    finish,
    report_skipped,
    require_dir,
)
from ssl_ser.data.manifest import Utterance, make_key, utterance

CORPUS = "musan"
LAYOUT = ("MUSAN's layout: {noise,music,speech}/<source>/<name>.wav, "
          "e.g. noise/free-sound/noise-free-sound-0000.wav")
SUBSETS = ("noise", "music", "speech")


def _subsets(value: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    wrong = [s for s in names if s not in SUBSETS]
    if wrong or not names:
        raise CorpusError(f"{CORPUS}: subsets must be some of {', '.join(SUBSETS)}; got {value!r}")
    return names


@CORPORA.register(CORPUS)
def prepare_musan(root: Path, subsets: str | list[str] = "noise,music,speech") -> list[Utterance]:
    """MUSAN: noise, music and speech clips for augmentation (noise/free-sound/*.wav, ...)."""
    root = require_dir(root, CORPUS, LAYOUT)
    chosen = _subsets(subsets)
    absent = [s for s in chosen if not (root / s).is_dir()]
    if absent:
        raise CorpusError(f"{CORPUS}: no {', '.join(s + '/' for s in absent)} folder in {root}; "
                          f"expected {LAYOUT} (or choose subsets=...)")
    rows, skipped = [], []
    for subset in chosen:
        for path in audio_files(root / subset):
            parts = path.relative_to(root / subset).parts
            if len(parts) != 2:
                skipped.append(path.relative_to(root))
                continue
            rows.append(utterance(path, key=make_key(CORPUS, path.stem),
                                  corpus=CORPUS, labelled=False, subset=subset, source=parts[0]))
    report_skipped(CORPUS, skipped, "are not <subset>/<source>/<name>")
    return finish(CORPUS, rows, root, LAYOUT)
