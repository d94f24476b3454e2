"""Domain-adversarial autoencoder (Gao et al., ICASSP 2021): methods ``daae_pretrain`` and
``daae_finetune`` for the ``daae`` model (``ssl_ser/models/daae.py``).

Stage one, ``daae_pretrain``, trains the convolutional autoencoder on several corpora at once
(every shard set of ``data.train``; corpora without emotion labels still count for the
reconstruction and domain terms) with

    L = w_rec * L_AE + alpha * L_D,   L_D = w_e * L_e - lambda * (beta * L_s + (1 - beta) * L_c)

L_AE is the mean squared error of the reconstructed spectrogram segment (valid frames only),
L_e, L_s and L_c the cross-entropies of the emotion, speaker and corpus heads on the
time-averaged latent code. The minus sign is the model's gradient-reversal layer: the loss
written to the graph is ``w_e L_e + beta L_s + (1 - beta) L_c`` (the domain heads learn to
classify), and the reversal multiplies the gradient that reaches the encoder from the domain
heads by ``-lambda`` (the encoder learns to defeat them). ``lambda_schedule: dann`` ramps
lambda as ``grl_lambda * (2 / (1 + exp(-10 p)) - 1)`` over training progress ``p`` in [0, 1]
(Ganin et al. 2016). ``adversarial: false`` is the ablation "the same network without the
adversarial heads": lambda is 0, so no domain gradient reaches the encoder; the heads are still
trained, as probes that measure how much speaker and corpus information the latent keeps.
``balance_corpora`` gives every shard set of ``data.train`` an equal share of the batches. The
model's forward also runs the deep CNN branch and the BLSTM, which stage one does not train.

Stage one's validation: on ``data.valid``, the latent emotion head's UA/WA/F1/loss (utterance
posteriors = mean over segments) and the reconstruction error (``recon``); on the training
speakers (``domain_sets``, default ``data.train``, ``domain_max_batches`` per set), the speaker
and corpus heads' accuracy per segment next to ``*_chance`` (the majority class' share), and
the accuracy of fresh linear probes fitted on the utterances' mean latent codes
(``probe_*_acc``): the adversary can fool its own heads while the information stays
decodable, which only a fresh probe shows.

Stage two, ``daae_finetune``, starts from the pretrained run (``train.init_from``) and, as in
the paper, fixes the domain-adversarial network: the latent emotion head and the speaker and
corpus heads (``method.frozen``; their pretrained values are restored, including the latent
emotion layer that ``init_from`` skips as a classifier layer, and their ``requires_grad`` is
turned off, so they keep exactly those values). The autoencoder is fine-tuned on the target
corpus by reconstruction while the deep CNN branch, the attention fusion (Q = R_d, K = R_l,
V = R_c) and the BLSTM classifier learn the emotions; the emotion loss reaches the encoder too
(R_l feeds the fusion), since the model offers no way to stop it there. Utterance decisions
are the mean of segment posteriors (the loop's predictor, ``data.segment``).

Speaker ids are unique only within a corpus, so both methods replace the loop's ``speaker``
label space by one whose classes are ``corpus/speaker`` (built from the training shards'
``corpus_speaker`` histograms); it is saved with the run like every extra label space.

The reconstruction target is the model's input. The loop hands a method only the model's
outputs, so a forward pre-hook on the model keeps the features of its last call.

Why one module of ~420 lines: two methods that share one autoencoding base, its losses and
its input tap; the evaluation pass and the probes live in :mod:`ssl_ser.probes`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ssl_ser import checkpoint as ckpt
from ssl_ser.config import ConfigError, config
from ssl_ser.data.histograms import class_histogram, index_of
from ssl_ser.errors import SslSerError
from ssl_ser.inference import score
from ssl_ser.labels import IGNORE, CorpusMapping, LabelSpace
from ssl_ser.methods.base import METHODS, Method
from ssl_ser.methods.classification import ClassificationLoss, ClassificationLossOptions
from ssl_ser.metrics import HEADLINE_METRICS, masked_squared_error
from ssl_ser.probes import head_accuracy, latent_pass, probe_accuracy

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext
    from ssl_ser.job import JobConfig
    from ssl_ser.targets import Targets

#: The domain-adversarial network of the ``daae`` model: heads on the latent code.
DOMAIN_ADVERSARIAL_NETWORK = ("latent_emotion.", "classifier.latent.", "speaker.", "corpus.")

#: What ``daae_pretrain`` validation reports (besides the latent emotion head's UA/WA/F1/loss).
DOMAIN_METRICS = ("recon", "speaker_acc", "speaker_chance", "corpus_acc", "corpus_chance",
                  "probe_speaker_acc", "probe_corpus_acc")


# --- labels ----------------------------------------------------------------------------------

def corpus_speaker_space(specs: Sequence[str]) -> LabelSpace:
    """The speakers of shard sets as classes ``corpus/speaker``: a per-corpus table maps each
    row's own speaker id to its qualified class, so ``03`` of two corpora are two speakers.
    Speakers not in the shards (validation, test) encode to IGNORE."""
    classes = set(class_histogram(specs, "speaker"))
    tables: dict[str, dict[str, str | None]] = {}
    for name in sorted(classes):
        corpus, _, speaker = name.partition("/")
        tables.setdefault(corpus, {})[speaker] = name
    return LabelSpace("speaker", sorted(classes),
                      {corpus: CorpusMapping(labels=table) for corpus, table in tables.items()}, "drop")


# --- losses ----------------------------------------------------------------------------------

def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid frames of ``[B, F, T]`` maps."""
    total, count = masked_squared_error(recon, target, lengths)
    return total / count


