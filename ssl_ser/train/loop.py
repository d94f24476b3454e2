"""The one training loop every method shares.

Per epoch: the method's pre-epoch step (e.g. re-clustering), one pass over the training
stream (features computed on the device, the method's loss, clipping, the optimiser step),
the method's validation, then a checkpoint of everything needed to continue exactly here.
It runs inside a Ray Train worker or, for ``--debug``, in one local process: the only
difference is the :class:`~ssl_ser.train.session.Session` it talks to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ssl_ser import segments
from ssl_ser.config import ConfigError, from_dict, to_dict
from ssl_ser.errors import SslSerError
from ssl_ser.files import atomic_write
from ssl_ser.inference import Predictions, Predictor, frontend_section
from ssl_ser.labels import IGNORE, LabelSpace, build_label_space
from ssl_ser.speaker_norm import SpeakerNorm, speaker_keys
from ssl_ser.train import checkpoint as ckpt
from ssl_ser.train.config import JobConfig, component, fingerprint
from ssl_ser.train.data import (attribute_targets, class_histogram, index_histogram, index_of,
                                make_eval_stream, make_train_stream)
from ssl_ser.train.optim import build_optimizer, build_scheduler
from ssl_ser.train.session import Session, staging_dir

#: Config sections whose change makes a checkpoint unusable for resuming.
MODEL_SECTIONS = ("frontend", "model")


@dataclass
class Targets:
    """What a batch asks the model to predict, one row per model input (utterance or segment)."""

    keys: list[str]
    label: torch.Tensor
    """[N] class indices of the main label space; IGNORE where there is none."""
    attributes: torch.Tensor
    """[N, 3] arousal, valence, dominance; NaN where missing or not trained."""
    labelled: torch.Tensor
    """[N] bool."""
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    """[N] indices in the method's extra label spaces (speaker, corpus)."""
    owner: torch.Tensor | None = None
    """[N] utterance row of each segment (segment models), else None."""
    speakers: list[str | None] | None = None
    """``corpus/speaker`` of each row (speaker-wise feature normalisation), None if unknown."""

    def expand(self, owner: torch.Tensor) -> Targets:
        """Per-utterance targets repeated for each of its segments."""
        pick = owner.tolist()
        return Targets(keys=[self.keys[i] for i in pick], label=self.label[owner],
                       attributes=self.attributes[owner], labelled=self.labelled[owner],
                       extra={k: v[owner] for k, v in self.extra.items()}, owner=owner,
                       speakers=None if self.speakers is None else [self.speakers[i] for i in pick])


