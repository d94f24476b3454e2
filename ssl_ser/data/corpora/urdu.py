"""URDU (Latif et al. 2018): Urdu talk-show speech in four emotions.

Published layout: ``{Angry,Happy,Neutral,Sad}/SM1_F10_A010.wav``: the folder is the emotion
(lowercased: angry, happy, neutral, sad); the name is ``S<gender><id>_F<file>_<E><n>`` where the
first part is the speaker tag (``SM1``, ``SF3``; M male, F female) and ``E`` repeats the
emotion's initial, which must agree with the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssl_ser.data.corpora import (
    CORPORA,
    audio_files,
    finish,
    gender,
    report_skipped,
    require_dir,
)
from ssl_ser.data.manifest import Utterance, make_key, utterance

CORPUS = "urdu"
LAYOUT = "URDU's layout: {Angry,Happy,Neutral,Sad}/SM1_F10_A010.wav"

EMOTIONS = {"Angry": "angry", "Happy": "happy", "Neutral": "neutral", "Sad": "sad"}

_NAME = re.compile(r"(?P<speaker>S(?P<gender>[MF])\d+)_F\d+_(?P<initial>[AHNS])\d+")


@CORPORA.register(CORPUS)
def prepare_urdu(root: Path) -> list[Utterance]:
    """URDU: Urdu talk-show speech, 4 emotions ({Angry,Happy,Neutral,Sad}/SM1_F10_A010.wav)."""
    root = require_dir(root, CORPUS, LAYOUT)
    rows, skipped = [], []
    for path in audio_files(root):
        relative = path.relative_to(root)
        folder = relative.parts[0] if len(relative.parts) == 2 else None
        match = _NAME.fullmatch(path.stem)
        if folder not in EMOTIONS or match is None or match["initial"] != folder[0]:
            skipped.append(relative)
            continue
        rows.append(utterance(
            path, key=make_key(CORPUS, path.stem), corpus=CORPUS, speaker=match["speaker"],
            emotion=EMOTIONS[folder], gender=gender(match["gender"])))
    report_skipped(CORPUS, skipped, "are not <Emotion folder>/S<M|F><id>_F<n>_<E><n> with E the "
                   "folder's initial")
    return finish(CORPUS, rows, root, LAYOUT)
