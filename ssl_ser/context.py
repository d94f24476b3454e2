"""The boundary between the training loop and its plug-ins.

Methods (:mod:`ssl_ser.methods`) and augmenters (:mod:`ssl_ser.augment`) are written against
:class:`TrainingContext`, never against the loop itself: what they may read (the job, the
label spaces, the model, the rank) and the few things they may ask for (an evaluation pass,
embeddings, a stream, a gather across ranks, a log line). The loop
(:class:`ssl_ser.train.loop.Loop`) implements it; tests use one shared fake
(``tests/fakes.py``). A plug-in that needs more asks for a new member here, so the boundary
stays written down in one place.

Per epoch the loop calls the method's ``on_epoch_start``, then ``loss`` per batch, then
``validate``; see :class:`ssl_ser.methods.base.Method`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from ssl_ser.inference import Predictions, Predictor
    from ssl_ser.job import JobConfig
    from ssl_ser.labels import LabelSpace


class TrainingContext(Protocol):
    """What a method or an augmenter sees of the loop that trains with it."""

    # --- what it may read ----------------------------------------------------------------
    @property
    def job(self) -> JobConfig:
        """The validated job."""

    @property
    def labels(self) -> LabelSpace:
        """The main label space (``data.labels``): the classifier's classes."""

    @property
    def device(self) -> torch.device: ...

    @property
    def debug(self) -> bool:
        """``--debug``: one process, the job's ``debug`` caps apply."""

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    @property
    def distributed(self) -> bool:
        """Several ranks train together (collectives must be called on every rank)."""

    @property
    def step(self) -> int:
        """Optimiser steps taken so far (over the whole run, resumes included)."""

    @property
    def resumed(self) -> bool:
        """The run continued from a checkpoint (so one-off initialisation already happened)."""

    @property
    def bare_model(self) -> Any:
        """The model without its data-parallel wrapper: an ``ssl_ser.models.base.SERModel``
        (typed loosely: methods use model-specific members, e.g. a cluster head)."""

    @property
    def predictor(self) -> Predictor:
        """Front-end + model in evaluation form (segments, speaker normalisation, autocast)."""

    # --- label spaces -------------------------------------------------------------------
    def label_space(self, name: str) -> LabelSpace:
        """One of the method's extra label spaces (``Method.extra_label_spaces``)."""
        ...

    def set_label_space(self, name: str, space: LabelSpace) -> None:
        """Replace an extra label space (before training; it is saved with the run)."""
        ...

    def class_counts(self) -> torch.Tensor:
        """Training-shard counts of each class of the main label space."""
        ...

    # --- passes over data ---------------------------------------------------------------
    def evaluate(self, specs: list[str], *, embeddings: bool = False,
                 max_batches: int | None = None) -> Predictions:
        """Scored per-utterance predictions over shard sets, gathered on every rank."""
        ...

    def embed(self, specs: list[str], *, gather: bool = True,
              max_batches: int | None = None) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        """Keys, embeddings ``[N, D]`` and manifest rows: this rank's share or everyone's."""
        ...

    def eval_stream(self, specs: Sequence[str]) -> Iterable[Any]:
        """Every sample of the shard sets once over the ranks (this rank's share), in batches."""
        ...

    def gather(self, parts: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Every rank's lists concatenated, on every rank."""
        ...

    # --- changing what trains -----------------------------------------------------------
    def refresh_parameters(self) -> None:
        """After replacing or freezing parameters: rebuild the optimiser (keeping the state of
        the parameters still there) and the data-parallel wrapper."""
        ...

    def reset_optimizer_state(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Forget the optimiser's state (moments) of these parameters, e.g. a re-initialised head."""
        ...

    # --- reporting ----------------------------------------------------------------------
    def log(self, message: str) -> None:
        """One line on the console (rank 0)."""
        ...

    def event(self, kind: str, **fields: Any) -> None:
        """An audit line in the run's ``events.jsonl`` (rank 0)."""
        ...