def head_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, float | None]:
    """Cross-entropy and accuracy over the rows with a target; with none, a zero that keeps
    the head in the graph (DDP) and no accuracy."""
    has = target != IGNORE
    if not bool(has.any()):
        return logits.float().sum() * 0.0, None
    picked = logits[has].float()
    return F.cross_entropy(picked, target[has]), float((picked.argmax(1) == target[has]).float().mean())


def dann_lambda(scale: float, progress: float, gamma: float = 10.0) -> float:
    """Ganin et al.'s ramp ``scale * (2 / (1 + exp(-gamma p)) - 1)``, ``p`` clipped to [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return scale * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class InputTap:
    """Keeps the input features of a model's latest forward call (the autoencoder's target)."""

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None
        self._handle: Any = None
        self.features: torch.Tensor | None = None
        self.lengths: torch.Tensor | None = None

    def attach(self, model: torch.nn.Module) -> None:
        if model is self.model:
            return
        if self._handle is not None:
            self._handle.remove()
        self._handle = model.register_forward_pre_hook(self._keep)
        self.model = model

    def _keep(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        self.features, self.lengths = args[0], torch.as_tensor(args[1])

    def take(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.features is None or self.lengths is None:
            raise SslSerError("the DAAE methods need the model's input as the reconstruction target, "
                              "but no forward call was seen (the input hook is attached in "
                              "on_epoch_start)")
        out = self.features, self.lengths
        self.features = self.lengths = None
        return out


# --- shared by both stages -------------------------------------------------------------------

class _Autoencoding(Method):
    """What both stages share: corpus-qualified speakers, the input tap, the reconstruction."""

    extra_label_spaces = ("speaker", "corpus")

    def __init__(self, options: Any, ctx: TrainingContext) -> None:
        super().__init__(options, ctx)
        # The loop's speaker labels are already corpus-qualified ("corpus/speaker"); this space
        # fixes their integer ids from the training indexes (saved in checkpoints with the run).
        ctx.set_label_space("speaker", corpus_speaker_space(ctx.job.data.train))
        self.tap = InputTap()

    def reconstruction(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """L_AE of the latest forward call."""
        features, lengths = self.tap.take()
        return reconstruction_loss(outputs["recon"], features, lengths)

    def _attach(self) -> None:
        self.tap.attach(self.ctx.bare_model)

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        self._attach()
        return {}


# --- stage one: pretraining --------------------------------------------------------------

@config
class PretrainOptions:
    alpha: Annotated[float, Field(ge=0.0)] = 1.0
    """Weight of the domain-adversarial term L_D next to the reconstruction."""
    beta: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Share of the speaker term in the domain loss; the corpus term gets 1 - beta."""
    grl_lambda: Annotated[float, Field(ge=0.0)] = 1.0
    """lambda: the gradient-reversal scale (the ramp's end value with lambda_schedule: dann)."""
    lambda_schedule: Literal["constant", "dann"] = "constant"
    """constant: lambda throughout; dann: lambda * (2 / (1 + exp(-gamma p)) - 1), p the progress."""
    dann_gamma: Annotated[float, Field(gt=0.0)] = 10.0
    adversarial: bool = True
    """false: the ablation without adversarial heads (lambda 0; the heads only probe the latent)."""
    emotion_weight: Annotated[float, Field(ge=0.0)] = 1.0
    """w_e: weight of the latent emotion head's cross-entropy inside L_D."""
    reconstruction_weight: Annotated[float, Field(ge=0.0)] = 1.0
    balance_corpora: bool = True
    """Draw every shard set of data.train equally often (a small emotion corpus next to a big
    one still counts); false: in proportion to their sizes."""
    domain_sets: list[str] = dataclasses.field(default_factory=list)
    """Shard sets of the training speakers on which validation scores the domain heads and
    fits the linear probes (default: data.train)."""
    domain_max_batches: Annotated[int, Field(ge=1)] | None = 4
    """Evaluation batches (per worker) of each domain set per validation; null: all."""
    probe: bool = True
    """Also fit fresh linear probes (speaker, corpus) on the validation pass' latent codes."""


