"""CopyPaste (Pappagari et al., ICASSP 2021): concatenated utterances that keep a label.

If anything but neutral is heard, the whole recording is perceived as that emotion, so an
utterance of emotion E followed or preceded by a neutral one is still E (N-CP), and so is
one of E next to another of E (SE-CP). Schemes: ``neutral`` (N-CP), ``same`` (SE-CP),
``both`` (N+SE-CP).

How it runs on a stream (no second pass over the shards):

* Every labelled row of every training batch is fed, as a random ``crop_seconds`` crop,
  into a small ring buffer of recent utterances of its class (:class:`Reservoirs`, on the
  device). Partners are drawn from there; the batch's own rows are fed first, so even the
  first batch has partners, and an utterance is never its own partner.
* ``batch_fraction`` of the batches (paper: 80%) get CopyPaste utterances; with ``both``,
  half of those are N-CP batches and half SE-CP (40% each). The choice is drawn from a
  generator shared by all ranks, so every DDP rank augments the same steps.
* An affected batch keeps all its rows and gains ``round(ratio * labelled rows)``
  CopyPaste utterances (at least one), as the paper adds CopyPaste copies to the training
  data rather than replacing it. Each is built around an *anchor*, a labelled row of the
  batch (each used once before any is reused): a random ``crop_seconds`` crop of the anchor
  and one of its partner, concatenated in random order, labelled with the anchor's class.
  Its length is the sum of the two crops; the batch is zero-padded to the longest row.
* Only labelled rows take part (as anchors and as partners); unlabelled rows pass through.
  An anchor without an eligible partner (e.g. N-CP before any neutral utterance has been
  seen, or SE-CP with a single utterance of its class so far) is skipped and counted, so
  neutral-only and single-class batches simply give what they can.

Added rows get the keys ``cp-neutral:<anchor>+<partner>`` / ``cp-same:...``, the anchor's
class and attributes, and an extra label (speaker, corpus) only where anchor and partner
agree on it. :attr:`CopyPaste.last` records each added row's sources for inspection.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from pydantic import Field

from ssl_ser import SAMPLE_RATE
from ssl_ser.augment.draws import Draws
from ssl_ser.config import ConfigError, config
from ssl_ser.labels import IGNORE

if TYPE_CHECKING:
    from ssl_ser.targets import Targets

Scheme = Literal["neutral", "same", "both"]


@config
class CopyPasteConfig:
    scheme: Scheme = "both"
    """neutral (N-CP), same (SE-CP) or both (N+SE-CP)."""
    batch_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8
    """Share of training batches that get CopyPaste utterances (paper: 0.8; with 'both',
    half of them N-CP and half SE-CP, i.e. 0.4 each)."""
    crop_seconds: Annotated[float, Field(gt=0.0)] = 4.0
    """Random crop of each source utterance before concatenation (paper: 4 s); shorter
    utterances are used whole."""
    ratio: Annotated[float, Field(gt=0.0)] = 1.0
    """CopyPaste utterances added to an affected batch per labelled row in it (1.0: the
    batch's labelled part doubles)."""
    neutral: str | list[str] = "neutral"
    """The neutral class of the job's label space, or several (a label space that keeps
    each corpus' own neutral label, e.g. [neutral, neu]); N-CP partners come from them."""
    reservoir: Annotated[int, Field(ge=1)] = 16
    """Recent utterances kept per class as partners (each at most crop_seconds long, on the
    device and in checkpoints: classes x reservoir x crop_seconds x 64 kB/s)."""


@dataclass(frozen=True)
class Part:
    """A piece of a source utterance: ``audio[start:start + length]`` of the batch row the
    key came in."""

    key: str
    start: int
    length: int


@dataclass(frozen=True)
class CopyPasteRow:
    """One added row and where its audio came from, in order of appearance."""

    key: str
    label: int
    scheme: Literal["neutral", "same"]
    parts: tuple[Part, Part]
    anchor: int
    """Row of the input batch that gave the label."""


@dataclass
class CopyPasteStats:
    batches: int = 0
    neutral_batches: int = 0
    same_batches: int = 0
    added: int = 0
    skipped: int = 0
    """Anchors that had no eligible partner."""

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class _Slot:
    key: str
    start: int
    length: int
    extra: dict[str, int] = field(default_factory=dict)


class Reservoirs:
    """Per-class ring buffers of the most recent labelled utterances (crops), on the device."""

    def __init__(self, capacity: int, max_len: int, device: torch.device | str) -> None:
        self.capacity = capacity
        self.max_len = max_len
        self.device = torch.device(device)
        self.audio: dict[int, torch.Tensor] = {}
        """class -> [capacity, max_len]; allocated on the class' first utterance. Only the
        first ``slot.length`` samples of a row are meaningful."""
        self.slots: dict[int, list[_Slot]] = {}
        self.next: dict[int, int] = {}

    def add(self, label: int, wave: torch.Tensor, slot: _Slot) -> None:
        if label not in self.audio:
            self.audio[label] = torch.zeros(self.capacity, self.max_len, device=self.device)
            self.slots[label] = []
            self.next[label] = 0
        i = self.next[label]
        self.audio[label][i, :slot.length] = wave[:slot.length]
        if i < len(self.slots[label]):
            self.slots[label][i] = slot
        else:
            self.slots[label].append(slot)
        self.next[label] = (i + 1) % self.capacity

    def candidates(self, labels: list[int], exclude: str) -> list[tuple[int, int]]:
        """(class, slot) pairs of the given classes whose key is not ``exclude``."""
        return [(c, i) for c in labels for i, s in enumerate(self.slots.get(c, ())) if s.key != exclude]

    def get(self, label: int, index: int) -> tuple[torch.Tensor, _Slot]:
        slot = self.slots[label][index]
        return self.audio[label][index, :slot.length], slot

    def __len__(self) -> int:
        return sum(len(s) for s in self.slots.values())

    def state_dict(self) -> dict[str, Any]:
        return {str(c): {"audio": self.audio[c].cpu(), "next": self.next[c],
                         "slots": [dataclasses.asdict(s) for s in self.slots[c]]}
                for c in self.audio}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.audio, self.slots, self.next = {}, {}, {}
        if any(tuple(item["audio"].shape) != (self.capacity, self.max_len) for item in state.values()):
            return  # the reservoir size or crop changed: start empty, refill from the stream
        for c, item in state.items():
            self.audio[int(c)] = item["audio"].to(self.device)
            self.next[int(c)] = int(item["next"])
            self.slots[int(c)] = [_Slot(**s) for s in item["slots"]]


class CopyPaste:
    """The CopyPaste augmentation of a job (see the module docstring)."""

    def __init__(self, cfg: CopyPasteConfig, *, classes: list[str], device: torch.device | str) -> None:
        self.cfg = cfg
        self.classes = list(classes)
        names = [cfg.neutral] if isinstance(cfg.neutral, str) else list(cfg.neutral)
        self.neutral = [self.classes.index(n) for n in names if n in self.classes]
        if cfg.scheme in ("neutral", "both"):
            missing = [n for n in names if n not in self.classes]
            if missing or not names:
                raise ConfigError(
                    f"augment.copypaste.neutral: {', '.join(map(repr, missing)) or 'nothing'} is not a "
                    f"class of this job's label space ({', '.join(self.classes)}); N-CP needs the "
                    f"neutral class (set augment.copypaste.neutral, or use scheme: same)")
        self.crop = max(1, round(cfg.crop_seconds * SAMPLE_RATE))
        self.reservoirs = Reservoirs(cfg.reservoir, self.crop, device)
        self.stats = CopyPasteStats()
        self.last: list[CopyPasteRow] = []
        self._partner_extra: list[dict[str, int]] = []

    # --- the augmentation -------------------------------------------------------------------
    def __call__(self, audio: torch.Tensor, lengths: torch.Tensor, targets: Targets,
                 draws: Draws) -> tuple[torch.Tensor, torch.Tensor, Targets]:
        self.last, self._partner_extra = [], []
        if targets.owner is not None:
            raise ValueError("CopyPaste works on whole utterances: apply it before segmentation")
        eligible = self._eligible(targets)
        self._feed(audio, lengths, targets, eligible, draws)
        scheme = self._scheme(draws)
        if scheme is None or not eligible:
            return audio, lengths, targets
        self.stats.batches += 1
        setattr(self.stats, f"{scheme}_batches", getattr(self.stats, f"{scheme}_batches") + 1)
        count = max(1, round(self.cfg.ratio * len(eligible)))
        order = list(eligible)
        draws.rows.shuffle(order)
        anchors = [order[i % len(order)] for i in range(count)]
        labels = targets.label.tolist()
        waves: list[torch.Tensor] = []
        for row in anchors:
            made = self._make(audio, int(lengths[row]), row, labels[row], targets, scheme, draws)
            if made is None:
                self.stats.skipped += 1
            else:
                waves.append(made)
        if not waves:
            return audio, lengths, targets
        self.stats.added += len(waves)
        return self._append(audio, lengths, targets, waves)

    def _eligible(self, targets: Targets) -> list[int]:
        ok = (targets.label != IGNORE) & targets.labelled.to(targets.label.device)
        return torch.nonzero(ok).flatten().tolist()

    def _scheme(self, draws: Draws) -> Literal["neutral", "same"] | None:
        u = draws.batch.random()
        f = self.cfg.batch_fraction
        if u >= f:
            return None
        if self.cfg.scheme == "both":
            return "neutral" if u < f / 2 else "same"
        return self.cfg.scheme

    def _crop(self, length: int, draws: Draws) -> tuple[int, int]:
        """(start, length) of a random crop of at most ``self.crop`` samples."""
        if length <= self.crop:
            return 0, length
        return draws.rows.randint(0, length - self.crop), self.crop

    def _feed(self, audio: torch.Tensor, lengths: torch.Tensor, targets: Targets,
              eligible: list[int], draws: Draws) -> None:
        labels = targets.label.tolist()
        extra = {name: values.tolist() for name, values in targets.extra.items()}
        for row in eligible:
            start, length = self._crop(int(lengths[row]), draws)
            slot = _Slot(targets.keys[row], start, length, {n: v[row] for n, v in extra.items()})
            self.reservoirs.add(labels[row], audio[row, start:start + length], slot)

    def _make(self, audio: torch.Tensor, length: int, row: int, label: int, targets: Targets,
              scheme: Literal["neutral", "same"], draws: Draws) -> torch.Tensor | None:
        key = targets.keys[row]
        pool = self.neutral if scheme == "neutral" else [label]
        candidates = self.reservoirs.candidates(pool, exclude=key)
        if not candidates:
            return None
        partner_wave, slot = self.reservoirs.get(*candidates[draws.rows.randrange(len(candidates))])
        start, size = self._crop(length, draws)
        anchor = Part(key, start, size)
        partner = Part(slot.key, slot.start, slot.length)
        pieces = [(audio[row, start:start + size], anchor), (partner_wave, partner)]
        if draws.rows.random() < 0.5:
            pieces.reverse()
        self.last.append(CopyPasteRow(key=f"cp-{scheme}:{key}+{slot.key}", label=label, scheme=scheme,
                                      parts=(pieces[0][1], pieces[1][1]), anchor=row))
        self._partner_extra.append(slot.extra)
        return torch.cat([pieces[0][0], pieces[1][0]])

    def _append(self, audio: torch.Tensor, lengths: torch.Tensor, targets: Targets,
                waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, Targets]:
        new_lengths = torch.tensor([w.numel() for w in waves], dtype=lengths.dtype, device=lengths.device)
        width = max(audio.shape[1], int(new_lengths.max()))
        out = audio.new_zeros(audio.shape[0] + len(waves), width)
        out[:audio.shape[0], :audio.shape[1]] = audio
        for i, wave in enumerate(waves):
            out[audio.shape[0] + i, :wave.numel()] = wave
        anchors = torch.tensor([r.anchor for r in self.last], dtype=torch.long, device=targets.label.device)
        extra = {}
        for name, values in targets.extra.items():
            mine = values[anchors]
            theirs = torch.tensor([e.get(name, IGNORE) for e in self._partner_extra],
                                  dtype=values.dtype, device=values.device)
            agreed = torch.where(mine == theirs, mine, torch.full_like(mine, IGNORE))
            extra[name] = torch.cat([values, agreed])
        new_targets = dataclasses.replace(
            targets, keys=[*targets.keys, *(r.key for r in self.last)],
            label=torch.cat([targets.label, targets.label[anchors]]),
            attributes=torch.cat([targets.attributes, targets.attributes[anchors]]),
            labelled=torch.cat([targets.labelled, torch.ones(len(waves), dtype=torch.bool,
                                                             device=targets.labelled.device)]),
            extra=extra,
            # every per-row field grows with the batch: segmenting and speaker-wise
            # normalisation index it by row (a pair is normalised as its anchor's speaker)
            speakers=None if targets.speakers is None
            else [*targets.speakers, *(targets.speakers[r.anchor] for r in self.last)])
        return out, torch.cat([lengths, new_lengths]), new_targets

    # --- checkpointed state -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"reservoirs": self.reservoirs.state_dict(), "stats": self.stats.as_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reservoirs.load_state_dict(state.get("reservoirs", {}))
        self.stats = CopyPasteStats(**state.get("stats", {}))
