"""A user's own table of audio files (``ssl-ser prepare csv LIST.csv``).

``root`` is the CSV (or ``.tsv``) file itself; relative audio paths are resolved against its
folder. Options name the column that holds each field (``audio=path, emotion=label``); a field
whose option is not given is read from the column of the same name when there is one
(``audio``, ``key``, ``speaker``, ``emotion``, ``split``, ``arousal``, ``valence``,
``dominance``). Empty cells are null; every other column goes in ``extra`` as text. Rows with
an emotion or any attribute are labelled. Keys are ``<corpus>-<audio path as written, without
suffix>`` unless a key column is given. Rows whose audio file does not exist are an error that
lists them (``on_missing=skip`` leaves them out with a warning instead).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

from ssl_ser.data.corpora import CORPORA, CorpusError, finish, log
from ssl_ser.data.manifest import ATTRIBUTES, Utterance, make_key, utterance

LAYOUT = "a CSV file with a header row and a column of audio paths"
FIELDS = ("audio", "key", "speaker", "emotion", "split", *ATTRIBUTES)


@CORPORA.register("csv")
def prepare_csv(root: Path, audio: str | None = None, key: str | None = None,
                speaker: str | None = None, emotion: str | None = None, split: str | None = None,
                arousal: str | None = None, valence: str | None = None,
                dominance: str | None = None, corpus: str | None = None,
                delimiter: str | None = None,
                on_missing: Literal["error", "skip"] = "error") -> list[Utterance]:
    """A CSV listing audio files; options map its columns to fields (emotion=label_col, ...)."""
    table = Path(root).expanduser()
    if not table.is_file():
        what = "is a folder" if table.is_dir() else "does not exist"
        raise CorpusError(f"csv: {table} {what}; expected {LAYOUT}")
    table = table.resolve()
    corpus = corpus or make_key(table.stem) or "csv"
    given = dict(audio=audio, key=key, speaker=speaker, emotion=emotion, split=split,
                 arousal=arousal, valence=valence, dominance=dominance)
    if delimiter is None:
        delimiter = "\t" if table.suffix.lower() in (".tsv", ".tab") else ","

    with table.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = [name.strip() for name in reader.fieldnames or ()]
        reader.fieldnames = header
        columns = {}
        for field in FIELDS:
            name = given[field] if given[field] is not None else field if field in header else None
            if name is not None and name not in header:
                raise CorpusError(f"{table}: no column {name!r} for {field}; "
                                  f"columns: {', '.join(header)}")
            columns[field] = name
        if columns["audio"] is None:
            raise CorpusError(f"{table}: no 'audio' column; name the column of audio paths with "
                              f"audio=<column> (columns: {', '.join(header) or 'none'})")
        others = [name for name in header if name not in columns.values()]
        rows, missing = [], []
        for line in reader:
            where = f"{table}:{reader.line_num}"
            cell = {f: _cell(line, c) if c else None for f, c in columns.items()}
            if cell["audio"] is None:
                raise CorpusError(f"{where}: empty audio path in column {columns['audio']!r}")
            path = (table.parent / cell["audio"]).resolve()
            if not path.is_file():
                missing.append(f"{cell['audio']} (line {reader.line_num})")
                continue
            values: dict[str, Any] = {name: _number(cell[name], where, columns[name]) for name in ATTRIBUTES}
            written = Path(cell["audio"]).with_suffix("").as_posix().lstrip("/")
            row = utterance(
                path, key=make_key(corpus, cell["key"] or written),
                corpus=corpus, speaker=cell["speaker"], emotion=cell["emotion"],
                split=cell["split"], **values)
            # Set afterwards: a column may share a name with a utterance() argument.
            row.extra = {**{name: _cell(line, name) for name in others},
                         **row.extra}
            rows.append(row)
    if missing:
        message = (f"{len(missing)} audio file(s) listed in {table} do not exist (paths are "
                   f"relative to {table.parent}): {', '.join(missing[:5])}"
                   + (f", ... ({len(missing) - 5} more)" if len(missing) > 5 else ""))
        if on_missing == "error":
            raise CorpusError(f"csv: {message}; pass on_missing=skip to leave them out")
        log.warning("csv: skipped %s", message)
    return finish(corpus, rows, table, LAYOUT)


def _cell(line: dict[str, str | None], column: str) -> str | None:
    """A stripped cell; empty (or absent, in a short row) is None."""
    return (line.get(column) or "").strip() or None


def _number(text: str | None, where: str, column: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise CorpusError(f"{where}: column {column!r} must be a number, got {text!r}") from None