class Loop:
    def __init__(self, job: JobConfig, session: Session, *, debug: bool = False,
                 force: bool = False, progress: bool | None = None) -> None:
        self.job = job
        self.session = session
        self.debug = debug
        self.force = force
        self.progress = debug if progress is None else progress
        self.device = session.device
        self.run_dir = Path(job.storage_path) / job.name if "://" not in job.storage_path else None
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.eval_unread = 0
        """Samples this epoch's exact passes (embedding, validation) could not read."""
        self._writer: Any = None
        self._setup()

    # --- setup ----------------------------------------------------------------------------
    def _setup(self) -> None:
        from ssl_ser.features import build_frontend
        from ssl_ser.methods import METHODS
        from ssl_ser.models import build_model

        job = self.job
        _seed_everything(job.train.seed)
        self.labels = build_label_space(job.data.labels, class_histogram(job.data.train, job.data.labels.field))
        self._report_dropped_labels()
        method_name, method_options = component(job.method, "method")
        method_cls = METHODS.get(method_name)
        options = from_dict(method_cls.Options, method_options, source="job", prefix="method")
        self.extra_labels: dict[str, LabelSpace] = {}
        for name in method_cls.extra_label_spaces:
            hist = class_histogram(job.data.train, name)
            self.extra_labels[name] = LabelSpace(name, sorted(hist), {}, "drop")
        self.method = method_cls(options, self)

        fe_name, fe_options, use_speaker_norm = frontend_section(job.frontend)
        self.frontend = build_frontend(fe_name, **fe_options).to(self.device)
        model_name, model_options = component(job.model, "model")
        self.model_kwargs = self.method.model_kwargs()
        self.model = build_model(model_name, in_features=self.frontend.num_features,
                                 **{**self.model_kwargs, **model_options})
        if job.train.init_from:
            self._init_from(job.train.init_from)
        self.model = self.session.prepare_model(self.model)
        self.optimizer = build_optimizer(self.model.parameters(), job.optim)
        self.scheduler = build_scheduler(self.optimizer, job.schedule, job.train.epochs)
        self.amp_dtype = _amp_dtype(job.train.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.predictor = Predictor(self.frontend, self.bare_model, self.labels, segment=job.data.segment,
                                   attributes=job.data.attributes, device=self.device,
                                   amp_dtype=self.amp_dtype)
        if use_speaker_norm:
            self.predictor.speaker_norm = self._fit_speaker_norm()
        self.augmenter = None
        if job.augment:
            from ssl_ser.augment import build_augmenter

            self.augmenter = build_augmenter(job.augment, self)
        self.start_epoch = 0
        self._restore()

    @property
    def bare_model(self) -> torch.nn.Module:
        """The model without its DDP wrapper."""
        return getattr(self.model, "module", self.model)

    def _fit_speaker_norm(self) -> SpeakerNorm:
        """Per-speaker feature statistics of every shard set of the job (unsupervised, so
        validation and test speakers get their own, as at test time)."""
        data = self.job.data
        specs = [*data.train, *data.unlabelled, *data.valid, *data.test]
        train_speakers = set()
        for spec in data.train:
            index = index_of(spec)
            corpus = next(iter(index.corpora), "") if len(index.corpora) == 1 else None
            train_speakers |= {f"{corpus}/{s}" for s in index.speakers} if corpus is not None else set()
        norm = SpeakerNorm.fit(self.frontend, make_eval_stream(self, specs, whole=True),
                               self.device, train_speakers or None)
        self.log(f"speaker normalisation: statistics of {len(norm.speakers)} speakers")
        return norm

    def _training_labels(self) -> Iterator[tuple[str | None, str, int]]:
        """``(corpus, label, count)`` of the main label field, from each training shard set's
        index; corpus None when the set mixes corpora (its histogram is not per corpus)."""
        for spec in self.job.data.train:
            index = index_of(spec)
            corpus = next(iter(index.corpora)) if len(index.corpora) == 1 else None
            for value, n in index_histogram(index, self.labels.field).items():
                yield corpus, value, n

    def _report_dropped_labels(self) -> None:
        """Say up front which training labels the label space drops (mapped to null, or
        unmapped with ``unmapped: drop``), with counts from the shard indexes: the rows still
        train as unlabelled audio, but a researcher must see that their labels are gone."""
        if self.labels.field == "speaker":
            return
        dropped: dict[str, Counter[str]] = {"mapped to no class": Counter(),
                                            "not mapped (unmapped: drop)": Counter()}
        for corpus, value, n in self._training_labels():
            if corpus is None:
                continue  # labels of a mixed set cannot be told apart by corpus
            table = self.labels.mapping.get(corpus) or self.labels.mapping.get("*")
            if table is not None and table.quadrant is not None:
                continue  # labels come from arousal/valence, not from the categorical histogram
            found = self.labels.lookup(corpus, value)
            if found == IGNORE:
                dropped["mapped to no class"][f"{corpus}:{value}"] += n
            elif found is None and self.labels.unmapped == "drop":  # else: an error when met
                dropped["not mapped (unmapped: drop)"][f"{corpus}:{value}"] += n
        for what, counts in dropped.items():
            if counts:
                listed = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
                self.log(f"labels: {sum(counts.values())} training label(s) {what}, kept as unlabelled "
                         f"audio: {listed}")

    def class_counts(self) -> torch.Tensor:
        """Training-shard counts of each class of the main label space."""
        counts = torch.zeros(self.labels.num_classes)
        for corpus, value, n in self._training_labels():
            found = (self.labels.index.get(value) if self.labels.field == "speaker"
                     else self.labels.lookup(corpus or "*", value))
            if found is not None and found != IGNORE:
                counts[found] += n
        return counts

    def _init_from(self, source: str) -> None:
        """Transfer: every weight of ``source`` but the final classification layer."""
        path = ckpt.find_checkpoint(source, "best")
        state = ckpt.load_state(path)["model"]
        model = self.model
        prefix = model.classifier_prefix
        own = model.state_dict()
        skipped = [k for k in state if k.startswith(prefix)]
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
        mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                      for k, v in state.items() if k in own and own[k].shape != v.shape]
        if mismatched:
            raise ckpt.CheckpointError(
                f"train.init_from {path}: shapes differ for {len(mismatched)} weight(s) (is it the "
                f"same model and front-end?):\n  " + "\n  ".join(mismatched[:20]))
        result = model.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith(prefix)]
        if missing or result.unexpected_keys:
            raise ckpt.CheckpointError(
                f"train.init_from {path}: missing in checkpoint: {missing[:20]}; "
                f"not in model: {result.unexpected_keys[:20]}")
        self.log(f"init_from {path}: loaded {len(state)} tensors, new final layer "
                 f"({len(skipped)} tensors under {prefix!r} replaced)")

    def _fingerprints(self) -> dict[str, str]:
        return fingerprints_of(self.job)

    def _restore(self) -> None:
        with self.session.checkpoints() as candidates:
            restored = ckpt.load_newest_intact(candidates, map_location=self.device)
        if restored is None:  # a new run, or (under Ray) one killed before any checkpoint registered
            self._reconcile_metrics()
            self.event("started", epoch=0)
            return
        directory, meta, state = restored.directory, restored.meta, restored.state
        for skipped, reason in restored.skipped:
            self.log(f"warning: passing over damaged checkpoint {skipped.name}, resuming from "
                     f"{directory.name} instead ({reason})")
            self.event("checkpoint_skipped", checkpoint=str(skipped), reason=reason,
                       instead=str(directory))
        check_resumable(meta, self._fingerprints(), self.force, directory)
        self.bare_model.load_state_dict(state["model"])
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
        self._reconcile_metrics()
        self.log(f"resumed from {directory} after epoch {self.start_epoch}")
        self.event("resumed", epoch=self.start_epoch, checkpoint=str(directory))

    def _reconcile_metrics(self) -> None:
        """Make ``metrics.jsonl`` the restored checkpoint's history (empty without one), each
        epoch once.

        The checkpoint is the record of which epochs finished: a kill after it and before the
        log line loses that line, and a kill after a log line whose checkpoint never landed
        leaves a row for an epoch that will run again. Rewriting the log from the history
        mends both; epochs the log lacked also get their TensorBoard scalars now."""
        if not self.session.is_main or self.run_dir is None:
            return
        path = self.run_dir / "metrics.jsonl"
        logged = set()
        if not path.is_file() and not self.history:
            return
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    logged.add(int(json.loads(line)["epoch"]))
        atomic_write(path, "".join(json.dumps(row, default=float) + "\n" for row in self.history))
        for row in self.history:
            if row.get("epoch") not in logged:
                self._epoch_scalars(row)

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
        if self._writer is not None:
            self._writer.close()
        return last

    def train_epoch(self, epoch: int) -> dict[str, float]:
        job = self.job
        self.model.train()
        self.frontend.train()
        limit = job.train.max_steps_per_epoch
        if self.debug and job.debug.max_train_batches is not None:
            limit = min(limit or job.debug.max_train_batches, job.debug.max_train_batches)
        stream = make_train_stream(self, epoch)
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
                self._scalars({f"step/{k}": v for k, v in logs.items()}, self.step)
        if bar is not None:
            bar.close()
        if count == 0:
            raise SslSerError(f"the training stream of epoch {epoch + 1} gave no batches "
                              f"(data.train: {job.data.train})")
        out = {k: v / count for k, v in totals.items()}
        out["batches"] = count
        stats = stream.stats
        if stats.shards_failed or stats.samples_failed:  # skipped, not fatal: say so every epoch
            out["shards_failed"], out["samples_failed"] = stats.shards_failed, stats.samples_failed
            self._unread("train", epoch, stats.shards_failed, stats.failed_shards, stats.samples_failed)
        return out

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
        audio, lengths = batch.audio, batch.lengths
        if self.augmenter is not None:
            audio, lengths, targets = self.augmenter(audio, lengths, targets)
        if self.job.data.segment is not None:
            seg = self.job.data.segment
            audio, lengths, owner = segments.split(audio, lengths, seg.seconds, seg.train_hop)
            targets = targets.expand(owner)
        with self.autocast():
            outputs = self.forward(audio, lengths, targets.speakers)
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
        self.step += 1
        value = float(loss.detach())
        if not np.isfinite(value):
            raise SslSerError(f"training loss became {value} at step {self.step} (epoch {self.epoch + 1}); "
                              f"lower optim.lr or enable train.grad_clip")
        return value, logs

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
        stream = make_eval_stream(self, specs)
        parts = self.predictor.predict(stream, embeddings=embeddings, max_batches=max_batches)
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
        stream = make_eval_stream(self, specs)
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
                                 if self.predictor.speaker_norm is not None else {})}

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
        if not self.session.is_main:
            return
        self._epoch_scalars(metrics)
        if self.run_dir is not None:
            with (self.run_dir / "metrics.jsonl").open("a") as out:
                out.write(json.dumps(metrics, default=float) + "\n")
        self.log(format_metrics(metrics, self.job.train.epochs))

    def _epoch_scalars(self, metrics: dict[str, Any]) -> None:
        self._scalars({k.replace("_", "/", 1): v for k, v in metrics.items()
                       if isinstance(v, (int, float)) and k != "epoch"}, metrics["epoch"])

    def _scalars(self, values: dict[str, float], step: int) -> None:
        if self.run_dir is None:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        for k, v in values.items():
            if isinstance(v, (int, float)) and np.isfinite(v):
                self._writer.add_scalar(k, v, step)
        self._writer.flush()

    def _bar(self, total: int | None, desc: str) -> Any:
        if not (self.progress and self.session.is_main):
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def event(self, kind: str, **fields: Any) -> None:
        """An audit line in ``events.jsonl`` (resumes, restarts), written by rank 0."""
        if self.session.is_main and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with (self.run_dir / "events.jsonl").open("a") as out:
                out.write(json.dumps({"event": kind, "time": time.time(), **fields}) + "\n")

    def log(self, message: str) -> None:
        if self.session.is_main:
            print(f"[ssl-ser] {message}", flush=True)


