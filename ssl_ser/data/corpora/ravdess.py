"""Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS, Livingstone & Russo 2018).

Published layout: ``Actor_XX/MM-VC-EE-II-SS-RR-AA.wav`` (the speech and song zips each unpack
to ``Actor_01`` .. ``Actor_24``; any folder above them is fine). The seven two-digit fields are
modality (01 AV, 02 video, 03 audio), vocal channel (01 speech, 02 song), emotion (01 neutral,
02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised), intensity
(01 normal, 02 strong), statement (01 "Kids are talking by the door", 02 "Dogs are sitting by
the door"), repetition (01, 02) and actor (01-24, odd = male). Speaker is the actor number.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssl_ser.data.corpora import (
    CORPORA,
    CorpusError,
    audio_files,
    finish,
    log,
    report_skipped,
    require_dir,
)
from ssl_ser.data.manifest import Utterance, make_key, utterance

CORPUS = "ravdess"
LAYOUT = ("RAVDESS's layout: Actor_XX/MM-VC-EE-II-SS-RR-AA.wav, "
          "e.g. Actor_01/03-01-05-01-02-01-01.wav")

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
            "06": "fearful", "07": "disgust", "08": "surprised"}
MODALITIES = {"01": "audio-video", "02": "video", "03": "audio"}
CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}

_NAME = re.compile(r"(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)-"
                   r"(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)")


def _parse(stem: str) -> dict[str, str] | None:
    match = _NAME.fullmatch(stem)
    if match is None:
        return None
    fields = match.groupdict()
    valid = (fields["modality"] in MODALITIES and fields["channel"] in CHANNELS
             and fields["emotion"] in EMOTIONS and fields["intensity"] in INTENSITIES
             and fields["statement"] in STATEMENTS and fields["repetition"] in ("01", "02")
             and 1 <= int(fields["actor"]) <= 24)
    return fields if valid else None


@CORPORA.register(CORPUS)
def prepare_ravdess(root: Path, include_song: bool = False) -> list[Utterance]:
    """RAVDESS: 24 English actors, 8 emotions (Actor_XX/03-01-05-01-02-01-01.wav); speech only
    unless include_song."""
    root = require_dir(root, CORPUS, LAYOUT)
    rows, skipped, songs = [], [], 0
    for path in audio_files(root):
        fields = _parse(path.stem)
        if fields is None:
            skipped.append(path.relative_to(root))
            continue
        channel = CHANNELS[fields["channel"]]
        if channel == "song" and not include_song:
            songs += 1
            continue
        actor = fields["actor"]
        rows.append(utterance(
            path, key=make_key(CORPUS, path.stem), corpus=CORPUS, speaker=actor,
            emotion=EMOTIONS[fields["emotion"]],
            gender="male" if int(actor) % 2 else "female",
            vocal_channel=channel, intensity=INTENSITIES[fields["intensity"]],
            statement=STATEMENTS[fields["statement"]], repetition=int(fields["repetition"]),
            modality=MODALITIES[fields["modality"]]))
    if songs and not rows:
        raise CorpusError(f"{CORPUS}: {root} holds only song files; "
                          "pass include_song=true to use them")
    if songs:
        log.info("%s: left out %d song file(s) (include_song=false)", CORPUS, songs)
    report_skipped(CORPUS, skipped, "do not follow RAVDESS's naming (MM-VC-EE-II-SS-RR-AA)")
    return finish(CORPUS, rows, root, LAYOUT)
