"""Optimisers and epoch-wise learning-rate schedules as the source papers use them.

- ResNet recipes (CopyPaste, x-vector): Adam.
- attention_cnn (Li et al. 2018): SGD, Nesterov momentum 0.9, weight decay 1e-4, lr 0.05
  divided by 10 at epochs 21, 31, 41 (``multistep`` with ``milestones: [21, 31, 41]``).
- pyresnet (LSSED): SGD lr 0.01, x0.1 every 20 epochs, weight decay 1e-3 (``step``).
- DAAE (Gao et al. 2021): Adadelta.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from ssl_ser.job import OptimConfig, ScheduleConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, rho=cfg.rho, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimiser {cfg.name!r}")  # the config Literal already refuses it


def lr_factor(cfg: ScheduleConfig, epoch: int, epochs: int) -> float:
    """Multiplier of the base rate during 0-based ``epoch`` (milestones are 1-based epochs)."""
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    if cfg.name == "multistep":
        return cfg.gamma ** sum(epoch + 1 >= m for m in cfg.milestones)
    if cfg.name == "step":
        return cfg.gamma ** (epoch // cfg.step_size)
    if cfg.name == "cosine":
        span = max(1, epochs - cfg.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig,
                    epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per epoch; its state (``last_epoch``) is checkpointed and restored."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(cfg, e, epochs))
