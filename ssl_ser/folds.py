"""Cross-validation protocols: the folds a speaker-independent evaluation is made of.

``speaker``
    Leave-one-speaker-out: one fold per speaker (``corpus/speaker``), tested on that speaker.
``session``
    Leave-one-session-out (IEMOCAP): one fold per value of the manifest's ``split`` field
    (``corpus/split``; IEMOCAP's recipe stores the session there).
``K`` (an integer)
    K folds grouped by speaker: speakers, largest first, each go to the fold with the fewest
    utterances so far (ties: lower fold index), so folds are deterministic and balanced and
    no speaker is in two folds.
a fold list
    A published protocol reproduced exactly: a YAML file (:class:`FoldList`) that lists each
    fold's test speakers, or its test utterance keys, or the name of one shipped in
    ``ssl_ser/resources/folds/`` (``ravdess_emobox``: EmoBox's 6 RAVDESS folds).

In every protocol ``valid_speakers`` training speakers of each fold (drawn with a seeded
generator) are held out for validation (best checkpoint); the rest train. Folds are made of
:class:`Group` s, the samples of one (corpus, speaker, split), so no speaker is ever in two
of a fold's parts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ssl_ser.config import ConfigError, config, from_dict, read_yaml
from ssl_ser.data.manifest import make_key
from ssl_ser.errors import SslSerError

FOLD_LISTS = Path(__file__).resolve().parent / "resources" / "folds"
GROUPS_DIR = "groups"
FOLDS_FILE = "folds.json"


class CvError(SslSerError):
    """A cross-validation that cannot be set up or finished; names the fold or shard set."""


@dataclass(frozen=True)
class Group:
    """The samples of one (corpus, speaker, split): the unit folds are made of."""

    name: str
    corpus: str
    speaker: str
    split: str | None
    samples: int

    @property
    def speaker_id(self) -> str:
        return f"{self.corpus}/{self.speaker}"

    @property
    def session_id(self) -> str:
        return f"{self.corpus}/{self.split}"


@dataclass
class Fold:
    index: int
    name: str
    """The fold's run name, ``<job>-fold<i>``."""
    held_out: list[str]
    """The test speakers (``corpus/speaker``) or sessions (``corpus/split``)."""
    train: list[str]
    valid: list[str]
    test: list[str]
    """Group names."""
    valid_speakers: list[str] = field(default_factory=list)


def parse_protocol(text: str | int) -> Protocol:
    """``speaker``, ``session``, a number of speaker-grouped folds (at least 2), or a fold
    list: a YAML file, or the name of one shipped in ``ssl_ser/resources/folds/``."""
    value = str(text).strip()
    if value.lower() in ("speaker", "session"):
        return value.lower()
    try:
        k = int(value)
    except ValueError:
        return load_fold_list(value)
    if k < 2:
        raise CvError(f"--folds {k}: K-fold cross-validation needs at least 2 folds")
    return k


def protocol_name(protocol: Protocol) -> str:
    if isinstance(protocol, FoldList):
        return protocol.name
    return f"k{protocol}" if isinstance(protocol, int) else protocol


def make_groups(rows: Sequence[dict[str, Any]], where: str = "the training shards") -> list[Group]:
    """One :class:`Group` per (corpus, speaker, split) of ``rows`` (manifest rows), sorted."""

    counts: Counter[tuple[str, str, str | None]] = Counter()
    missing = 0
    for row in rows:
        if row.get("speaker") in (None, ""):
            missing += 1
            continue
        counts[(str(row.get("corpus") or ""), str(row["speaker"]), row.get("split"))] += 1
    if missing:
        raise CvError(f"{missing} sample(s) of {where} have no speaker: cross-validation folds are "
                      f"speaker-independent and need every sample's speaker")
    groups: list[Group] = []
    names: dict[str, tuple[str, str, str | None]] = {}
    for (corpus, speaker, split), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        name = make_key(corpus, speaker, split)
        if name in names:  # two groups that only differ in characters make_key replaces
            raise CvError(f"groups {names[name]} and {(corpus, speaker, split)} get the same name {name!r}")
        names[name] = (corpus, speaker, split)
        groups.append(Group(name=name, corpus=corpus, speaker=speaker, split=split, samples=n))
    return groups