@METHODS.register("daae_pretrain")
class DAAEPretrain(_Autoencoding):
    Options = PretrainOptions

    def __init__(self, options: PretrainOptions, ctx: TrainingContext) -> None:
        super().__init__(options, ctx)
        self._steps_per_epoch: int | None = None
        self.lambda_now = 0.0

    def model_kwargs(self) -> dict[str, Any]:
        return {"num_classes": self.ctx.labels.num_classes,
                "num_speakers": max(1, self.ctx.label_space("speaker").num_classes),
                "num_corpora": max(1, self.ctx.label_space("corpus").num_classes)}

    @classmethod
    def metric_names(cls, job: JobConfig) -> set[str]:
        return {"loss", *HEADLINE_METRICS, *DOMAIN_METRICS}

    def training_sources(self) -> list[tuple[list[str], float]]:
        specs = self.ctx.job.data.train
        if self.options.balance_corpora and len(specs) > 1:
            return [([spec], 1.0) for spec in specs]
        return [(specs, 1.0)]

    # --- lambda ---------------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        """Optimiser steps of one epoch, as the training stream will give them."""
        if self._steps_per_epoch is None:
            job = self.ctx.job
            samples = job.data.samples_per_epoch or sum(
                index_of(spec).samples for specs, _ in self.training_sources() for spec in specs)
            steps = math.ceil(samples / (job.data.batch_size * self.ctx.world_size))
            caps = [job.train.max_steps_per_epoch, job.debug.max_train_batches if self.ctx.debug else None]
            self._steps_per_epoch = max(1, min([steps, *(c for c in caps if c)]))
        return self._steps_per_epoch

    def lambda_at(self, step: int) -> float:
        """The gradient-reversal scale of optimiser step ``step`` (0-based)."""
        o = self.options
        if not o.adversarial:
            return 0.0
        if o.lambda_schedule == "constant":
            return o.grl_lambda
        total = self.ctx.job.train.epochs * self.steps_per_epoch()
        return dann_lambda(o.grl_lambda, step / total, o.dann_gamma)

    def _set_lambda(self, step: int) -> None:
        self.lambda_now = self.lambda_at(step)
        self.ctx.bare_model.set_grl_lambda(self.lambda_now)

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        self._attach()
        self._set_lambda(self.ctx.step)
        return {"grl_lambda": self.lambda_now}

    # --- the loss -------------------------------------------------------------------------
    def loss(self, outputs: dict[str, torch.Tensor], targets: Targets) -> tuple[torch.Tensor, dict[str, float]]:
        o = self.options
        recon = self.reconstruction(outputs)
        emotion, emotion_acc = head_loss(outputs["latent_emotion_logits"], targets.label)
        speaker, speaker_acc = head_loss(outputs["speaker_logits"], targets.extra["speaker"])
        corpus, corpus_acc = head_loss(outputs["corpus_logits"], targets.extra["corpus"])
        # The minus sign of L_D is in the graph: the gradient reversal scales what reaches the
        # encoder from the speaker and corpus heads by -lambda.
        domain = o.emotion_weight * emotion + o.beta * speaker + (1.0 - o.beta) * corpus
        total = o.reconstruction_weight * recon + o.alpha * domain
        logs = {"recon": float(recon.detach()), "grl_lambda": self.lambda_now}
        for name, value, acc in (("emotion", emotion, emotion_acc), ("speaker", speaker, speaker_acc),
                                 ("corpus", corpus, corpus_acc)):
            if acc is not None:  # the batch had rows with this target
                logs[f"{name}_ce"], logs[f"{name}_acc"] = float(value.detach()), acc
        self._set_lambda(self.ctx.step + 1)  # for the next forward (the layer reads it there)
        return total, logs

    # --- validation -----------------------------------------------------------------------
    def validate(self, epoch: int) -> dict[str, float]:
        ctx = self.ctx
        out: dict[str, float] = {}
        if ctx.job.data.valid:
            max_batches = ctx.job.debug.max_eval_batches if ctx.debug else None
            valid = ctx.gather(latent_pass(ctx.predictor, ctx.eval_stream(ctx.job.data.valid),
                                           max_batches=max_batches))
            pred = score(valid, ctx.labels, [])
            out.update({k: v for k, v in pred.metrics.items() if k != "n"})
            out["recon"] = _recon(valid["recon"])
        parts: dict[str, list[Any]] = {}
        for spec in self.options.domain_sets or ctx.job.data.train:  # each set capped on its own
            part = ctx.gather(latent_pass(ctx.predictor, ctx.eval_stream([spec]),
                                          max_batches=self.options.domain_max_batches,
                                          speakers=ctx.label_space("speaker"), corpora=ctx.label_space("corpus")))
            for key, values in part.items():
                parts.setdefault(key, []).extend(values)
        keys = list(parts["keys"])
        emb = np.concatenate(parts["emb"]) if parts["emb"] else np.zeros((0, 1), np.float32)
        for name in ("speaker", "corpus"):
            if not parts[name]:
                continue
            acc = head_accuracy(np.concatenate(parts[name]), np.concatenate(parts[f"{name}_pred"]))
            if acc is not None:
                out[f"{name}_acc"], out[f"{name}_chance"] = acc
            if self.options.probe:
                probe = probe_accuracy(emb, np.concatenate(parts[f"utt_{name}"]), keys)
                if probe is not None:
                    out[f"probe_{name}_acc"] = probe
        return out


