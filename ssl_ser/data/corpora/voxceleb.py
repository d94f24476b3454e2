"""VoxCeleb 1/2 (Nagrani et al. 2017; Chung et al. 2018): celebrity speech, for speaker pretraining.

Published layout: ``wav/id10001/1zcIwhmdeo4/00001.wav`` (or the ``id*`` folders directly under
``root``): speaker id, YouTube video id, segment. No emotion: every row is ``labelled=false``;
the video goes in ``extra``. When the meta table (``vox1_meta.csv``, tab-separated
``VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set``; or ``vox2_meta.csv``, comma-separated
``VoxCeleb2 ID, VGGFace2 ID, Gender, Set``) is in ``root`` or given as ``meta``, gender (and,
for VoxCeleb1, name and nationality) go in ``extra`` and the speaker's ``Set`` (dev/test) is the
split. VoxCeleb2's audio is AAC (``.m4a``), which soundfile cannot read: convert it first.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

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

CORPUS = "voxceleb"
LAYOUT = "VoxCeleb's layout: [wav/]id10001/<video id>/00001.wav"
META_FILES = ("vox1_meta.csv", "vox2_meta.csv")

_SPEAKER = re.compile(r"id\d+")


def read_meta(path: Path) -> dict[str, dict[str, str | None]]:
    """Speaker id -> {gender, set, name, nationality} from a VoxCeleb meta table."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    delimiter = "\t" if "\t" in text.partition("\n")[0] else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not rows:
        raise CorpusError(f"{path}: empty meta table")
    header = [name.strip() for name in rows[0]]
    column = {name.split()[0].lower() if name.startswith("VGGFace") else name.lower(): i
              for i, name in enumerate(header)}
    ids = next((i for i, name in enumerate(header) if name.startswith("VoxCeleb")), None)
    if ids is None or "gender" not in column:
        raise CorpusError(f"{path}: expected a 'VoxCeleb1 ID'/'VoxCeleb2 ID' and a 'Gender' "
                          f"column; found {header}")

    def cell(row: list[str], name: str) -> str | None:
        i = column.get(name)
        value = row[i].strip() if i is not None and i < len(row) else ""
        return value or None

    vox1 = header[ids].startswith("VoxCeleb1")
    meta = {}
    for row in rows[1:]:
        if row and row[ids].strip():
            meta[row[ids].strip()] = {
                "gender": gender(cell(row, "gender")), "set": cell(row, "set"),
                "name": cell(row, "vggface1") if vox1 else None,
                "nationality": cell(row, "nationality")}
    return meta


@CORPORA.register(CORPUS)
def prepare_voxceleb(root: Path, meta: str | None = None) -> list[Utterance]:
    """VoxCeleb: celebrity speech for speaker pretraining (wav/id10001/<video>/00001.wav)."""
    root = require_dir(root, CORPUS, LAYOUT)
    folder = root / "wav" if (root / "wav").is_dir() else root
    table: Path | None
    if meta is not None:
        table = (root / meta).resolve()
        if not table.is_file():
            raise CorpusError(f"{CORPUS}: meta file {table} does not exist")
    else:
        table = next((root / n for n in META_FILES if (root / n).is_file()), None)
    speakers = read_meta(table) if table is not None else {}
    rows, skipped = [], []
    for path in audio_files(folder):
        parts = path.relative_to(folder).parts
        if len(parts) != 3 or not _SPEAKER.fullmatch(parts[0]):
            skipped.append(path.relative_to(root))
            continue
        speaker, video = parts[0], parts[1]
        info = speakers.get(speaker, {})
        extra: dict[str, Any] = {"video": video, "gender": info.get("gender")}
        extra.update({k: info[k] for k in ("name", "nationality") if info.get(k) is not None})
        rows.append(utterance(path, key=make_key(CORPUS, speaker, video, path.stem), corpus=CORPUS,
                              speaker=speaker, labelled=False, split=info.get("set"), **extra))
    report_skipped(CORPUS, skipped, f"are not <speaker id>/<video id>/<segment> under {folder}")
    if not rows and any(folder.rglob("*.m4a")):
        raise CorpusError(f"{CORPUS}: {folder} holds .m4a (AAC) files, which cannot be read; "
                          "convert them to .wav or .flac first")
    return finish(CORPUS, rows, root, LAYOUT)
