"""CREMA-D (Cao et al. 2014): 91 actors, 12 English sentences, 6 intended emotions.

Published layout: ``AudioWAV/1001_DFA_ANG_XX.wav`` (actor id, sentence code, emotion, level);
``root`` may be the repository folder holding ``AudioWAV/`` or ``AudioWAV/`` itself. Emotions
are the intended ones: ANG angry, DIS disgust, FEA fearful, HAP happy, NEU neutral, SAD sad.
Levels LO/MD/HI/XX become ``extra["intensity"]`` low/medium/high/unspecified. When the
repository's ``VideoDemographics.csv`` (``ActorID,Age,Sex,Race,Ethnicity``) is beside
``AudioWAV/`` (or given as ``demographics``), gender and age go in ``extra``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ssl_ser.data.corpora import (
    CORPORA,
    CorpusError,
    audio_files,
    finish,
    gender,
    report_skipped,
    require_dir,
)
from ssl_ser.data.manifest import Utterance, make_key, utterance

CORPUS = "crema-d"
LAYOUT = ("CREMA-D's layout: AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav, "
          "e.g. AudioWAV/1001_DFA_ANG_XX.wav")

EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral",
            "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {"IEO": "It's eleven o'clock", "TIE": "That is exactly what happened",
             "IOM": "I'm on my way to the meeting", "IWW": "I wonder what this is about",
             "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
             "IWL": "I would like a new alarm clock",
             "ITH": "I think I have a doctor's appointment",
             "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before",
             "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes"}

_NAME = re.compile(r"(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_"
                   r"(?P<level>[A-Z]{2})")


def read_demographics(path: Path) -> dict[str, dict[str, object]]:
    """ActorID -> {gender, age} from ``VideoDemographics.csv``."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not {"ActorID", "Sex"} <= set(reader.fieldnames or ()):
            raise CorpusError(f"{path}: expected columns ActorID,Age,Sex,...; "
                              f"found {reader.fieldnames}")
        people: dict[str, dict[str, object]] = {}
        for row in reader:
            age = (row.get("Age") or "").strip()
            people[row["ActorID"].strip()] = {"gender": gender(row["Sex"]),
                                              "age": int(age) if age.isdigit() else None}
    return people


@CORPORA.register(CORPUS)
def prepare_crema_d(root: Path, demographics: str | None = None) -> list[Utterance]:
    """CREMA-D: 91 English actors, 6 intended emotions (AudioWAV/1001_DFA_ANG_XX.wav)."""
    root = require_dir(root, CORPUS, LAYOUT)
    folder = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    table: Path | None
    if demographics is not None:
        table = (root / demographics).resolve()
        if not table.is_file():
            raise CorpusError(f"{CORPUS}: demographics file {table} does not exist")
    else:
        beside = (folder / "VideoDemographics.csv", folder.parent / "VideoDemographics.csv")
        table = next((p for p in beside if p.is_file()), None)
    people = read_demographics(table) if table is not None else {}
    rows, skipped = [], []
    # Not recursive: the repository's AudioMP3/ sibling holds the same recordings again.
    for path in audio_files(folder, recursive=False):
        match = _NAME.fullmatch(path.stem)
        if match is None or match["emotion"] not in EMOTIONS or match["level"] not in LEVELS \
                or match["sentence"] not in SENTENCES:
            skipped.append(path.relative_to(root))
            continue
        person = people.get(match["actor"], {})
        rows.append(utterance(
            path, key=make_key(CORPUS, path.stem), corpus=CORPUS, speaker=match["actor"],
            emotion=EMOTIONS[match["emotion"]], gender=person.get("gender"), age=person.get("age"),
            sentence=match["sentence"], text=SENTENCES[match["sentence"]],
            intensity=LEVELS[match["level"]]))
    report_skipped(CORPUS, skipped, "do not follow CREMA-D's naming (1001_DFA_ANG_XX.wav)")
    return finish(CORPUS, rows, root, LAYOUT)