def make_folds(groups: Sequence[Group], protocol: Protocol, *, job_name: str = "cv",
               valid_speakers: int = 1, seed: int = 0,
               keys: Mapping[str, Sequence[str]] | None = None) -> list[Fold]:
    """The folds of ``protocol`` over ``groups``: deterministic for the same groups and seed."""
    speakers = sorted({g.speaker_id for g in groups})
    if protocol == "speaker":
        held = [[s] for s in speakers]
        unit = {g.name: g.speaker_id for g in groups}
    elif protocol == "session":
        no_split = sorted({g.speaker_id for g in groups if g.split is None})
        if no_split:
            raise CvError(f"--folds session needs the manifest's split field (e.g. IEMOCAP's sessions); "
                          f"it is empty for speaker(s) {', '.join(no_split[:10])}")
        held = [[s] for s in sorted({g.session_id for g in groups})]
        unit = {g.name: g.session_id for g in groups}
    elif isinstance(protocol, FoldList):
        held = protocol.speaker_folds(groups, keys)
        unit = {g.name: g.speaker_id for g in groups}
    elif isinstance(protocol, int):
        if protocol > len(speakers):
            raise CvError(f"--folds {protocol}: only {len(speakers)} speakers to share out")
        sizes: Counter[str] = Counter()
        for g in groups:
            sizes[g.speaker_id] += g.samples
        members: list[list[str]] = [[] for _ in range(protocol)]
        load = [0] * protocol
        for speaker in sorted(speakers, key=lambda s: (-sizes[s], s)):
            target = min(range(protocol), key=lambda i: (load[i], i))
            members[target].append(speaker)
            load[target] += sizes[speaker]
        held = [sorted(m) for m in members]
        unit = {g.name: g.speaker_id for g in groups}
    else:
        raise CvError(f"unknown protocol {protocol!r}")
    if len(held) < 2:
        kind = "session" if protocol == "session" else "speaker"
        raise CvError(f"--folds {protocol_name(protocol)}: only one {kind} "
                      f"({held[0][0] if held else 'none'}); cross-validation needs at least two")

    width = len(str(len(held) - 1))
    folds = []
    for index, test_units in enumerate(held):
        test = [g.name for g in groups if unit[g.name] in test_units]
        rest = sorted({g.speaker_id for g in groups if g.name not in test})
        if valid_speakers and len(rest) <= valid_speakers:
            raise CvError(f"fold {index}: {len(rest)} training speaker(s) left, cannot hold out "
                          f"{valid_speakers} for validation (use --valid-speakers 0 or fewer)")
        chosen = sorted(random.Random(f"{seed}-{index}").sample(rest, valid_speakers)) if valid_speakers else []
        valid = [g.name for g in groups if g.name not in test and g.speaker_id in chosen]
        train = [g.name for g in groups if g.name not in test and g.name not in valid]
        folds.append(Fold(index=index, name=f"{job_name}-fold{index:0{width}d}", held_out=list(test_units),
                          train=train, valid=valid, test=test, valid_speakers=chosen))
    return folds