def _recon(pairs: list[tuple[float, int]]) -> float:
    total, count = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    return total / count if count else math.nan


# --- stage two: fine-tuning --------------------------------------------------------------

@config
class FinetuneOptions(ClassificationLossOptions):
    reconstruction_weight: Annotated[float, Field(ge=0.0)] = 1.0
    """Weight of the autoencoder's reconstruction loss (fine-tuning it on the target corpus)."""
    classification_weight: Annotated[float, Field(ge=0.0)] = 1.0
    """Weight of the BLSTM classifier's emotion cross-entropy."""
    frozen: list[str] = dataclasses.field(default_factory=lambda: list(DOMAIN_ADVERSARIAL_NETWORK))
    """Parameter name prefixes kept fixed: the domain-adversarial network (latent emotion head,
    speaker head, corpus head)."""


@METHODS.register("daae_finetune")
class DAAEFinetune(_Autoencoding):
    Options = FinetuneOptions

    def __init__(self, options: FinetuneOptions, ctx: TrainingContext) -> None:
        super().__init__(options, ctx)
        self.cross_entropy = ClassificationLoss(options, ctx)
        self.pretrained: str | None = None
        self._pretrained_kwargs: dict[str, Any] = {}
        if ctx.job.train.init_from:

            self.pretrained = str(ckpt.find_checkpoint(ctx.job.train.init_from, "best"))
            self._pretrained_kwargs = ckpt.load_meta(self.pretrained).get("model_kwargs", {})
        else:
            ctx.log("daae_finetune without train.init_from: no pretraining (the baseline); "
                     "the domain-adversarial heads stay at their random initial values")

    def model_kwargs(self) -> dict[str, Any]:
        """The emotion classes of this job; the domain heads' sizes of the pretrained model
        (so its weights load), or of this job's data without pretraining."""
        sizes = {name: max(1, self.ctx.label_space(name).num_classes) for name in ("speaker", "corpus")}
        return {"num_classes": self.ctx.labels.num_classes,
                "num_speakers": self._pretrained_kwargs.get("num_speakers", sizes["speaker"]),
                "num_corpora": self._pretrained_kwargs.get("num_corpora", sizes["corpus"])}

    def frozen_names(self) -> list[str]:
        model = self.ctx.bare_model
        names = [n for n, _ in model.named_parameters()]
        for prefix in self.options.frozen:
            if not any(n.startswith(prefix) for n in names):
                tops = sorted({n.split(".")[0] + "." for n in names})
                raise ConfigError(f"method.frozen: {prefix!r} matches no parameter of the model "
                                  f"(its parameters start with {', '.join(tops)})")
        return [n for n in names if n.startswith(tuple(self.options.frozen))]

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        self._attach()
        ctx = self.ctx
        frozen = self.frozen_names()
        restored = 0
        if self.pretrained is not None and epoch == 0 and not ctx.resumed:
            restored = self._restore_frozen(frozen)
        params = dict(ctx.bare_model.named_parameters())
        if any(params[n].requires_grad for n in frozen):
            for name in frozen:
                params[name].requires_grad_(False)
            ctx.refresh_parameters()  # DDP and the optimiser see only what still learns
            ctx.log(f"daae_finetune: {len(frozen)} tensors of {', '.join(self.options.frozen)} fixed"
                     + (f" ({restored} restored from {self.pretrained})" if restored else ""))
        return {"frozen_tensors": float(len(frozen))}

    def _restore_frozen(self, frozen: list[str]) -> int:
        """The pretrained values of the fixed parameters (``init_from`` leaves out the latent
        emotion layer, a classifier layer); a shape that differs (another class count) is kept
        fresh, with a note."""

        state = ckpt.load_state(self.pretrained, map_location="cpu")["model"]  # type: ignore[arg-type]
        params = dict(self.ctx.bare_model.named_parameters())
        restored, skipped = 0, []
        with torch.no_grad():
            for name in frozen:
                if name in state and state[name].shape == params[name].shape:
                    params[name].copy_(state[name])
                    restored += 1
                else:
                    skipped.append(name)
        if skipped:
            self.ctx.log(f"daae_finetune: not in {self.pretrained} with the same shape, left as "
                          f"initialised: {', '.join(skipped)}")
        return restored

    def loss(self, outputs: dict[str, torch.Tensor], targets: Targets) -> tuple[torch.Tensor, dict[str, float]]:
        o = self.options
        recon = self.reconstruction(outputs)
        total = o.reconstruction_weight * recon
        logs = {"recon": float(recon.detach())}
        has = targets.label != IGNORE
        logits = outputs["logits"].float()
        if bool(has.any()):
            ce = self.cross_entropy(logits[has], targets.label[has])
            total = total + o.classification_weight * ce
            logs["ce"] = float(ce.detach())
            logs["acc"] = float((logits[has].argmax(1) == targets.label[has]).float().mean())
        else:
            total = total + logits.sum() * 0.0  # keeps the classifier in every rank's graph (DDP)
        return total, logs
