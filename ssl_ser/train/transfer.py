"""Transfer learning (``train.init_from``): a new model starts from another run's weights."""

from __future__ import annotations

import torch

from ssl_ser import checkpoint as ckpt


def init_from(model: torch.nn.Module, source: str) -> str:
    """Load every weight of ``source``'s best checkpoint but the final classification layer
    (``model.classifier_prefix``) into ``model``; returns the line that says what was loaded."""
    path = ckpt.find_checkpoint(source, "best")
    state = ckpt.load_state(path)["model"]
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
    return (f"init_from {path}: loaded {len(state)} tensors, new final layer "
            f"({len(skipped)} tensors under {prefix!r} replaced)")