@config
class FoldList:
    """A published protocol's folds, as a YAML file::

        name: ravdess_emobox            # names the cv directory (<job>-cv-<name>)
        source: EmoBox (Ma et al., 2024), RAVDESS speech, speaker-independent
        unit: speaker                   # or key: folds list utterance keys
        corpus: ravdess                 # qualifies bare speaker names (corpus/speaker)
        folds:                          # each fold's test speakers (or keys), in order
          - ["01", "11", "20", "21"]
          - ...

    Every speaker of the data must be in exactly one fold and every listed speaker in the
    data, so a typo cannot silently move a speaker into every fold's training set.
    """

    name: str
    folds: list[list[str]]
    unit: Literal["speaker", "key"] = "speaker"
    corpus: str | None = None
    source: str = ""

    def speaker_id(self, name: str, groups: Sequence[Group]) -> str:
        """``corpus/speaker`` of a listed name: as written when qualified, else in ``corpus``,
        else the one speaker of that name in the data."""
        if "/" in name:
            return name
        if self.corpus is not None:
            return f"{self.corpus}/{name}"
        found = sorted({g.speaker_id for g in groups if g.speaker == name})
        if len(found) > 1:
            raise CvError(f"fold list {self.name}: speaker {name!r} is in several corpora ({', '.join(found)}); "
                          f"write corpus/speaker or set corpus:")
        return found[0] if found else name

    def speaker_folds(self, groups: Sequence[Group],
                      keys: Mapping[str, Sequence[str]] | None = None) -> list[list[str]]:
        """Each fold's test speakers (``corpus/speaker``), checked against the data. ``keys``:
        each group's sample keys (needed by unit ``key``)."""
        speakers = {g.speaker_id for g in groups}
        if self.unit == "speaker":
            folds = [[self.speaker_id(str(s), groups) for s in fold] for fold in self.folds]
        else:
            folds = self._key_folds(groups, keys or {})
        where: dict[str, int] = {}
        for index, fold in enumerate(folds):
            for speaker in fold:
                if speaker in where:
                    raise CvError(f"fold list {self.name}: speaker {speaker} is in folds {where[speaker]} "
                                  f"and {index}; a speaker-independent protocol tests each speaker once")
                where[speaker] = index
        unknown = sorted(set(where) - speakers)
        if unknown:
            raise CvError(f"fold list {self.name}: speaker(s) {', '.join(unknown[:10])} are not in the data "
                          f"(which has {', '.join(sorted(speakers)[:6])}...)")
        unlisted = sorted(speakers - set(where))
        if unlisted:
            raise CvError(f"fold list {self.name}: speaker(s) {', '.join(unlisted[:10])} of the data are in "
                          f"no fold")
        return [sorted(fold) for fold in folds]

    def _key_folds(self, groups: Sequence[Group], keys: Mapping[str, Sequence[str]]) -> list[list[str]]:
        fold_of_key = {str(key): i for i, fold in enumerate(self.folds) for key in fold}
        folds: list[set[str]] = [set() for _ in self.folds]
        for group in groups:
            found = {fold_of_key[k] for k in keys.get(group.name, []) if k in fold_of_key}
            if len(found) > 1:
                raise CvError(f"fold list {self.name}: the keys of speaker {group.speaker_id} are in folds "
                              f"{sorted(found)}; folds must keep a speaker's utterances together")
            for index in found:
                folds[index].add(group.speaker_id)
        known = {k for group_keys in keys.values() for k in group_keys}
        unknown = sorted(set(fold_of_key) - known)
        if unknown:
            raise CvError(f"fold list {self.name}: key(s) {', '.join(unknown[:5])} are not in the data")
        return [sorted(f) for f in folds]


Protocol = str | int | FoldList


def load_fold_list(name_or_path: str) -> FoldList:
    """A fold list from a YAML file, or by the name of one shipped with ssl-ser."""
    path = Path(name_or_path)
    shipped = FOLD_LISTS / f"{name_or_path}.yaml"
    if not path.is_file() and shipped.is_file():
        path = shipped
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in FOLD_LISTS.glob("*.yaml")))
        raise CvError(f"--folds must be 'speaker', 'session', a number of folds, a fold-list YAML file or "
                      f"a shipped fold list ({names}); got {name_or_path!r}")
    try:
        folds = from_dict(FoldList, read_yaml(path), source=str(path))
    except ConfigError as err:
        raise CvError(str(err)) from None
    if len(folds.folds) < 2 or not all(folds.folds):
        raise CvError(f"{path}: a fold list needs at least two non-empty folds")
    return folds


# --- the plan: groups + folds + label classes, stored in folds.json ---------------------------

@dataclass
class Plan:
    cv_dir: Path
    protocol: Protocol
    groups: list[Group]
    folds: list[Fold]
    classes: list[str]
    sources: list[dict[str, Any]]

    def group_dir(self, name: str) -> str:
        return str(self.cv_dir / GROUPS_DIR / name)

    def to_json(self) -> dict[str, Any]:
        return {"protocol": protocol_name(self.protocol), "classes": self.classes, "sources": self.sources,
                "groups": [asdict(g) for g in self.groups], "folds": [asdict(f) for f in self.folds]}
