"""Free Spoken Digit Dataset (FSDD): English digits, for speaker pretraining.

Published layout: ``recordings/{digit}_{speaker}_{n}.wav`` (``root`` may be the repository or
``recordings/``), 8 kHz. No emotion: every row is ``labelled=false``; the digit and take number
go in ``extra``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssl_ser.data.corpora import (
    CORPORA,
    audio_files,
    finish,
    report_skipped,
    require_dir,
)
from ssl_ser.data.manifest import Utterance, make_key, utterance

CORPUS = "fsdd"
LAYOUT = "FSDD's layout: [recordings/]{digit}_{speaker}_{n}.wav, e.g. recordings/0_george_0.wav"

_NAME = re.compile(r"(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<take>\d+)")


@CORPORA.register(CORPUS)
def prepare_fsdd(root: Path) -> list[Utterance]:
    """Free Spoken Digit Dataset: English digits by 6 speakers, no emotion (0_george_0.wav)."""
    root = require_dir(root, CORPUS, LAYOUT)
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    rows, skipped = [], []
    for path in audio_files(folder, recursive=False):
        match = _NAME.fullmatch(path.stem)
        if match is None:
            skipped.append(path.relative_to(root))
            continue
        rows.append(utterance(
            path, key=make_key(CORPUS, path.stem), corpus=CORPUS, speaker=match["speaker"],
            labelled=False, digit=int(match["digit"]), take=int(match["take"])))
    report_skipped(CORPUS, skipped, "do not follow FSDD's naming ({digit}_{speaker}_{n}.wav)")
    return finish(CORPUS, rows, root, LAYOUT)
