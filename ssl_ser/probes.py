"""What a representation still knows: one evaluation pass of the ``daae`` model that keeps
its latent codes and domain-head predictions, and fresh linear probes fitted on them.

The domain-adversarial pretraining (:mod:`ssl_ser.methods.daae`) can fool its own speaker and
corpus heads while the information stays decodable; only a fresh probe shows that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ssl_ser import segments
from ssl_ser.labels import IGNORE, LabelSpace
from ssl_ser.metrics import masked_squared_error
from ssl_ser.speaker_norm import speaker_keys

if TYPE_CHECKING:
    from ssl_ser.inference import Predictor


@torch.no_grad()
def latent_pass(predictor: Predictor, batches: Iterable[Any], *, max_batches: int | None = None,
                speakers: LabelSpace | None = None, corpora: LabelSpace | None = None) -> dict[str, list[Any]]:
    """One pass of the ``daae`` model over evaluation batches, segment by segment (the
    predictor's ``segment`` with its ``eval_hop``).

    Per utterance: ``keys``, ``meta``, ``probs`` of the latent emotion head (mean over the
    segments), ``labels`` (the predictor's label space), ``emb`` (the latent code averaged over
    frames and segments), ``gold`` attributes and empty ``attrs``, so ``inference.score`` can
    score them. Per segment: ``recon`` (squared error sum, element count) and, when the spaces
    are given, ``speaker``/``corpus`` targets next to the domain heads' predictions.
    """
    model, frontend = predictor.model, predictor.frontend
    was_training = model.training, frontend.training
    model.eval()
    frontend.eval()
    names = ("keys", "meta", "probs", "labels", "gold", "attrs", "emb", "recon",
             "speaker", "speaker_pred", "corpus", "corpus_pred", "utt_speaker", "utt_corpus")
    parts: dict[str, list[Any]] = {k: [] for k in names}
    try:
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            batch = batch.to(predictor.device)
            rows = list(batch.meta)
            audio, lengths = batch.audio, batch.lengths
            with predictor.autocast():
                feats, frames, owner = predictor.segment_features(audio, lengths, speaker_keys(rows))
                out = model(feats, frames)
            if owner is None:
                owner = torch.arange(len(rows), device=feats.device)
            frames = frames.to(feats.device)
            latent = out["latent"].float()
            pooled = latent.sum(1) / frames.clamp(min=1)[:, None].float()
            probs = F.softmax(out["latent_emotion_logits"].float(), dim=-1)
            n = len(rows)
            parts["keys"] += list(batch.keys)
            parts["meta"] += rows
            parts["probs"].append(segments.pool(probs, owner, n).cpu().numpy())
            parts["emb"].append(segments.pool(pooled, owner, n).cpu().numpy())
            parts["labels"].append(np.asarray(predictor.labels.encode_all(rows), dtype=np.int64))
            parts["gold"].append(batch.attributes.cpu().numpy())
            err, count = masked_squared_error(out["recon"], feats, frames)
            parts["recon"].append((float(err), int(count)))
            pick = owner.tolist()
            for name, space in (("speaker", speakers), ("corpus", corpora)):
                if space is None:
                    continue
                per_utt = np.asarray(space.encode_all(rows), dtype=np.int64)
                parts[f"utt_{name}"].append(per_utt)
                parts[name].append(per_utt[pick])
                parts[f"{name}_pred"].append(out[f"{name}_logits"].float().argmax(1).cpu().numpy())
    finally:
        model.train(was_training[0])
        frontend.train(was_training[1])
    return parts


def head_accuracy(target: np.ndarray, predicted: np.ndarray) -> tuple[float, float] | None:
    """Accuracy over rows with a target, and the chance level (the majority class' share)."""
    has = target != IGNORE
    if not has.any():
        return None
    counts = np.bincount(target[has])
    return float((predicted[has] == target[has]).mean()), float(counts.max() / has.sum())


def probe_accuracy(features: np.ndarray, target: np.ndarray, keys: Sequence[str]) -> float | None:
    """Accuracy of a fresh linear probe: multinomial logistic regression on standardised
    features (L2 as scikit-learn's default C=1, fitted by L-BFGS). Within each class, the
    utterances sorted by key alternate between fitting and testing. None when fewer than two
    classes have two utterances."""
    fit: list[int] = []
    test: list[int] = []
    for cls in np.unique(target[target != IGNORE]):
        rows = sorted(np.flatnonzero(target == cls).tolist(), key=lambda i: keys[i])
        if len(rows) >= 2:
            fit += rows[0::2]
            test += rows[1::2]
    classes = np.unique(target[fit]) if fit else np.zeros(0, np.int64)
    if len(classes) < 2:
        return None
    x = torch.as_tensor(features, dtype=torch.float64)
    mean, std = x[fit].mean(0), x[fit].std(0).clamp(min=1e-6)
    x = (x - mean) / std
    y = torch.as_tensor(np.searchsorted(classes, target[fit]))
    weight = torch.zeros(x.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([weight, bias], max_iter=300, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        solver.zero_grad()
        value = F.cross_entropy(x[fit] @ weight + bias, y) + 0.5 * weight.pow(2).sum() / len(fit)
        value.backward()
        return value

    with torch.enable_grad():
        solver.step(objective)
    with torch.no_grad():
        predicted = classes[(x[test] @ weight + bias).argmax(1).numpy()]
    return float((predicted == target[test]).mean())
