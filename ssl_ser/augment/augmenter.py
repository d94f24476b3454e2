"""The augmenter: the job's ``augment`` section validated and built into a chain of
on-device augmentations (see :mod:`ssl_ser.augment`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ssl_ser.augment.copypaste import CopyPaste, CopyPasteConfig
from ssl_ser.augment.draws import Draws
from ssl_ser.augment.noise import NoiseAugment, NoiseConfig
from ssl_ser.config import ConfigError, config, from_dict
from ssl_ser.data.stream import resolve_shards
from ssl_ser.errors import SslSerError

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext
    from ssl_ser.targets import Targets


@config
class AugmentConfig:
    copypaste: CopyPasteConfig | None = None
    """CopyPaste (Pappagari et al. 2021): emotional utterances concatenated with neutral or
    same-emotion partners (any class of the job's label space; N-CP needs a neutral one)."""
    noise: NoiseConfig | None = None
    """Additive noise, music and babble at SNRs drawn from a set."""


class Augmentation(Protocol):
    def __call__(self, audio: torch.Tensor, lengths: torch.Tensor, targets: Targets,
                 draws: Draws) -> tuple[torch.Tensor, torch.Tensor, Targets]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Augmenter:
    """The configured augmentations, applied in order to each training batch."""

    def __init__(self, steps: Mapping[str, Augmentation], *, seed: int = 0, rank: int = 0) -> None:
        self.steps = dict(steps)
        self.seed = seed
        self.rank = rank
        self.calls = 0

    def __call__(self, audio: torch.Tensor, lengths: torch.Tensor, targets: Targets
                 ) -> tuple[torch.Tensor, torch.Tensor, Targets]:
        for name, step in self.steps.items():
            audio, lengths, targets = step(audio, lengths, targets,
                                           Draws(self.seed, self.rank, self.calls, name))
        self.calls += 1
        return audio, lengths, targets

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "rank": self.rank,
                "steps": {name: step.state_dict() for name, step in self.steps.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = int(state.get("calls", 0))
        # Only rank 0's state is checkpointed: other ranks keep their own (per-rank) contents
        # such as CopyPaste reservoirs, which refill from their own stream.
        if int(state.get("rank", 0)) != self.rank:
            return
        for name, step_state in state.get("steps", {}).items():
            if name in self.steps:
                self.steps[name].load_state_dict(step_state)


def check_augment(section: Mapping[str, Any], check_data: bool = False) -> AugmentConfig:
    """Validate a job's ``augment`` section (keys reported as ``augment.copypaste.xxx``);
    with ``check_data``, also that the noise shard sets exist."""
    cfg = from_dict(AugmentConfig, section, source="job", prefix="augment")
    if check_data and cfg.noise is not None:

        for spec in cfg.noise.shards:
            try:
                resolve_shards(spec)
            except SslSerError as err:
                raise ConfigError(f"augment.noise.shards: {err}") from None
    return cfg


def build_augmenter(section: Mapping[str, Any] | AugmentConfig, ctx: TrainingContext) -> Augmenter:
    """The augmenter of a job, on the loop's device, for the loop's label space and rank."""
    cfg = section if isinstance(section, AugmentConfig) else check_augment(section)
    steps: dict[str, Augmentation] = {}
    if cfg.copypaste is not None:
        steps["copypaste"] = CopyPaste(cfg.copypaste, classes=ctx.labels.classes, device=ctx.device)
    if cfg.noise is not None:
        steps["noise"] = NoiseAugment.from_config(cfg.noise, device=ctx.device, log=ctx.log)
    return Augmenter(steps, seed=ctx.job.train.seed, rank=ctx.rank)
