"""MSP-Podcast (Lotfian & Busso 2019): natural podcast speech, consensus labels.

Published layout: ``Audios/<name>.wav`` and ``Labels/labels_consensus.csv`` (early releases
spell it ``labels_concensus.csv``) with columns
``FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set``. Each labelled row gets the
consensus class, arousal (EmoAct), valence, dominance (1-7 scales), the partition as its split
(``Train``, ``Development``, ``Test1``, ``Test2``, ``Test3`` as given), the speaker (``Unknown``
-> null) and ``extra["gender"]``. Classes map to the shared words: A angry, S sad, H happy,
U surprised, F fearful, D disgust, C contempt, N neutral, O other, X no_agreement; X rows
(raters did not agree on a class) keep their attributes and stay labelled, so attribute
training uses them and categorical training filters ``no_agreement`` out like any class it does
not use. Every audio file without a label row is an unlabelled segment (``labelled=false``,
emotion, attributes, speaker and split null): the pool for semi-supervised training.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ssl_ser.data.corpora import (
    CORPORA,
    CorpusError,
    audio_files,
    finish,
    gender,
    log,
    require_dir,
)
from ssl_ser.data.manifest import Utterance, make_key, utterance

CORPUS = "msp-podcast"
LAYOUT = "MSP-Podcast's layout: Audios/<name>.wav and Labels/labels_consensus.csv"

EMOTIONS = {"A": "angry", "S": "sad", "H": "happy", "U": "surprised", "F": "fearful",
            "D": "disgust", "C": "contempt", "N": "neutral", "O": "other", "X": "no_agreement"}
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")
LABEL_FILES = ("Labels/labels_consensus.csv", "Labels/labels_concensus.csv")


def _number(text: str, where: str, column: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise CorpusError(f"{where}: {column} must be a number, got {text!r}") from None


def read_labels(path: Path) -> dict[str, dict[str, Any]]:
    """Audio stem -> the fields of its consensus row."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = [name.strip() for name in reader.fieldnames or ()]
        missing = [c for c in COLUMNS if c not in reader.fieldnames]
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}; "
                              f"expected {','.join(COLUMNS)}; found {','.join(reader.fieldnames)}")
        labels = {}
        for row in reader:
            where = f"{path}:{reader.line_num}"
            code = row["EmoClass"].strip()
            if code not in EMOTIONS:
                raise CorpusError(f"{where}: EmoClass {code!r} is not one of {', '.join(EMOTIONS)}")
            speaker = row["SpkrID"].strip()
            labels[Path(row["FileName"].strip()).stem] = dict(
                emotion=EMOTIONS[code], arousal=_number(row["EmoAct"], where, "EmoAct"),
                valence=_number(row["EmoVal"], where, "EmoVal"),
                dominance=_number(row["EmoDom"], where, "EmoDom"),
                speaker=None if speaker.lower() in ("", "unknown") else speaker,
                gender=gender(row["Gender"]), split=row["Split_Set"].strip() or None)
    return labels


@CORPORA.register(CORPUS)
def prepare_msp_podcast(root: Path, labels: str | None = None) -> list[Utterance]:
    """MSP-Podcast: podcast segments with consensus class + arousal/valence/dominance; the
    unlabelled segments too. ``labels`` overrides the label CSV (relative to root)."""
    root = require_dir(root, CORPUS, LAYOUT)
    audio_dir = root / "Audios"
    if not audio_dir.is_dir():
        raise CorpusError(f"{CORPUS}: no Audios/ folder in {root}; expected {LAYOUT}")
    candidates = [root / labels] if labels is not None else [root / name for name in LABEL_FILES]
    table = next((p for p in candidates if p.is_file()), None)
    if table is None:
        raise CorpusError(f"{CORPUS}: label file not found (looked for "
                          f"{', '.join(str(p) for p in candidates)}); expected {LAYOUT}")
    consensus = read_labels(table)
    rows, used = [], set()
    for path in audio_files(audio_dir):
        label = consensus.get(path.stem)
        key = make_key(CORPUS, path.stem)
        if label is None:
            rows.append(utterance(path, key=key, corpus=CORPUS, labelled=False, gender=None))
            continue
        used.add(path.stem)
        rows.append(utterance(path, key=key, corpus=CORPUS, labelled=True, **label))
    missing = sorted(set(consensus) - used)
    if missing:
        log.warning("%s: %d label row(s) in %s have no audio file in %s (e.g. %s)", CORPUS,
                    len(missing), table, audio_dir, ", ".join(missing[:5]))
    return finish(CORPUS, rows, root, LAYOUT)
