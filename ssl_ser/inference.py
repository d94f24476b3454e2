"""Scoring audio with a trained model: the part of training that outlives training.

A :class:`Predictor` is a front-end, optional speaker-wise feature normalisation, a model, its
label space and its segment setting; it turns waveform batches into per-utterance class
posteriors (segment models: the mean over their segments), attributes and embeddings. The
training loop validates through it, and ``evaluate``, ``predict``, ``cv`` and ``export`` rebuild
it from a checkpoint with :meth:`Predictor.from_checkpoint`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ssl_ser import SAMPLE_RATE, segments
from ssl_ser import checkpoint as ckpt
from ssl_ser.config import ConfigError, from_dict
from ssl_ser.data.manifest import ATTRIBUTES
from ssl_ser.job import JobConfig, component
from ssl_ser.labels import IGNORE, LabelSpace
from ssl_ser.metrics import HEADLINE_METRICS, ccc, classification_report
from ssl_ser.speaker_norm import SpeakerNorm, speaker_keys


@dataclass
class Predictions:
    """Per-utterance outputs of an evaluation pass."""

    keys: list[str]
    probs: np.ndarray
    """[N, C] class posteriors (segment models: the mean over segments)."""
    labels: np.ndarray
    """[N] gold indices, IGNORE where none."""
    attributes: np.ndarray | None
    """[N, 3] predicted arousal, valence, dominance, when the model has an attribute head."""
    gold_attributes: np.ndarray
    embeddings: np.ndarray | None = None
    meta: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


def frontend_section(section: dict[str, Any]) -> tuple[str, dict[str, Any], float | None]:
    """Split a ``frontend`` config section into name, front-end options and speaker normalisation:
    None when off, else its ``speaker_prior`` (:meth:`SpeakerNorm.shrunk`; 0 by default)."""
    options = dict(section)
    name = options.pop("name", None)
    speaker_norm = options.pop("speaker_norm", False)
    prior = options.pop("speaker_prior", None)
    if not isinstance(speaker_norm, bool):
        raise ConfigError(f"frontend.speaker_norm must be true or false, got {speaker_norm!r}")
    if prior is not None and (isinstance(prior, bool) or not isinstance(prior, int | float) or prior < 0):
        raise ConfigError(f"frontend.speaker_prior must be a number of utterances >= 0, got {prior!r}")
    if prior is not None and not speaker_norm:
        raise ConfigError("frontend.speaker_prior needs frontend.speaker_norm: true")
    return name, options, float(prior or 0.0) if speaker_norm else None


class FeatureMemo:
    """Front-end output (features, frame lengths; on the CPU) per batch, keyed by the batch's
    utterance keys, up to ``max_bytes`` of features (batches past it are computed every time)."""

    def __init__(self, max_bytes: int = 2**30) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._entries: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, ...], feats: torch.Tensor, frames: torch.Tensor) -> None:
        size = feats.numel() * feats.element_size()
        if self.nbytes + size <= self.max_bytes:
            self._entries[key] = (feats.detach().cpu(), frames.cpu())
            self.nbytes += size


class Predictor:
    def __init__(self, frontend: torch.nn.Module, model: torch.nn.Module, labels: LabelSpace, *,
                 segment: Any = None, attributes: Iterable[str] = (), device: torch.device | str = "cpu",
                 amp_dtype: torch.dtype | None = None, speaker_norm: Any = None) -> None:
        self.frontend = frontend
        self.model = model
        self.labels = labels
        self.segment = segment
        self.attributes = list(attributes)
        self.device = torch.device(device)
        self.amp_dtype = amp_dtype
        self.speaker_norm = speaker_norm

    # --- building blocks ------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def features(self, audio: torch.Tensor, lengths: torch.Tensor, speakers: list[str | None] | None = None, *,
                 memo: FeatureMemo | None = None, key: tuple[str, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """Front-end features (then speaker normalisation); with ``memo``, the front-end's output
        for the batch ``key`` is computed once and reused (the front-ends have no trained
        parameters, so in eval mode their output is a function of the audio)."""
        if memo is not None and not key:
            raise ValueError("a feature memo needs the batch's utterance keys")
        hit = memo.get(key) if memo is not None else None
        if hit is not None:
            feats, frames = (t.to(self.device) for t in hit)
        else:
            feats, frames = self.frontend(audio, lengths)
            if memo is not None:
                memo.put(key, feats, frames)
        if self.speaker_norm is not None:
            feats = self.speaker_norm(feats, frames, speakers)
        return feats, frames

    def segment_features(self, audio: torch.Tensor, lengths: torch.Tensor, speakers: list[str | None] | None, *,
                         training: bool = False, memo: FeatureMemo | None = None,
                         key: tuple[str, ...] = ()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`features` of a segment model's windows (``segment.seconds`` every
        ``train_hop`` or ``eval_hop`` seconds) and the row each window belongs to; of whole
        utterances (owner ``None``) for the others. The windows are cut from the waveform, or,
        behind a front-end VAD, from the utterance's voiced frames: the VAD's threshold follows
        the energy of what it is given, so inside a silent window it would keep frames of the
        silence."""
        seg = self.segment
        if seg is None:
            return (*self.features(audio, lengths, speakers, memo=memo, key=key), None)
        hop = seg.train_hop if training else seg.eval_hop
        if self.windows_voiced_frames:
            return self.frame_windows(*self.features(audio, lengths, speakers, memo=memo, key=key), hop)
        audio, lengths, owner = segments.split(audio, lengths, seg.seconds, hop)
        if speakers is not None:
            speakers = [speakers[i] for i in owner.tolist()]
        return (*self.features(audio, lengths, speakers, memo=memo, key=key), owner)

    @property
    def windows_voiced_frames(self) -> bool:
        """Whether a segment model's windows come from the voiced frames (a front-end VAD)
        rather than from the waveform."""
        return self.segment is not None and getattr(self.frontend, "vad", None) is not None

    def frame_windows(self, feats: torch.Tensor, frames: torch.Tensor,
                      hop: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Segment windows of front-end features (``segment.seconds`` every ``hop`` seconds, in
        frames) and the row each window belongs to (:func:`segments.windows`)."""
        return segments.windows(feats, frames, *self.window_frames(hop))

    def window_frames(self, hop: float) -> tuple[int, int]:
        """A segment window's size and step in front-end frames (``segment.seconds``, ``hop``)."""
        frontend: Any = self.frontend  # a registered front-end (frames)
        size, step = (frontend.frames(int(round(s * SAMPLE_RATE))) for s in (self.segment.seconds, hop))
        return size, step

    @torch.no_grad()
    def outputs(self, audio: torch.Tensor, lengths: torch.Tensor, speakers: list[str | None] | None = None, *,
                memo: FeatureMemo | None = None, key: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        """Per-utterance ``probs`` [B, C], ``embedding`` and (if any) ``attributes``."""
        with self.autocast():
            feats, frames, owner = self.segment_features(audio, lengths, speakers, memo=memo, key=key)
            out = self.model(feats, frames)
        result = {"probs": F.softmax(out["logits"].float(), dim=-1)}
        if "embedding" in out:
            result["embedding"] = out["embedding"].float()
        if "attributes" in out:
            result["attributes"] = out["attributes"].float()
        if owner is not None:  # utterance score = mean of its segment scores (Li et al. 2018)
            rows = int(owner.max()) + 1 if owner.numel() else 0
            result = {k: segments.pool(v, owner, rows) for k, v in result.items()}
        return result

    def predict(self, batches: Iterable[Any], *, embeddings: bool = False, max_batches: int | None = None,
                memo: FeatureMemo | None = None) -> dict[str, list[Any]]:
        """This process' share of per-utterance outputs, as lists ready to gather across ranks
        (``memo``: front-end features kept from an earlier pass over the same batches)."""
        was_training = self.model.training, self.frontend.training
        self.model.eval()
        self.frontend.eval()
        parts: dict[str, list[Any]] = {k: [] for k in ("keys", "probs", "labels", "attrs", "gold", "emb", "meta")}
        try:
            for i, batch in enumerate(batches):
                if max_batches is not None and i >= max_batches:
                    break
                batch = batch.to(self.device)
                out = self.outputs(batch.audio, batch.lengths, speaker_keys(batch.meta), memo=memo,
                                   key=tuple(batch.keys))
                parts["keys"] += list(batch.keys)
                parts["meta"] += list(batch.meta)
                parts["probs"].append(out["probs"].cpu().numpy())
                parts["labels"].append(np.asarray(self.labels.encode_all(batch.meta), dtype=np.int64))
                parts["gold"].append(batch.attributes.cpu().numpy())
                if "attributes" in out:
                    parts["attrs"].append(out["attributes"].cpu().numpy())
                if embeddings and "embedding" in out:
                    parts["emb"].append(out["embedding"].cpu().numpy())
        finally:
            self.model.train(was_training[0])
            self.frontend.train(was_training[1])
        return parts

    def score(self, parts: dict[str, list[Any]]) -> Predictions:
        """Per-utterance predictions and their metrics (WA, UA, F1, loss, CCC per attribute)."""
        return score(parts, self.labels, self.attributes)

    # --- from a checkpoint ------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu",
                        which: str = "best") -> tuple[Predictor, dict[str, Any]]:
        """Rebuild the trained front-end + model of a run directory or checkpoint."""
        # deferred: the registry imports every plug-in module; only when looked up
        from ssl_ser.features import build_frontend
        from ssl_ser.models import build_model

        directory = ckpt.find_checkpoint(path, which)
        meta = ckpt.load_meta(directory)
        state = ckpt.load_state(directory, map_location=device)
        job = from_dict(JobConfig, meta["job"], source=f"{directory}/meta.json")
        name, options, prior = frontend_section(job.frontend)
        frontend = build_frontend(name, **options).to(device)
        model_name, model_options = component(job.model, "model")
        model_options.pop("init", None)  # the checkpoint's weights replace any initialisation
        model = build_model(model_name, in_features=frontend.num_features,
                            **{**meta.get("model_kwargs", {}), **model_options})
        model.load_state_dict(state["model"])
        model.to(device).eval()
        norm = (SpeakerNorm.from_state(state["speaker_norm"]) if prior is not None and state.get("speaker_norm")
                else None)
        predictor = cls(frontend.eval(), model, LabelSpace.from_json(meta["labels"]),
                        segment=job.data.segment, attributes=job.data.attributes, device=device,
                        speaker_norm=norm)
        meta["checkpoint"] = str(directory)
        return predictor, meta


def score(parts: dict[str, list[Any]], labels: LabelSpace, attributes: Iterable[str]) -> Predictions:
    def cat(name: str) -> np.ndarray | None:
        return np.concatenate(parts[name]) if parts[name] else None

    probs = cat("probs")
    gold = cat("gold")
    gathered = cat("labels")
    pred = Predictions(keys=list(parts["keys"]),
                       probs=probs if probs is not None else np.zeros((0, labels.num_classes), np.float32),
                       labels=gathered if gathered is not None else np.zeros(0, np.int64),
                       attributes=cat("attrs"),
                       gold_attributes=gold if gold is not None else np.zeros((0, 3), np.float32),
                       embeddings=cat("emb"), meta=list(parts["meta"]))
    has = pred.labels != IGNORE
    metrics: dict[str, float] = {}
    if has.any():
        rep = classification_report(pred.labels[has], pred.probs[has].argmax(1), labels.classes)
        pred.report = rep
        metrics.update({k: rep[k] for k in HEADLINE_METRICS})
        p = np.clip(pred.probs[has][np.arange(int(has.sum())), pred.labels[has]], 1e-12, 1.0)
        metrics["loss"] = float(-np.log(p).mean())
    if pred.attributes is not None:
        values = []
        for a in attributes:
            col = ATTRIBUTES.index(a)
            ok = np.isfinite(pred.gold_attributes[:, col])
            if ok.sum() >= 2:
                metrics[f"ccc_{a}"] = ccc(pred.attributes[ok, col], pred.gold_attributes[ok, col])
                values.append(metrics[f"ccc_{a}"])
        if values:
            metrics["ccc_mean"] = float(np.mean(values))
    metrics["n"] = float(len(pred.keys))
    pred.metrics = metrics
    return pred
