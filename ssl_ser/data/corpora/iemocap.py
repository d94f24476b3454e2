"""IEMOCAP (Busso et al. 2008): dyadic English sessions, categorical and dimensional labels.

Published layout (``IEMOCAP_full_release/``; ``root`` may be that folder or its parent)::

    Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav
    Session1/dialog/EmoEvaluation/Ses01F_impro01.txt

Each evaluation file holds one header line per utterance, followed by the raters' own lines
(``C-E2:``, ``C-F1:``, ``A-E3:``, ...), which are skipped::

    [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]

The bracket triple is ``[V, A, D]`` as the files' own ``%`` header says: valence, activation
(= arousal), dominance, each a 1-5 rating averaged over raters. Codes map to the shared words:
neu neutral, hap happy, exc excited (happy with ``merge_excited``, the usual 4-class setting),
sad sad, ang angry, fru frustrated, fea fearful, sur surprised, dis disgust, oth other,
xxx no_agreement (no majority; kept so users can filter it). Sessions are the splits
(``Session1``..``Session5``); the speaker is session + the utterance's gender (``Ses01F``), from
the first letter of the utterance id's last part. Utterances with no evaluation line are
``labelled=false``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_ser.data.corpora import (
    CORPORA,
    CorpusError,
    audio_files,
    finish,
    gender,
    log,
    report_skipped,
    require_dir,
)
from ssl_ser.data.manifest import Utterance, make_key, utterance

CORPUS = "iemocap"
LAYOUT = ("IEMOCAP's layout: [IEMOCAP_full_release/]Session1/sentences/wav/<dialog>/<utt>.wav "
          "and Session1/dialog/EmoEvaluation/<dialog>.txt")

EMOTIONS = {"neu": "neutral", "hap": "happy", "exc": "excited", "sad": "sad", "ang": "angry",
            "fru": "frustrated", "fea": "fearful", "sur": "surprised", "dis": "disgust",
            "oth": "other", "xxx": "no_agreement"}

_HEADER = re.compile(r"\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<utt>\S+)\s+"
                     r"(?P<code>\S+)\s+"
                     r"\[\s*(?P<v>[-\d.]+)\s*,\s*(?P<a>[-\d.]+)\s*,\s*(?P<d>[-\d.]+)\s*\]")
_UTTERANCE = re.compile(r"Ses\d\d[FM]_\S+_(?P<gender>[FM])\w*")


@dataclass(frozen=True)
class Evaluation:
    code: str
    valence: float
    arousal: float
    dominance: float
    start: float
    end: float


def read_evaluations(path: Path) -> dict[str, Evaluation]:
    """Utterance id -> its consensus label, from one ``EmoEvaluation/<dialog>.txt``."""
    found: dict[str, Evaluation] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.startswith("["):  # blank, '%' header, or a rater's C-*/A-* line
            continue
        match = _HEADER.match(line)
        if match is None:
            raise CorpusError(f"{path}:{number}: not an IEMOCAP evaluation line "
                              f"'[start - end]<TAB>utt<TAB>code<TAB>[V, A, D]': {line.strip()!r}")
        found[match["utt"]] = Evaluation(
            code=match["code"], valence=float(match["v"]), arousal=float(match["a"]),
            dominance=float(match["d"]), start=float(match["start"]), end=float(match["end"]))
    return found


def _release(root: Path) -> Path:
    for candidate in (root, root / "IEMOCAP_full_release"):
        if any(candidate.glob("Session[0-9]*")):
            return candidate
    raise CorpusError(f"{CORPUS}: no Session1..5 folders in {root} or "
                      f"{root / 'IEMOCAP_full_release'}; expected {LAYOUT}")


@CORPORA.register(CORPUS)
def prepare_iemocap(root: Path, merge_excited: bool = False) -> list[Utterance]:
    """IEMOCAP: 10 English actors in 5 sessions, categorical + valence/arousal/dominance."""
    root = _release(require_dir(root, CORPUS, LAYOUT))
    rows, skipped, unknown_codes = [], [], set()
    unmatched: list[str] = []
    for session in sorted(p for p in root.glob("Session[0-9]*") if p.is_dir()):
        labels: dict[str, Evaluation] = {}
        for txt in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            if not txt.name.startswith("."):
                labels.update(read_evaluations(txt))
        wav_dir = session / "sentences" / "wav"
        used = set()
        for path in audio_files(wav_dir) if wav_dir.is_dir() else []:
            match = _UTTERANCE.fullmatch(path.stem)
            if match is None or len(path.relative_to(wav_dir).parts) != 2:
                skipped.append(path.relative_to(root))
                continue
            utt, dialog = path.stem, path.parent.name
            label = labels.get(utt)
            extra: dict[str, Any] = dict(gender=gender(match["gender"]), dialog=dialog, scripted="script" in dialog)
            values: dict[str, Any] = {}
            if label is not None:
                used.add(utt)
                emotion = EMOTIONS.get(label.code)
                if emotion is None:
                    unknown_codes.add(label.code)
                    emotion = label.code
                if merge_excited and emotion == "excited":
                    emotion = "happy"
                extra.update(emotion_code=label.code, start=label.start, end=label.end)
                values = dict(emotion=emotion, valence=label.valence, arousal=label.arousal,
                              dominance=label.dominance)
            rows.append(utterance(path, key=make_key(CORPUS, utt), corpus=CORPUS,
                                  speaker=utt[:5] + match["gender"], labelled=label is not None,
                                  split=session.name, **values, **extra))
        unmatched += sorted(set(labels) - used)
    if unknown_codes:
        log.warning("%s: emotion code(s) %s are not IEMOCAP's; kept as given", CORPUS,
                    ", ".join(sorted(unknown_codes)))
    if unmatched:
        log.warning("%s: %d evaluation line(s) have no audio file (e.g. %s)", CORPUS,
                    len(unmatched), ", ".join(unmatched[:5]))
    report_skipped(CORPUS, skipped, "do not follow IEMOCAP's naming "
                   "(sentences/wav/<dialog>/Ses01F_<dialog part>_F000.wav)")
    return finish(CORPUS, rows, root, LAYOUT)
