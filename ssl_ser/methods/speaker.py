"""Speaker pretraining (method ``speaker``): the x-vector model learns to tell speakers apart.

The job's label space is the training speakers (``data.labels.field: speaker``); emotion labels
are ignored, so any corpus with a speaker field serves (VoxCeleb, FSDD, the emotion corpora).
The loss is softmax cross-entropy, or additive angular margin softmax (``loss: aam``, ArcFace
/ AAM-softmax: the target logit ``s cos(theta)`` becomes ``s cos(theta + m)``).

AAM is implemented on the model's own final layer, so the speaker model stays an ordinary
model: a forward hook turns the classifier's output into ``s * cos(input, weight row)`` (its
bias is kept in the graph with a zero gradient), and the loss adds the margin to the target
logit. The weight rows are the speaker centres. Because the layer is the one
``classifier_prefix`` names, ``train.init_from`` in an emotion job drops it and puts a fresh
emotion layer in its place, exactly as after softmax pretraining.

Validation (every epoch): speaker accuracy of held-out utterances of the *training* speakers
(``data.valid``; AAM models scored by cosine, as trained) and the equal error rate of
verification trials among *unseen* speakers (``trials_from``): cosine scores of the
x-vectors (the model's ``embedding``), all target pairs plus sampled non-target pairs, from a
fixed seed over the utterances sorted by key, so every epoch scores the same trials.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ssl_ser.config import ConfigError, config
from ssl_ser.data.histograms import class_histogram
from ssl_ser.labels import IGNORE, LabelSpace, label_of
from ssl_ser.methods.base import METHODS, Method
from ssl_ser.metrics import HEADLINE_METRICS
from ssl_ser.metrics_speaker import TrialError, cosine_scores, eer, make_trials

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext
    from ssl_ser.job import JobConfig
    from ssl_ser.targets import Targets


@config
class SpeakerOptions:
    loss: Literal["softmax", "aam"] = "softmax"
    """softmax: cross-entropy on the classifier's logits; aam: additive angular margin softmax."""
    margin: Annotated[float, Field(ge=0.0, lt=math.pi / 2)] = 0.2
    """AAM margin m, radians (wespeaker / VoxCeleb recipes: 0.2)."""
    scale: Annotated[float, Field(gt=0.0)] = 30.0
    """AAM scale s of the cosine logits."""
    trials_from: list[str] = dataclasses.field(default_factory=list)
    """Shard sets of speakers *not* in data.train, for the EER (empty: no EER)."""
    max_target_trials: Annotated[int, Field(ge=1)] = 20_000
    max_nontarget_trials: Annotated[int, Field(ge=1)] = 20_000
    trials_seed: int = 0


def aam_logits(cosine: torch.Tensor, label: torch.Tensor, margin: float, scale: float) -> torch.Tensor:
    """``scale * cos(theta + margin)`` at each row's label, ``scale * cos(theta)`` elsewhere.

    ``cosine [N, C]``. Past ``theta = pi - margin``, where ``cos(theta + m)`` would stop
    decreasing, the target logit continues as ``cos(theta) - m sin(m)`` (the usual ArcFace
    guard), so the loss keeps pushing every target towards its centre.
    """
    cosine = cosine.float().clamp(-1.0, 1.0)
    target = cosine.gather(1, label[:, None])
    sine = (1.0 - target.pow(2)).clamp(min=0.0).sqrt()
    with_margin = target * math.cos(margin) - sine * math.sin(margin)
    with_margin = torch.where(target > math.cos(math.pi - margin), with_margin,
                              target - math.sin(math.pi - margin) * margin)
    return scale * cosine.scatter(1, label[:, None], with_margin)


