"""One fake of :class:`ssl_ser.context.TrainingContext` for testing methods and augmenters
without a loop. It implements the whole protocol (a test in tests/test_context.py checks that
it has every member), records what it was asked to do, and holds whatever a test gives it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ssl_ser.labels import LabelSpace


@dataclass
class FakeContext:
    job: Any = field(default_factory=SimpleNamespace)
    labels: Any = field(default_factory=lambda: LabelSpace("emotion", ["a", "b"], {}))
    bare_model: Any = None
    optimizer: torch.optim.Optimizer | None = None
    """Its state is what ``reset_optimizer_state`` clears."""
    spaces: dict[str, LabelSpace] = field(default_factory=dict)
    device: torch.device = torch.device("cpu")
    debug: bool = False
    rank: int = 0
    world_size: int = 1
    distributed: bool = False
    step: int = 0
    resumed: bool = False
    predictor: Any = None
    counts: torch.Tensor | None = None
    lines: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refreshed: int = 0

    def label_space(self, name: str) -> LabelSpace:
        return self.spaces[name]

    def set_label_space(self, name: str, space: LabelSpace) -> None:
        self.spaces[name] = space

    def class_counts(self) -> torch.Tensor:
        assert self.counts is not None, "give the fake its class counts"
        return self.counts

    def evaluate(self, specs: list[str], *, embeddings: bool = False, max_batches: int | None = None) -> Any:
        raise NotImplementedError("this test's fake has no evaluation pass")

    def embed(self, specs: list[str], *, gather: bool = True,
              max_batches: int | None = None) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        raise NotImplementedError("this test's fake has no embedding pass")

    def eval_stream(self, specs: Sequence[str]) -> Iterable[Any]:
        raise NotImplementedError("this test's fake has no streams")

    def gather(self, parts: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return parts  # one rank

    def refresh_parameters(self) -> None:
        self.refreshed += 1

    def reset_optimizer_state(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        if self.optimizer is not None:
            for p in parameters:
                self.optimizer.state.pop(p, None)

    def log(self, message: str) -> None:
        self.lines.append(message)

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))
