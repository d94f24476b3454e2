"""Additive noise, music and babble at SNRs drawn from a set, on the training device.

The noise clips come from ordinary shard sets (``augment.noise.shards``): MUSAN through its
recipe (``ssl-ser prepare musan``), or any folder of clips (``ssl-ser prepare folder``). They
are read once into a :class:`NoiseBank` on the device. Each clip's category comes from its
manifest row: ``extra.subset`` (MUSAN: noise, music, speech) or ``extra.label`` (the folder
recipe's parent folder) when it is one of noise / music / speech / babble, else ``speech``
when the row has a speaker, else ``noise``. Babble is the sum of several speech clips (Kaldi's
recipe: 3 to 7), or a clip already labelled babble.

A selected utterance ``x`` of ``n`` valid samples gets ``x + g * z`` on those samples, where
``z`` is an ``n``-sample piece of a clip from a random offset (the clip repeated when it is
shorter) and ``g`` sets ``10 log10(P_x / P_gz)`` to the drawn SNR, powers being means over
the valid part only (padding is neither measured nor touched). Utterances or noise pieces
with zero power are left clean.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import torch
from pydantic import Field

from ssl_ser import SAMPLE_RATE
from ssl_ser.augment.draws import Draws
from ssl_ser.config import ConfigError, config
from ssl_ser.data.stream import make_stream
from ssl_ser.errors import SslSerError

if TYPE_CHECKING:
    from ssl_ser.targets import Targets

log = logging.getLogger(__name__)

CATEGORIES = ("noise", "music", "babble")
_CLIP_KINDS = ("noise", "music", "speech", "babble")


class NoiseError(SslSerError):
    """Noise shards that cannot serve as a noise bank."""


@config
class NoiseConfig:
    shards: list[str]
    """Noise shard sets (directories, globs or URLs, as data.train)."""
    fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Share of training utterances that get noise."""
    snrs: list[float] = dataclasses.field(default_factory=lambda: [0.0, 5.0, 10.0])
    """SNRs in dB, one drawn uniformly per utterance (paper: 0, 5, 10)."""
    categories: dict[str, float] = dataclasses.field(default_factory=dict)
    """Weights of noise / music / babble; by default every category the bank has, equally."""
    category_snrs: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    """Per-category SNR sets replacing ``snrs`` (e.g. babble: [13, 15, 17, 20])."""
    babble_clips: tuple[int, int] = (3, 7)
    """Speech clips summed into one babble signal: a number drawn from this range."""
    max_clip_seconds: Annotated[float, Field(gt=0.0)] = 60.0
    """Longer clips are cut to this (they are repeated, not stretched, for long utterances)."""
    max_bank_seconds: Annotated[float, Field(gt=0.0)] | None = 7200.0
    """Clips are read in shard order until the bank holds this much audio (device memory:
    64 kB per second); null reads everything."""


def clip_category(meta: Mapping[str, Any]) -> str:
    """noise, music, speech or babble for a noise clip's manifest row (see the module docstring)."""
    extra = meta.get("extra") or {}
    for name in ("subset", "label"):
        value = extra.get(name)
        if isinstance(value, str) and value.lower() in _CLIP_KINDS:
            return value.lower()
    return "speech" if meta.get("speaker") else "noise"


def scale_for_snr(signal: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor | None:
    """The gain that puts ``noise`` at ``snr_db`` below ``signal`` (1-D, same length), or
    None when either has zero power."""
    p_signal = signal.double().pow(2).mean()
    p_noise = noise.double().pow(2).mean()
    if not (p_signal > 0 and p_noise > 0):
        return None
    return torch.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0))).to(signal.dtype)


def measured_snr(signal: torch.Tensor, added: torch.Tensor) -> float:
    """``10 log10(P_signal / P_added)`` in dB."""
    return 10.0 * math.log10(float(signal.double().pow(2).mean()) / float(added.double().pow(2).mean()))