@METHODS.register("speaker")
class Speaker(Method):
    Options = SpeakerOptions

    def __init__(self, options: SpeakerOptions, ctx: TrainingContext) -> None:
        super().__init__(options, ctx)
        if ctx.job.data.labels.field != "speaker":
            raise ConfigError("method 'speaker' needs data.labels.field: speaker")
        self._hooked: torch.nn.Module | None = None
        self._handle: Any = None
        if options.trials_from:  # refuse now what would only fail after the first epoch
            check_trial_sets(options.trials_from)

    @classmethod
    def metric_names(cls, job: JobConfig) -> set[str]:
        if job.data.labels.field != "speaker":
            raise ConfigError(f"method 'speaker' needs data.labels.field: speaker "
                              f"(got {job.data.labels.field!r})")
        trials = (job.method or {}).get("trials_from") or []
        return {"loss", "accuracy", *HEADLINE_METRICS, *(("eer",) if trials else ())}

    # --- AAM: a cosine classifier on the model's own final layer ---------------------------
    def _classifier(self) -> torch.nn.Module:
        model = self.ctx.bare_model
        return model.get_submodule(model.classifier_prefix.rstrip("."))

    def _ensure_hook(self) -> None:
        """(Re)attach the cosine hook to the model's current final layer (aam only)."""
        if self.options.loss != "aam":
            return
        layer = self._classifier()
        if layer is self._hooked:
            return
        if not isinstance(layer, torch.nn.Linear):
            raise ConfigError(f"method.loss: aam needs a Linear final layer, the model has "
                              f"{type(layer).__name__}")
        if self._handle is not None:
            self._handle.remove()
        scale = self.options.scale

        def cosine_output(module: torch.nn.Linear, inputs: tuple[torch.Tensor, ...],
                          output: torch.Tensor) -> torch.Tensor:
            x = inputs[0]
            cos = F.linear(F.normalize(x.float(), dim=-1), F.normalize(module.weight.float(), dim=-1))
            return (scale * cos).to(output.dtype) + 0.0 * output  # bias stays in the graph (DDP)

        self._handle = layer.register_forward_hook(cosine_output)
        self._hooked = layer

    # --- per step ---------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        self._ensure_hook()
        return {}

    def loss(self, outputs: dict[str, torch.Tensor], targets: Targets
             ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = outputs["logits"].float()
        total = logits.sum() * 0.0  # keeps every rank's graph alive for DDP
        has = targets.label != IGNORE
        logs: dict[str, float] = {}
        if has.any():
            logits, label = logits[has], targets.label[has]
            if self.options.loss == "aam":
                self._ensure_hook()
                logits_m = aam_logits(logits / self.options.scale, label, self.options.margin,
                                      self.options.scale)
            else:
                logits_m = logits
            ce = F.cross_entropy(logits_m, label)
            total = total + ce
            logs["ce"] = float(ce.detach())
            logs["accuracy"] = float((logits.argmax(1) == label).float().mean())
        return total, logs

    # --- validation -------------------------------------------------------------------------
    def validate(self, epoch: int) -> dict[str, float]:
        self._ensure_hook()
        out: dict[str, float] = {}
        job = self.ctx.job
        if job.data.valid:
            metrics = self.ctx.evaluate(job.data.valid).metrics
            out.update(metrics)
            if "wa" in metrics:
                out["accuracy"] = metrics["wa"]
        if self.options.trials_from:
            out.update(self.verification())
        return out

    def verification(self) -> dict[str, float]:
        """EER (and its threshold, trial counts) on the unseen-speaker trial set."""
        with unseen_labels_allowed(self.ctx.labels):
            pred = self.ctx.evaluate(self.options.trials_from, embeddings=True)
        if pred.embeddings is None or not len(pred.keys):
            return {}
        # speakers qualified by corpus (ids are unique within a corpus only), rows sorted by key
        # so the trial list does not depend on how the ranks split the evaluation
        order = np.argsort(np.asarray(pred.keys, dtype=object), kind="stable")
        keep = [int(i) for i in order if label_of(pred.meta[i], "speaker") is not None]
        speakers = [str(label_of(pred.meta[i], "speaker")) for i in keep]
        try:
            trials = make_trials(speakers, max_target=self.options.max_target_trials,
                                 max_nontarget=self.options.max_nontarget_trials, seed=self.options.trials_seed)
        except TrialError as err:  # e.g. debug.max_eval_batches left too few utterances
            raise TrialError(f"method.trials_from {self.options.trials_from}: {len(speakers)} utterance(s) "
                             f"evaluated: {err}") from None
        scores = cosine_scores(pred.embeddings[keep], trials)
        rate, threshold = eer(scores, trials.target)
        return {"eer": rate, "eer_threshold": threshold, "trials_target": float(trials.target.sum()),
                "trials_nontarget": float((~trials.target).sum())}


@contextlib.contextmanager
def unseen_labels_allowed(space: LabelSpace) -> Iterator[None]:
    """Evaluate utterances of speakers outside the label space (they get IGNORE) instead of
    stopping at the first unknown speaker; the space is left as it was."""
    before, dropped = space.unmapped, space.dropped.copy()
    space.unmapped = "drop"
    try:
        yield
    finally:
        space.unmapped = before
        space.dropped = dropped


def check_trial_sets(specs: list[str]) -> None:
    """The trial shard sets must hold two speakers or more and a speaker with two utterances
    (from their indexes, before any training)."""
    counts = class_histogram(specs, "speaker")
    if len(counts) < 2 or max(counts.values()) < 2:
        raise ConfigError(f"method.trials_from {specs}: verification trials need 2 speakers or more and "
                          f"one with 2 utterances; these shard sets hold {len(counts)} speaker(s), "
                          f"{sum(counts.values())} utterance(s)")
