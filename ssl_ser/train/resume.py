"""Whether a checkpoint may be resumed by a job: fingerprints of what it depends on."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ssl_ser import checkpoint as ckpt
from ssl_ser.config import to_dict
from ssl_ser.job import JobConfig, fingerprint

#: Config sections whose change makes a checkpoint unusable for resuming.
MODEL_SECTIONS = ("frontend", "model")


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