@dataclass
class NoiseBank:
    """Noise clips by kind (noise, music, speech, babble), each kind one flat tensor."""

    audio: dict[str, torch.Tensor]
    starts: dict[str, list[int]]
    lengths: dict[str, list[int]]
    keys: dict[str, list[str]]

    @classmethod
    def from_clips(cls, clips: Sequence[tuple[str, str, torch.Tensor]],
                   device: torch.device | str = "cpu") -> NoiseBank:
        """A bank from ``(key, kind, wave)`` clips."""
        audio: dict[str, list[torch.Tensor]] = {}
        bank = cls({}, {}, {}, {})
        for key, kind, wave in clips:
            if wave.numel() == 0:
                continue
            offset = sum(w.numel() for w in audio.get(kind, []))
            audio.setdefault(kind, []).append(wave.float().cpu())
            bank.starts.setdefault(kind, []).append(offset)
            bank.lengths.setdefault(kind, []).append(int(wave.numel()))
            bank.keys.setdefault(kind, []).append(key)
        bank.audio = {k: torch.cat(v).to(device) for k, v in audio.items()}
        return bank

    @classmethod
    def from_shards(cls, specs: Sequence[str], *, max_clip_seconds: float = 60.0,
                    max_bank_seconds: float | None = None, device: torch.device | str = "cpu",
                    ) -> NoiseBank:
        """Every clip of the shard sets (in shard order, up to ``max_bank_seconds``)."""

        if not specs:
            raise NoiseError("no noise shard sets given")
        stream = make_stream(list(specs), mode="exact", batch_size=16, max_seconds=max_clip_seconds,
                             shuffle=False, num_workers=0, rank=0, world_size=1)
        clips: list[tuple[str, str, torch.Tensor]] = []
        total = 0
        limit = None if max_bank_seconds is None else int(max_bank_seconds * SAMPLE_RATE)
        for batch in stream:
            for i, key in enumerate(batch.keys):
                wave = batch.audio[i, :int(batch.lengths[i])]
                if limit is not None and total + wave.numel() > limit:
                    log.info("noise bank full at %.0f s (max_bank_seconds); later clips unused",
                             total / SAMPLE_RATE)
                    return cls.from_clips(clips, device)
                clips.append((key, clip_category(batch.meta[i]), wave))
                total += wave.numel()
        if not clips:
            raise NoiseError(f"the noise shard sets {list(specs)} hold no readable clips")
        return cls.from_clips(clips, device)

    @property
    def kinds(self) -> dict[str, int]:
        """Clips per kind."""
        return {k: len(v) for k, v in self.keys.items()}

    def categories(self) -> list[str]:
        """The augmentation categories this bank can serve."""
        have = self.kinds
        out = [c for c in ("noise", "music") if have.get(c)]
        if have.get("speech") or have.get("babble"):
            out.append("babble")
        return out

    def piece(self, kind: str, index: int, n: int, rng: random.Random) -> torch.Tensor:
        """``n`` samples of clip ``index`` of ``kind`` from a random offset, wrapping around."""
        start, length = self.starts[kind][index], self.lengths[kind][index]
        flat = self.audio[kind]
        offset = rng.randrange(length)
        if offset + n <= length:
            return flat[start + offset:start + offset + n]
        idx = (torch.arange(n, device=flat.device) + offset) % length
        return flat[start + idx]

    def draw(self, category: str, n: int, rng: random.Random,
             babble_clips: tuple[int, int] = (3, 7)) -> tuple[torch.Tensor, list[str]]:
        """An ``n``-sample noise of ``category`` and the keys of the clips it is made of."""
        if category in ("noise", "music"):
            i = rng.randrange(len(self.keys[category]))
            return self.piece(category, i, n, rng), [self.keys[category][i]]
        if category != "babble":
            raise ValueError(f"unknown noise category {category!r}")
        speech = len(self.keys.get("speech", ()))
        made = len(self.keys.get("babble", ()))
        if made and (not speech or rng.random() < made / (made + speech)):
            i = rng.randrange(made)
            return self.piece("babble", i, n, rng), [self.keys["babble"][i]]
        lo, hi = babble_clips
        count = min(speech, rng.randint(lo, hi))
        chosen = rng.sample(range(speech), count)
        total = sum(self.piece("speech", i, n, rng) for i in chosen)
        return total, [self.keys["speech"][i] for i in chosen]  # type: ignore[return-value]


@dataclass(frozen=True)
class NoisedRow:
    row: int
    category: str
    snr: float
    clips: list[str] = field(default_factory=list)


