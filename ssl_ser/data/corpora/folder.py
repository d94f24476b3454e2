"""Any folder of audio files: noise collections, or a user's own corpus sorted into folders.

Every audio file under ``root`` (recursively) becomes a row keyed by its path relative to
``root``. ``label_field`` says what the file's parent folder names:

* ``none`` (default): nothing; the row is unlabelled;
* ``label``: a category kept in ``extra["label"]`` (e.g. the kinds of noise in a noise folder);
* ``emotion``: the emotion (lowercased, ``Angry/x.wav`` -> ``angry``): the row is labelled;
* ``speaker``: the speaker id, as given.

Files directly in ``root`` have no parent folder to read, so they get no label (and a warning
when a label was asked for). ``corpus`` names the corpus (default: the root folder's name) and
prefixes the keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ssl_ser.data.corpora import CORPORA, audio_files, finish, log, require_dir
from ssl_ser.data.manifest import Utterance, make_key, utterance

LAYOUT = "a folder with audio files (.wav, .flac, .ogg, .mp3, .aiff, ...) in it or in its subfolders"


@CORPORA.register("folder")
def prepare_folder(root: Path, label_field: Literal["none", "label", "emotion", "speaker"] = "none",
                   corpus: str | None = None) -> list[Utterance]:
    """Every audio file under a folder; the parent folder may name a label, emotion or speaker."""
    root = require_dir(root, corpus or "folder", LAYOUT)
    corpus = corpus or make_key(root.name) or "folder"
    rows, unnamed = [], []
    for path in audio_files(root):
        relative = path.relative_to(root)
        parent = relative.parts[-2] if len(relative.parts) > 1 else None
        if parent is None and label_field != "none":
            unnamed.append(str(relative))
        fields: dict = {}
        if label_field == "emotion":
            fields = dict(emotion=parent.lower() if parent else None)
        elif label_field == "speaker":
            fields = dict(speaker=parent)
        elif label_field == "label":
            fields = dict(label=parent)
        rows.append(utterance(path, key=make_key(corpus, relative.with_suffix("")), corpus=corpus,
                              **fields))
    if unnamed:
        log.warning("%s: %d file(s) directly in %s have no parent folder to give a %s (e.g. %s)",
                    corpus, len(unnamed), root, label_field, ", ".join(unnamed[:5]))
    return finish(corpus, rows, root, LAYOUT)
