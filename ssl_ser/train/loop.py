"""The one training loop every method shares.

Per epoch: the method's pre-epoch step (e.g. re-clustering), one pass over the training
stream (features computed on the device, the method's loss, clipping, the optimiser step),
the method's validation, then a checkpoint of everything needed to continue exactly here.
It runs inside a Ray Train worker or, for ``--debug``, in one local process: the only
difference is the :class:`~ssl_ser.train.session.Session` it talks to.

Why one module of ~570 lines: it holds the loop's state and the members of the
:class:`~ssl_ser.context.TrainingContext` plug-ins see; what it delegates lives beside it
(:mod:`~ssl_ser.train.run_log`, :mod:`~ssl_ser.train.resume`, :mod:`~ssl_ser.train.transfer`,
:mod:`~ssl_ser.train.label_report`, :mod:`~ssl_ser.train.data`, :mod:`~ssl_ser.train.ema`,
:mod:`~ssl_ser.train.feature_cache`).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ssl_ser import SAMPLE_RATE
from ssl_ser import checkpoint as ckpt
from ssl_ser.config import ConfigError, from_dict, to_dict
from ssl_ser.data.histograms import class_histogram, index_of
from ssl_ser.distributed import gather_parts
from ssl_ser.errors import SslSerError
from ssl_ser.inference import FeatureMemo, Predictions, Predictor, frontend_section
from ssl_ser.job import JobConfig, component, run_dir
from ssl_ser.labels import LabelSpace, build_label_space
from ssl_ser.model_card import write_run_card_at_end
from ssl_ser.speaker_norm import CONFOUNDED, SpeakerNorm, speaker_keys
from ssl_ser.targets import Targets, attribute_targets
from ssl_ser.train.data import make_eval_stream, make_train_stream
from ssl_ser.train.ema import WeightAverage
from ssl_ser.train.feature_cache import CachedEpoch, FeatureBatch, FeatureCache
from ssl_ser.train.label_report import class_counts, dropped_labels
from ssl_ser.train.optim import build_optimizer, build_scheduler
from ssl_ser.train.resume import check_resumable, fingerprints_of
from ssl_ser.train.run_log import RunLog
from ssl_ser.train.session import Session, staging_dir
from ssl_ser.train.transfer import init_from


class Loop:
    def __init__(self, job: JobConfig, session: Session, *, debug: bool = False,
                 force: bool = False, progress: bool | None = None) -> None:
        self.job = job
        self.session = session
        self.debug = debug
        self.force = force
        self.progress = debug if progress is None else progress
        self.device = session.device
        self.run_dir = run_dir(job)
        self.epoch = 0
        self.step = 0
        self.start_epoch = 0
        """The first epoch this process trains (> 0 after a resume)."""
        self.history: list[dict[str, Any]] = []
        self.eval_unread = 0
        """Samples this epoch's exact passes (embedding, validation) could not read."""
        self.run_log = RunLog(self.run_dir, is_main=session.is_main, name=job.name,
                              metric=job.train.metric, epochs=job.train.epochs)
        self._setup()

    # --- setup ----------------------------------------------------------------------------
    def _setup(self) -> None:
        # deferred: the registry imports every plug-in module; only when looked up
        from ssl_ser.features import build_frontend
        from ssl_ser.methods import METHODS
        from ssl_ser.models import build_model

        job = self.job
        _seed_everything(job.train.seed)
        self.labels = build_label_space(job.data.labels, class_histogram(job.data.train, job.data.labels.field))
        for line in dropped_labels(job.data.train, self.labels):
            self.log(line)
        method_name, method_options = component(job.method, "method")
        method_cls = METHODS.get(method_name)
        options: Any = from_dict(method_cls.Options, method_options, source="job", prefix="method")
        self.extra_labels: dict[str, LabelSpace] = {}
        for name in method_cls.extra_label_spaces:
            hist = class_histogram(job.data.train, name)
            self.extra_labels[name] = LabelSpace(name, sorted(hist), {}, "drop")
        self.method = method_cls(options, self)

        fe_name, fe_options, speaker_prior = frontend_section(job.frontend)
        self.frontend = build_frontend(fe_name, **fe_options).to(self.device)
        if job.data.segment is not None and self.frontend.describes_utterance:
            raise ConfigError(f"data.segment: front-end {fe_name!r} describes whole utterances, and a test "
                              f"segment would describe only itself; drop data.segment (whole utterances)")
        if (job.data.segment is not None and getattr(self.frontend, "vad", None) is not None
                and not job.data.feature_cache and job.data.crop_seconds is not None):
            raise ConfigError(f"data.segment: front-end {fe_name!r}'s vad picks the voiced frames of whole "
                              f"utterances (as at test), but data.crop_seconds cuts crops before it; set "
                              f"data.feature_cache: true (crops of the cached voiced frames) or "
                              f"data.crop_seconds: null")
        model_name, model_options = component(job.model, "model")
        self.model_kwargs = self.method.model_kwargs()
        self.model: torch.nn.Module = build_model(model_name, in_features=self.frontend.num_features,
                                 **{**self.model_kwargs, **model_options})
        if job.train.init_from:
            self.log(init_from(self.model, job.train.init_from))
        self.model = self.session.prepare_model(self.model)
        self.optimizer = build_optimizer(self.model.parameters(), job.optim)
        self.scheduler = build_scheduler(self.optimizer, job.schedule, job.train.epochs)
        self.amp_dtype = _amp_dtype(job.train.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.predictor = Predictor(self.frontend, self.bare_model, self.labels, segment=job.data.segment,
                                   attributes=job.data.attributes, device=self.device,
                                   amp_dtype=self.amp_dtype)
        if speaker_prior is not None:
            self.predictor.speaker_norm = self._fit_speaker_norm(speaker_prior)
        self.augmenter = None
        if job.augment:
            # deferred: the registry imports every plug-in module; only when looked up
            from ssl_ser.augment import build_augmenter

            self.augmenter = build_augmenter(job.augment, self)
        self.feature_cache = self._build_feature_cache() if job.data.feature_cache else None
        self.valid_features = FeatureMemo()
        self.ema = WeightAverage(self.bare_model, job.train.ema_decay) if job.train.ema_decay else None
        self._raw_weights: dict[str, torch.Tensor] | None = None
        self._restore()

    def _build_feature_cache(self) -> FeatureCache:
        """The training set's features, once (``data.feature_cache``); refuses what it would change."""
        sources = self.method.training_sources()
        problems = []
        if len(sources) != 1:
            problems.append(f"the method {self.job.method.get('name')!r} mixes {len(sources)} training sources")
        if self.augmenter is not None:
            problems.append("augment works on waveforms (use frontend.specaugment or train.mixup)")
        if getattr(self.frontend, "dither", 0.0):
            problems.append("the front-end's dither is random in training")
        if problems:
            raise ConfigError("data.feature_cache: " + "; ".join(problems))
        start = time.perf_counter()
        cache = FeatureCache.build(self.frontend, self.eval_stream(sources[0][0], whole=True), self.device)
        self.log(f"feature cache: {len(cache)} training utterances, {cache.nbytes() / 2**20:.0f} MiB, "
                 f"{time.perf_counter() - start:.1f} s")
        return cache

    # --- the TrainingContext methods and augmenters see (ssl_ser.context) ---------------------
    @property
    def bare_model(self) -> Any:
        """The model without its DDP wrapper."""
        return getattr(self.model, "module", self.model)

    @property
    def rank(self) -> int:
        return self.session.world_rank

    @property
    def world_size(self) -> int:
        return self.session.world_size

    @property
    def distributed(self) -> bool:
        return self.session.distributed

    @property
    def resumed(self) -> bool:
        return self.start_epoch > 0

    def label_space(self, name: str) -> LabelSpace:
        return self.extra_labels[name]

    def set_label_space(self, name: str, space: LabelSpace) -> None:
        if name not in self.extra_labels:
            raise ConfigError(f"label space {name!r} is not one of the method's ({', '.join(self.extra_labels)})")
        self.extra_labels[name] = space

    def eval_stream(self, specs: Sequence[str], *, whole: bool = False) -> Any:
        """Every sample once over the ranks; all of it on this rank with ``whole``."""
        rank, world = (0, 1) if whole else (self.rank, self.world_size)
        return make_eval_stream(self.job, specs, rank=rank, world_size=world, debug=self.debug,
                                device=self.device)

    def gather(self, parts: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return gather_parts(parts, self.session.distributed)

    def reset_optimizer_state(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        for p in parameters:
            self.optimizer.state.pop(p, None)

    def class_counts(self) -> torch.Tensor:
        return class_counts(self.job.data.train, self.labels)

    def log(self, message: str) -> None:
        self.run_log.log(message)

    def event(self, kind: str, **fields: Any) -> None:
        self.run_log.event(kind, **fields)

    def _fit_speaker_norm(self, prior: float) -> SpeakerNorm:
        """Per-speaker feature statistics of every shard set of the job (unsupervised, so
        validation and test speakers get their own, as at test time)."""
        data = self.job.data
        specs = [*data.train, *data.unlabelled, *data.valid, *data.test]
        train_speakers = set()
        for spec in data.train:
            index = index_of(spec)
            corpus = next(iter(index.corpora), "") if len(index.corpora) == 1 else None
            train_speakers |= {f"{corpus}/{s}" for s in index.speakers} if corpus is not None else set()
        norm = SpeakerNorm.fit(self.frontend, self.eval_stream(specs, whole=True),
                               self.device, train_speakers or None)
        if prior:
            norm = norm.shrunk(prior)
        self.log(f"speaker normalisation: statistics of {len(norm.speakers)} speakers"
                 + (f", shrunk towards the training speakers' by {prior:g} utterances" if prior else ""))
        if norm.majority_share is not None and norm.majority_share > CONFOUNDED:
            self.log(f"warning: speaker normalisation: {norm.majority_share:.0%} of the labelled training "
                     f"utterances carry their speaker's most frequent emotion, so a speaker's mean is "
                     f"largely their emotion's and normalising it removes the emotion too; consider "
                     f"frontend.speaker_norm: false")
        return norm

    def _fingerprints(self) -> dict[str, str]:
        return fingerprints_of(self.job)

    def _restore(self) -> None:
        with self.session.checkpoints() as candidates:
            restored = ckpt.load_newest_intact(candidates, map_location=self.device)
        if restored is None:  # a new run, or (under Ray) one killed before any checkpoint registered
            self.run_log.reconcile(self.history)
            self.event("started", epoch=0)
            return
        directory, meta, state = restored.directory, restored.meta, restored.state
        for skipped, reason in restored.skipped:
            self.log(f"warning: passing over damaged checkpoint {skipped.name}, resuming from "
                     f"{directory.name} instead ({reason})")
            self.event("checkpoint_skipped", checkpoint=str(skipped), reason=reason,
                       instead=str(directory))
        check_resumable(meta, self._fingerprints(), self.force, directory)
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.bare_model.load_state_dict(state.get("train_model") or state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.method.load_state_dict(state.get("method", {}))
        if self.augmenter is not None and state.get("augment"):
            self.augmenter.load_state_dict(state["augment"])
        ckpt.set_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.history = list(meta.get("history", []))
        self.run_log.reconcile(self.history)
        self.log(f"resumed from {directory} after epoch {self.start_epoch}")
        self.event("resumed", epoch=self.start_epoch, checkpoint=str(directory))

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        last: dict[str, Any] = {}
        for epoch in range(self.start_epoch, self.job.train.epochs):
            self.epoch = epoch
            start = time.perf_counter()
            metrics: dict[str, Any] = {"epoch": epoch + 1}
            self.eval_unread = 0
            metrics.update({f"pre_{k}": v for k, v in self.method.on_epoch_start(epoch).items()})
            metrics.update({f"train_{k}": v for k, v in self.train_epoch(epoch).items()})
            self.model.eval()
            with self._validated_weights():
                metrics.update({f"valid_{k}": v for k, v in self.method.validate(epoch).items()})
                if self.eval_unread:
                    metrics["eval_samples_unread"] = self.eval_unread
                self.scheduler.step()
                metrics["lr"] = self.optimizer.param_groups[0]["lr"]
                metrics["time_s"] = time.perf_counter() - start
                self.history.append(metrics)
                self._checkpoint(metrics)
            self._log_epoch(metrics)
            last = metrics
        self.run_log.close()
        if self.session.is_main:  # MODEL.md next to the best checkpoint

            write_run_card_at_end(self.run_dir, self.log)
        return last

    @contextlib.contextmanager
    def _validated_weights(self) -> Iterator[None]:
        """The weights validation and the checkpoint's ``model`` hold: the averaged ones with
        ``train.ema_decay`` (the raw ones are kept as ``train_model`` for resuming)."""
        if self.ema is None:
            yield
            return
        with self.ema.applied(self.bare_model) as raw:
            self._raw_weights = raw
            try:
                yield
            finally:
                self._raw_weights = None

    def train_epoch(self, epoch: int) -> dict[str, float]:
        job = self.job
        self.model.train()
        self.frontend.train()
        limit = job.train.max_steps_per_epoch
        if self.debug and job.debug.max_train_batches is not None:
            limit = min(limit or job.debug.max_train_batches, job.debug.max_train_batches)
        stream = self._train_batches(epoch)
        frozen = epoch < job.train.freeze_body_epochs
        if frozen:  # a fixed body keeps its normalisation statistics too, not just its weights
            prefix = self.bare_model.classifier_prefix
            for name, module in self.bare_model.named_modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not name.startswith(prefix):
                    module.eval()
        totals: dict[str, float] = {}
        count = 0
        bar = self._bar(limit or stream_len(stream), f"epoch {epoch + 1}/{job.train.epochs}")
        for batch in stream:
            if limit is not None and count >= limit:
                break
            loss, logs = self.train_step(batch, frozen=frozen)
            count += 1
            logs["loss"] = loss
            for k, v in logs.items():
                totals[k] = totals.get(k, 0.0) + v
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
            if self.session.is_main and job.train.log_every and self.step % job.train.log_every == 0:
                self.run_log.scalars({f"step/{k}": v for k, v in logs.items()}, self.step)
        if bar is not None:
            bar.close()
        if count == 0:
            raise SslSerError(f"the training stream of epoch {epoch + 1} gave no batches "
                              f"(data.train: {job.data.train})")
        out = {k: v / count for k, v in totals.items()}
        out["batches"] = count
        if isinstance(stream, CachedEpoch):
            return out
        stats = stream.stats
        if stats.shards_failed or stats.samples_failed:  # skipped, not fatal: say so every epoch
            out["shards_failed"], out["samples_failed"] = stats.shards_failed, stats.samples_failed
            self._unread("train", epoch, stats.shards_failed, stats.failed_shards, stats.samples_failed)
        return out

    def _train_batches(self, epoch: int) -> Any:
        """This rank's training batches of ``epoch``: cached features or the waveform stream."""
        job = self.job
        if self.feature_cache is not None:
            crop = job.data.crop_seconds
            return self.feature_cache.epoch(
                epoch, seed=job.train.seed, batch_size=job.data.batch_size, rank=self.rank,
                world_size=self.world_size, samples=job.data.samples_per_epoch,
                crop_frames=None if crop is None else self.frontend.frames(int(round(crop * SAMPLE_RATE))))
        return make_train_stream(job, self.method.training_sources(), epoch, rank=self.rank,
                                 world_size=self.world_size, debug=self.debug, device=self.device)

    def _unread(self, stage: str, epoch: int, shards: int, names: list[str], samples: int,
                **counts: Any) -> None:
        """Data a pass could not read: skipped, not fatal, so said every time, in the log and
        in events.jsonl (the epoch's metrics carry the counts)."""
        listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        self.log(f"warning: epoch {epoch + 1} {stage}: skipped {shards} missing or broken shard(s)"
                 f"{' (' + listed + ')' if listed else ''} and {samples} undecodable sample(s)"
                 + "".join(f", {k} {v}" for k, v in counts.items()))
        self.event("data_unread", stage=stage, epoch=epoch + 1, shards_failed=shards,
                   failed_shards=names, samples_failed=samples, **counts)

    def train_step(self, batch: Any, frozen: bool = False) -> tuple[float, dict[str, float]]:
        batch = batch.to(self.device)
        targets = self.targets(batch)
        with self.autocast():
            feats, frames, targets = self.train_features(batch, targets)
            if self.job.train.mixup > 0:
                outputs, loss, logs = self._mixup_loss(feats, frames, targets)
            else:
                outputs = self.model(feats, frames)
                loss, logs = self.method.loss(outputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if frozen:  # transfer phase 1: only the new final layer learns
            prefix = self.bare_model.classifier_prefix
            for name, p in self.bare_model.named_parameters():
                if not name.startswith(prefix):
                    p.grad = None
        if self.job.train.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.job.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.bare_model)
        self.step += 1
        value = float(loss.detach())
        if not np.isfinite(value):
            raise SslSerError(f"training loss became {value} at step {self.step} (epoch {self.epoch + 1}); "
                              f"lower optim.lr or enable train.grad_clip")
        return value, logs

    def train_features(self, batch: Any, targets: Targets) -> tuple[torch.Tensor, torch.Tensor, Targets]:
        """A training batch's model input: waveform augmentation, segments, front-end, speaker
        normalisation and SpecAugment, or for cached features the per-batch part of that."""
        seg = self.job.data.segment
        if isinstance(batch, FeatureBatch):
            feats, frames = batch.feats, batch.frames
            if seg is not None:
                feats, frames, owner = self.predictor.frame_windows(feats, frames, seg.train_hop)
                targets = targets.expand(owner)
            if self.predictor.speaker_norm is not None:
                feats = self.predictor.speaker_norm(feats, frames, targets.speakers)
            return self.frontend.augment(feats, frames), frames, targets
        audio, lengths = batch.audio, batch.lengths
        if self.augmenter is not None:
            audio, lengths, targets = self.augmenter(audio, lengths, targets)
        feats, frames, rows = self.predictor.segment_features(audio, lengths, targets.speakers, training=True)
        if rows is not None:
            targets = targets.expand(rows)
        return feats, frames, targets

    def _mixup_loss(self, feats: torch.Tensor, frames: torch.Tensor,
                    targets: Targets) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, float]]:
        """Mixup: the batch mixed with a shuffled copy; the loss mixes both targets' losses."""
        alpha = self.job.train.mixup
        weight = float(np.random.beta(alpha, alpha))
        perm = torch.randperm(feats.shape[0], device=feats.device)
        mixed = weight * feats + (1 - weight) * feats[perm]
        outputs = self.model(mixed, torch.maximum(frames, frames[perm]))
        loss_a, logs_a = self.method.loss(outputs, targets)
        loss_b, logs_b = self.method.loss(outputs, permute_targets(targets, perm))
        logs = {k: weight * v + (1 - weight) * logs_b.get(k, v) for k, v in logs_a.items()}
        return outputs, weight * loss_a + (1 - weight) * loss_b, logs

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor,
                speakers: list[str | None] | None = None) -> dict[str, torch.Tensor]:
        """Front-end (+ speaker normalisation) and the (DDP-wrapped) model, for training."""
        feats, frames = self.predictor.features(audio, lengths, speakers)
        return self.model(feats, frames)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return self.predictor.autocast()

    def targets(self, batch: Any) -> Targets:
        rows = batch.meta
        label = torch.tensor(self.labels.encode_all(rows), dtype=torch.long, device=self.device)
        extra = {name: torch.tensor(space.encode_all(rows), dtype=torch.long, device=self.device)
                 for name, space in self.extra_labels.items()}
        return Targets(keys=list(batch.keys), label=label,
                       attributes=attribute_targets(rows, self.job.data.attributes).to(self.device),
                       labelled=torch.as_tensor(batch.labelled, device=self.device), extra=extra,
                       speakers=speaker_keys(rows))

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate(self, specs: list[str], *, embeddings: bool = False,
                 max_batches: int | None = None) -> Predictions:
        """Per-utterance predictions over shard sets (each sample exactly once over all ranks),
        gathered on every rank, with their metrics."""
        if max_batches is None and self.debug:
            max_batches = self.job.debug.max_eval_batches
        stream = self.eval_stream(specs)
        # with data.feature_cache the validation sets' features are kept too: they are read every epoch
        memo = self.valid_features if self.feature_cache is not None and list(specs) == self.job.data.valid else None
        parts = self.predictor.predict(stream, embeddings=embeddings, max_batches=max_batches, memo=memo)
        self._report_shortfall(stream, "evaluate", max_batches)
        return self.predictor.score(gather_parts(parts, self.session.distributed))

    def _report_shortfall(self, stream: Any, stage: str, max_batches: int | None) -> None:
        short = stream.shortfall() if max_batches is None else None  # a capped pass is short anyway
        if short is not None:
            self.eval_unread += short.missing or 0
            self._unread(stage, self.epoch, short.shards_failed, short.failed_shards,
                         short.samples_failed, expected=short.expected, read=short.read)

    @torch.no_grad()
    def embed(self, specs: list[str], *, gather: bool = True,
              max_batches: int | None = None) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        """Sample keys, embeddings [N, D] and manifest rows of shard sets: this rank's share,
        or (``gather``) everyone's, in the same order on every rank."""
        if max_batches is None and self.debug:
            max_batches = self.job.debug.max_eval_batches
        stream = self.eval_stream(specs)
        parts = self.predictor.predict(stream, embeddings=True, max_batches=max_batches)
        self._report_shortfall(stream, "embed", max_batches)
        parts = {k: parts[k] for k in ("keys", "emb", "meta")}
        if gather:
            parts = gather_parts(parts, self.session.distributed)
        emb = np.concatenate(parts["emb"]) if parts["emb"] else np.zeros((0, self.bare_model.embedding_dim), np.float32)
        return list(parts["keys"]), emb, list(parts["meta"])

    def refresh_parameters(self) -> None:
        """Call after a method replaced parameters of the model (e.g. a head with a new size):
        re-wraps the model for DDP and rebuilds the optimiser and schedule, keeping the state
        of every parameter that is still there (matched by name)."""
        old_names = {id(p): n for n, p in self.bare_model.named_parameters()}
        saved = {}
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if id(p) in old_names and p in self.optimizer.state:
                    saved[old_names[id(p)]] = self.optimizer.state[p]
        bare = self.bare_model
        self.model = self.session.prepare_model(bare)
        last_epoch = self.scheduler.last_epoch
        self.optimizer = build_optimizer(self.model.parameters(), self.job.optim)
        for name, p in self.bare_model.named_parameters():
            if name in saved and all(
                    not torch.is_tensor(v) or v.dim() == 0 or v.shape == p.shape for v in saved[name].values()):
                self.optimizer.state[p] = saved[name]
        self.scheduler = build_scheduler(self.optimizer, self.job.schedule, self.job.train.epochs)
        for _ in range(last_epoch):
            self.scheduler.step()
        self.predictor.model = self.bare_model

    # --- checkpoints and logs ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.bare_model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "epoch": self.epoch + 1, "step": self.step, "rng": ckpt.rng_state(),
                "stream": {"seed": self.job.train.seed, "next_epoch": self.epoch + 1},
                "method": self.method.state_dict(),
                "augment": self.augmenter.state_dict() if self.augmenter is not None else {},
                "speaker_norm": (self.predictor.speaker_norm.state_dict()
                                 if self.predictor.speaker_norm is not None else {}),
                # with train.ema_decay, "model" holds the averaged weights (what was validated)
                "train_model": self._raw_weights or {},
                "ema": self.ema.state_dict() if self.ema is not None else {}}

    def _checkpoint(self, metrics: dict[str, Any]) -> None:
        if not self.session.is_main:
            self.session.report(metrics, None)
            return
        score_key = f"valid_{self.job.train.metric}"
        meta = {"epoch": self.epoch + 1, "step": self.step, "metrics": metrics,
                "score": metrics.get(score_key), "score_attribute": score_key,
                "score_mode": self.job.train.metric_mode, "fingerprints": self._fingerprints(),
                "labels": self.labels.to_json(), "model_kwargs": self.model_kwargs,
                "extra_labels": {k: v.to_json() for k, v in self.extra_labels.items()},
                "job": to_dict(self.job), "history": self.history}
        with staging_dir() as directory:
            ckpt.save(directory, self.state_dict(), meta)
            self.session.report(metrics, directory)

    def _log_epoch(self, metrics: dict[str, Any]) -> None:
        """After the epoch's checkpoint: its row, scalars, curves and console line."""
        self.run_log.epoch(metrics, self.history)

    def _bar(self, total: int | None, desc: str) -> Any:
        if not (self.progress and self.session.is_main):
            return None
        # deferred: only for progress bars
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

# --- helpers ---------------------------------------------------------------------------------

def stream_len(stream: Any) -> int | None:
    try:
        return len(stream)
    except TypeError:
        return None


def permute_targets(targets: Targets, perm: torch.Tensor) -> Targets:
    """``targets`` reordered by ``perm`` (rows of the same batch: segment owners follow their rows)."""
    out = targets.expand(perm)
    out.owner = None if targets.owner is None else targets.owner[perm]
    return out


def _seed_everything(seed: int) -> None:

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.precision: fp16 needs a GPU; use bf16 or fp32 on the CPU")
        return torch.float16
    raise ConfigError(f"train.precision: unknown {precision!r}")
