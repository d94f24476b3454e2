"""``synthetic``: the demo corpus written by :func:`ssl_ser.data.synthetic.generate`.

Layout (see that module)::

    speakers.csv   speaker,gender,f0,formant_scale,split     (split: train/valid/test/unlabelled)
    labels.csv     file,speaker,emotion,arousal,valence,dominance
    labelled/<spk>/<spk>_<emotion>_<nnn>.flac
    unlabelled/<spk>/<spk>_<nnnn>.flac
    noise/<kind>_<nn>.flac

Rows: labelled files carry the emotion from their name (neutral, happy, angry, sad) and the
attributes from ``labels.csv``; the split is the speaker's (speaker-independent valid/test).
Unlabelled files: emotion and attributes null, ``labelled=false``, split ``train``, and the
hidden emotion of ``unlabelled_truth.csv`` in ``extra.hidden_emotion`` (analysis only: training
never reads it). Noise
clips: speaker/emotion null, split ``noise``, ``extra.noise`` = the kind. ``extra.part`` is
``labelled``/``unlabelled``/``noise`` and ``extra.gender`` the speaker's gender.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path
from typing import Any

from ssl_ser.data.corpora import CORPORA
from ssl_ser.data.manifest import Utterance, make_key, utterance
from ssl_ser.data.synthetic import SyntheticError
from ssl_ser.labels import HIDDEN

CORPUS = "synthetic"
_AUDIO = (".flac", ".wav")
_LABELLED = re.compile(r"^(?P<speaker>[A-Za-z0-9]+)_(?P<emotion>[a-z]+)_(?P<n>\d+)$")
_UNLABELLED = re.compile(r"^(?P<speaker>[A-Za-z0-9]+)_(?P<n>\d+)$")
_NOISE = re.compile(r"^(?P<kind>[a-z]+)_(?P<n>\d+)$")


@CORPORA.register(CORPUS)
def prepare_synthetic(root: Path, *, include_unlabelled: bool = True, include_noise: bool = True,
                      valid_speakers: list[str] | None = None,
                      test_speakers: list[str] | None = None) -> list[Utterance]:
    """Rows of a generated synthetic corpus.

    ``valid_speakers``/``test_speakers`` override the splits of ``speakers.csv`` (every other
    labelled speaker is then ``train``).
    """
    root = Path(root)
    if not (root / "speakers.csv").is_file():
        raise SyntheticError(
            f"{root}: not a synthetic corpus (expected speakers.csv, labels.csv, labelled/<spk>/"
            f"<spk>_<emotion>_<n>.flac, ...; create one with `ssl-ser demo` or "
            f"ssl_ser.data.synthetic.generate)")
    speakers = {row["speaker"]: row for row in _read_csv(root / "speakers.csv")}
    if valid_speakers is not None or test_speakers is not None:
        chosen = {s: "valid" for s in valid_speakers or []} | {s: "test" for s in test_speakers or []}
        unknown = sorted(set(chosen) - set(speakers))
        if unknown:
            raise SyntheticError(f"{root}: unknown speaker(s) {unknown}; known: {sorted(speakers)}")
        for name, row in speakers.items():
            if row["split"] != "unlabelled":
                row["split"] = chosen.get(name, "train")
    labels = {row["file"]: row for row in _read_csv(root / "labels.csv")} \
        if (root / "labels.csv").is_file() else {}
    truth = {row["file"]: row["emotion"] for row in _read_csv(root / "unlabelled_truth.csv")} \
        if (root / "unlabelled_truth.csv").is_file() else {}

    rows: list[Utterance] = []
    misnamed: list[str] = []
    for path in _audio_files(root / "labelled"):
        m = _LABELLED.match(path.stem)
        if not m or m["speaker"] != path.parent.name or m["speaker"] not in speakers:
            misnamed.append(str(path.relative_to(root)))
            continue
        spk = speakers[m["speaker"]]
        label = labels.get(path.relative_to(root).as_posix(), {})
        rows.append(utterance(
            path, key=make_key(CORPUS, path.stem), corpus=CORPUS, speaker=m["speaker"],
            emotion=m["emotion"], labelled=True, split=spk["split"],
            arousal=_number(label.get("arousal")), valence=_number(label.get("valence")),
            dominance=_number(label.get("dominance")), part="labelled", gender=spk["gender"]))
    if include_unlabelled:
        for path in _audio_files(root / "unlabelled"):
            m = _UNLABELLED.match(path.stem)
            if not m or m["speaker"] != path.parent.name or m["speaker"] not in speakers:
                misnamed.append(str(path.relative_to(root)))
                continue
            hidden = truth.get(path.relative_to(root).as_posix())
            rows.append(utterance(
                path, key=make_key(CORPUS, path.stem), corpus=CORPUS, speaker=m["speaker"],
                emotion=None, labelled=False, split="train", part="unlabelled",
                gender=speakers[m["speaker"]]["gender"], **_hidden(hidden)))
    if include_noise:
        for path in _audio_files(root / "noise"):
            m = _NOISE.match(path.stem)
            if not m:
                misnamed.append(str(path.relative_to(root)))
                continue
            rows.append(utterance(path, key=make_key(CORPUS, "noise", path.stem), corpus=CORPUS,
                                  labelled=False, split="noise", part="noise", noise=m["kind"]))
    if misnamed:
        warnings.warn(f"{root}: {len(misnamed)} file(s) do not follow the synthetic layout and "
                      f"were skipped, e.g. {', '.join(misnamed[:5])}", stacklevel=2)
    if not rows:
        raise SyntheticError(f"{root}: no audio found under labelled/, unlabelled/ or noise/")
    return sorted(rows, key=lambda r: r.key)


def _hidden(emotion: str | None) -> dict[str, Any]:
    """The ``extra`` field that keeps an unlabelled file's hidden emotion, if the corpus has it."""
    return {HIDDEN: emotion} if emotion else {}


def _audio_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in _AUDIO and p.is_file())


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None
