"""Berlin Database of Emotional Speech (EmoDB, Burkhardt et al. 2005).

Published layout: ``wav/03a01Fa.wav``: speaker (2 digits), text code (``a01``..``b10``), emotion
letter, version letter. The German emotion letters map to the shared words: W (Ärger) angry,
L (Langeweile) boredom, E (Ekel) disgust, A (Angst) fearful, F (Freude) happy, T (Trauer) sad,
N neutral. Speaker ids stay as given (``03``); gender comes from the corpus documentation.
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

CORPUS = "emodb"
LAYOUT = "EmoDB's layout: wav/<speaker><text><emotion><version>.wav, e.g. wav/03a01Fa.wav"

EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy",
            "T": "sad", "N": "neutral"}
#: The ten actors, from EmoDB's documentation.
GENDERS = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
           "12": "male", "13": "female", "14": "female", "15": "male", "16": "female"}

_NAME = re.compile(r"(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[WLEAFTN])(?P<version>[a-z])")


@CORPORA.register(CORPUS)
def prepare_emodb(root: Path) -> list[Utterance]:
    """Berlin EmoDB: 10 German actors, 7 emotions (wav/03a01Fa.wav)."""
    root = require_dir(root, CORPUS, LAYOUT)
    folder = root / "wav" if (root / "wav").is_dir() else root  # the zip's wav/ or wav/ itself
    rows, skipped = [], []
    for path in audio_files(folder):
        match = _NAME.fullmatch(path.stem)
        if match is None or match["speaker"] not in GENDERS:
            skipped.append(path.relative_to(root))
            continue
        rows.append(utterance(
            path, key=make_key(CORPUS, path.stem), corpus=CORPUS, speaker=match["speaker"],
            emotion=EMOTIONS[match["emotion"]], gender=GENDERS[match["speaker"]],
            text=match["text"], version=match["version"]))
    report_skipped(CORPUS, skipped, "do not follow EmoDB's naming (e.g. 03a01Fa.wav)")
    return finish(CORPUS, rows, root, LAYOUT)