# --- helpers ---------------------------------------------------------------------------------

def fingerprints_of(job: JobConfig) -> dict[str, str]:
    """Hashes of what a checkpoint depends on: the model (front-end + model), the data
    (shard sets, labels, segments) and the method."""
    data = to_dict(job)["data"]
    stable = {k: data[k] for k in ("train", "unlabelled", "labels", "attributes", "segment")}
    return {"model": fingerprint(job, *MODEL_SECTIONS),
            "data": hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16],
            "method": str(job.method.get("name"))}


def check_resumable(meta: dict[str, Any], current: dict[str, str], force: bool, where: Any) -> None:
    saved = meta.get("fingerprints", {})
    changed = [name for name in ("model", "data", "method")
               if name in saved and saved[name] != current.get(name)]
    if changed and not force:
        raise ckpt.CheckpointError(
            f"cannot resume from {where}: the job's {' and '.join(changed)} config changed since "
            f"that checkpoint was written. Use a new run name, or --force to resume anyway.")


def format_metrics(metrics: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {metrics['epoch']}/{epochs}"]
    groups: dict[str, list[str]] = {}
    for key, value in metrics.items():
        if key in ("epoch", "time_s", "lr") or not isinstance(value, (int, float)):
            continue
        group, _, name = key.partition("_")
        if name in ("n", "batches"):
            continue
        groups.setdefault(group, []).append(f"{name} {value:.4g}")
    parts += [f"{g} " + " ".join(v) for g, v in groups.items()]
    parts.append(f"lr {metrics.get('lr', 0):.3g}")
    parts.append(f"{metrics.get('time_s', 0):.1f}s")
    return " | ".join(parts)


def gather_parts(parts: dict[str, list[Any]], distributed: bool) -> dict[str, list[Any]]:
    """Concatenate every rank's evaluation parts (each rank saw a disjoint set of samples)."""
    if not (distributed and dist.is_available() and dist.is_initialized()):
        return parts
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, parts)
    merged: dict[str, list[Any]] = {k: [] for k in parts}
    for rank_parts in everyone:
        for k, v in rank_parts.items():
            merged[k] += v
    return merged


def stream_len(stream: Any) -> int | None:
    try:
        return len(stream)
    except TypeError:
        return None


def _seed_everything(seed: int) -> None:
    import random

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
