"""Label spaces: corpus labels -> class indices, shared across corpora.

Different corpora spell emotions differently and have different label sets. A label space
maps each corpus' own labels into one shared scheme through per-corpus tables (or the
valence/arousal quadrant mapping to happy/angry/sad/neutral used by Gao et al. 2021), so
several shard sets can be trained together. An unmapped label is an error naming the
corpus and label, or is dropped and counted when the config says so. The space is saved
with each run so evaluation and prediction decode indices the same way.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from ssl_ser.config import config, from_dict, read_yaml
from ssl_ser.errors import SslSerError

IGNORE = -1
HIDDEN = "hidden_emotion"
"""``extra`` field of an unlabelled manifest row that keeps the emotion its label hiding
removed, so that analyses (cluster purity, NMI with the hidden labels) can score against it.
Training never reads it."""
"""Index of a sample without a usable label (unlabelled, or dropped by the mapping)."""


class LabelError(SslSerError):
    """A label that the label space cannot place; names the corpus and label."""


@config
class Quadrant:
    """Valence/arousal quadrant -> four classes (Gao et al. 2021)."""

    arousal: float
    """Threshold: arousal above it is 'high'."""
    valence: float
    """Threshold: valence above it is 'positive'."""
    high_positive: str = "happy"
    high_negative: str = "angry"
    low_negative: str = "sad"
    low_positive: str = "neutral"


@config
class CorpusMapping:
    labels: dict[str, str | None] = dataclasses.field(default_factory=dict)
    """The corpus' own label -> shared class (null drops the label)."""
    quadrant: Quadrant | None = None
    """Map from the arousal/valence attributes instead of (or where there is no) categorical label."""


@config
class LabelConfig:
    field: Literal["emotion", "speaker", "corpus"] = "emotion"
    """Which manifest field the classes come from. Speakers are ``corpus/speaker`` (speaker ids
    are unique within a corpus only)."""
    classes: list[str] | None = None
    """The shared classes, in index order; by default every label of the training shards, sorted."""
    mapping: dict[str, CorpusMapping] = dataclasses.field(default_factory=dict)
    """Per-corpus mapping into ``classes``; the key ``'*'`` applies to corpora without their own."""
    mapping_file: str | None = None
    """A YAML file holding a ``mapping`` section (merged under ``mapping``), or the name of a shipped one."""
    unmapped: Literal["error", "drop"] = "error"
    """What an unmapped or unknown label does: stop with its corpus and label, or drop it (counted)."""