class NoiseSampler:
    """Draws (category, SNR, noise) per utterance from a bank and a config; shared by the
    training augmentation and ``ssl-ser shards noisy``."""

    def __init__(self, bank: NoiseBank, *, snrs: Sequence[float], categories: Mapping[str, float],
                 category_snrs: Mapping[str, Sequence[float]],
                 babble_clips: tuple[int, int] = (3, 7), where: str = "augment.noise") -> None:
        self.bank = bank
        available = bank.categories()
        if not available:
            raise NoiseError(f"{where}: the noise bank has no usable clips (kinds: {bank.kinds})")
        unknown = [c for c in [*categories, *category_snrs] if c not in CATEGORIES]
        if unknown:
            raise ConfigError(f"{where}: unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                              f"{unknown}; allowed: {', '.join(CATEGORIES)}")
        weights = dict(categories) if categories else {c: 1.0 for c in available}
        absent = [c for c, w in weights.items() if w > 0 and c not in available]
        if absent:
            raise ConfigError(f"{where}.categories: the noise shards have no clips for {absent} "
                              f"(they have: {', '.join(available)}; clip kinds {bank.kinds})")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ConfigError(f"{where}.categories: weights must be >= 0 and not all 0 (got {weights})")
        if not snrs or any(not s for s in category_snrs.values()):
            raise ConfigError(f"{where}: SNR sets must not be empty")
        lo, hi = babble_clips
        if not 1 <= lo <= hi:
            raise ConfigError(f"{where}.babble_clips: need 1 <= low <= high (got {babble_clips})")
        self.names = [c for c, w in weights.items() if w > 0]
        self.weights = [weights[c] for c in self.names]
        self.snrs = {c: list(category_snrs.get(c, snrs)) for c in self.names}
        self.babble_clips = babble_clips

    def draw(self, n: int, rng: random.Random) -> tuple[str, float, torch.Tensor, list[str]]:
        category = rng.choices(self.names, weights=self.weights)[0]
        snr = float(rng.choice(self.snrs[category]))
        noise, clips = self.bank.draw(category, n, rng, self.babble_clips)
        return category, snr, noise, clips

    def apply(self, wave: torch.Tensor, rng: random.Random) -> tuple[torch.Tensor, NoisedRow | None]:
        """``wave`` (1-D, all valid) with a drawn noise added, and what was added (None if
        nothing could be: zero-power signal or noise)."""
        category, snr, noise, clips = self.draw(wave.numel(), rng)
        gain = scale_for_snr(wave, noise, snr)
        if gain is None:
            return wave, None
        return wave + gain * noise, NoisedRow(-1, category, snr, clips)


@dataclass
class NoiseStats:
    utterances: int = 0
    noised: int = 0
    by_category: dict[str, int] = field(default_factory=dict)


class NoiseAugment:
    """The training-time noise augmentation (see the module docstring)."""

    def __init__(self, cfg: NoiseConfig, bank: NoiseBank) -> None:
        self.cfg = cfg
        self.sampler = NoiseSampler(bank, snrs=cfg.snrs, categories=cfg.categories,
                                    category_snrs=cfg.category_snrs, babble_clips=cfg.babble_clips)
        self.stats = NoiseStats()
        self.last: list[NoisedRow] = []

    @classmethod
    def from_config(cls, cfg: NoiseConfig, *, device: torch.device | str = "cpu",
                    log: Callable[[str], None] | None = None) -> NoiseAugment:
        bank = NoiseBank.from_shards(cfg.shards, max_clip_seconds=cfg.max_clip_seconds,
                                     max_bank_seconds=cfg.max_bank_seconds, device=device)
        if log is not None:
            seconds = sum(sum(v) for v in bank.lengths.values()) / SAMPLE_RATE
            log(f"noise bank: {bank.kinds} clips, {seconds:.0f} s, categories "
                f"{', '.join(bank.categories())}")
        return cls(cfg, bank)

    def __call__(self, audio: torch.Tensor, lengths: torch.Tensor, targets: Targets,
                 draws: Draws) -> tuple[torch.Tensor, torch.Tensor, Targets]:
        self.last = []
        out = None
        rng = draws.rows
        for row, n in enumerate(lengths.tolist()):
            self.stats.utterances += 1
            if n <= 0 or rng.random() >= self.cfg.fraction:
                continue
            if out is None:
                out = audio.clone()
            noisy, info = self.sampler.apply(audio[row, :n], rng)
            if info is None:
                continue
            out[row, :n] = noisy
            self.last.append(dataclasses.replace(info, row=row))
            self.stats.noised += 1
            self.stats.by_category[info.category] = self.stats.by_category.get(info.category, 0) + 1
        return (audio if out is None else out), lengths, targets

    def state_dict(self) -> dict[str, Any]:
        return {"utterances": self.stats.utterances, "noised": self.stats.noised,
                "by_category": dict(self.stats.by_category)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats = NoiseStats(int(state.get("utterances", 0)), int(state.get("noised", 0)),
                                dict(state.get("by_category", {})))