class LabelSpace:
    """Encodes manifest rows into class indices; :data:`IGNORE` for no usable label."""

    def __init__(self, field_name: str, classes: list[str], mapping: Mapping[str, CorpusMapping],
                 unmapped: str = "error") -> None:
        if len(set(classes)) != len(classes):
            raise LabelError(f"duplicate classes in {classes}")
        self.field = field_name
        self.classes = list(classes)
        self.index = {name: i for i, name in enumerate(self.classes)}
        self.mapping = dict(mapping)
        self.unmapped = unmapped
        self.dropped: Counter[str] = Counter()
        for corpus, table in self.mapping.items():
            targets = list(table.labels.values())
            if table.quadrant is not None:
                q = table.quadrant
                targets += [q.high_positive, q.high_negative, q.low_negative, q.low_positive]
            for target in targets:
                if target is not None and target not in self.index:
                    raise LabelError(f"mapping for corpus {corpus!r} maps to {target!r}, "
                                     f"which is not a class; classes: {', '.join(self.classes)}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def lookup(self, corpus: str, label: str | None, row: Mapping[str, Any] | None = None) -> int | None:
        """The class index of ``label`` of ``corpus``: IGNORE when there is no label or the
        mapping drops it, None when nothing maps it (no side effects)."""
        table = self.mapping.get(corpus) or self.mapping.get("*")
        if table is not None:
            if label is not None and label in table.labels:
                target = table.labels[label]
                return IGNORE if target is None else self.index[target]
            if table.quadrant is not None and row is not None and row.get("arousal") is not None \
                    and row.get("valence") is not None:
                return self.index[_quadrant(table.quadrant, row["arousal"], row["valence"])]
        if label is None:
            return IGNORE
        return self.index.get(label)

    def encode(self, row: Mapping[str, Any]) -> int:
        corpus = row.get("corpus") or "?"
        label = label_of(row, self.field)
        found = self.lookup(corpus, label, row)
        if found is not None:
            if found == IGNORE and label is not None:
                self.dropped[f"{corpus}:{label}"] += 1
            return found
        if self.unmapped == "drop":
            self.dropped[f"{corpus}:{label}"] += 1
            return IGNORE
        raise LabelError(f"corpus {corpus!r}: {self.field} label {label!r} is not mapped to any "
                         f"class ({', '.join(self.classes)}); add it to labels.mapping.{corpus}.labels "
                         f"or set labels.unmapped: drop")

    def encode_hidden(self, row: Mapping[str, Any]) -> int:
        """The class of an unlabelled row's hidden label (:data:`HIDDEN`), IGNORE without one or
        when it maps to no class. For analysis only: never a training target."""
        label = (row.get("extra") or {}).get(HIDDEN)
        if label is None:
            return IGNORE
        found = self.lookup(row.get("corpus") or "?", label, row)
        return IGNORE if found is None else found

    def encode_all(self, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        return [self.encode(r) for r in rows]

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "classes": self.classes, "unmapped": self.unmapped,
                "mapping": {c: _mapping_dict(m) for c, m in self.mapping.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelSpace:
        mapping = {c: from_dict(CorpusMapping, m, prefix=f"mapping.{c}")
                   for c, m in data.get("mapping", {}).items()}
        return cls(data["field"], list(data["classes"]), mapping, data.get("unmapped", "error"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> LabelSpace:
        return cls.from_json(json.loads(Path(path).read_text()))


def build_label_space(cfg: LabelConfig, histogram: Mapping[str, Any] | None = None,
                      base_dir: str | Path | None = None) -> LabelSpace:
    """The label space of a job: classes from the config, else every label in ``histogram``
    (the training shards' label histogram, mapped through the tables) sorted."""
    mapping = dict(cfg.mapping)
    if cfg.mapping_file:
        path = Path(cfg.mapping_file)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        raw = read_yaml(path)
        raw = raw.get("mapping", raw)
        for corpus, table in raw.items():
            mapping.setdefault(corpus, from_dict(CorpusMapping, table, source=str(path),
                                                 prefix=f"mapping.{corpus}"))
    classes = cfg.classes
    if classes is None:
        if not histogram:
            raise LabelError(f"labels.classes is not set and the training shards have no "
                             f"{cfg.field} labels to take them from")
        found: set[str] = set()
        for label in histogram:
            target: str | None = label
            for table in mapping.values():
                if label in table.labels:
                    target = table.labels[label]
            if target is not None:
                found.add(target)
        for table in mapping.values():
            if table.quadrant is not None:
                q = table.quadrant
                found.update([q.high_positive, q.high_negative, q.low_negative, q.low_positive])
        classes = sorted(found)
    return LabelSpace(cfg.field, list(classes), mapping, cfg.unmapped)


def label_of(row: Mapping[str, Any], field_name: str) -> str | None:
    """The value of ``field_name`` that classes are made of (speakers qualified by corpus)."""
    if field_name == "speaker":
        speaker = row.get("speaker")
        return None if speaker is None else f"{row.get('corpus') or '?'}/{speaker}"
    return row.get(field_name)


def _quadrant(q: Quadrant, arousal: float, valence: float) -> str:
    if arousal > q.arousal:
        return q.high_positive if valence > q.valence else q.high_negative
    return q.low_positive if valence > q.valence else q.low_negative


def _mapping_dict(m: CorpusMapping) -> dict[str, Any]:
    out: dict[str, Any] = {"labels": dict(m.labels)}
    if m.quadrant is not None:
        q = m.quadrant
        out["quadrant"] = {"arousal": q.arousal, "valence": q.valence,
                           "high_positive": q.high_positive, "high_negative": q.high_negative,
                           "low_negative": q.low_negative, "low_positive": q.low_positive}
    return out
