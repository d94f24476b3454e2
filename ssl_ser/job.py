"""The job config: one YAML file in ``jobs/`` describes a whole training run.

Sections with a fixed shape (data, optim, schedule, train, scaling, debug) are typed here.
The pluggable sections (``frontend``, ``model``, ``method``, ``augment``) are ``{name: ...,
options...}`` mappings validated by the component they name, so a new model or method adds
its options without touching this file. :func:`ssl_ser.job_loader.load_job` checks everything, including that
the shard sets exist, before any worker starts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from ssl_ser.config import ConfigError, config, to_dict
from ssl_ser.files import is_url
from ssl_ser.labels import LabelConfig

ATTRIBUTE = Literal["arousal", "valence", "dominance"]
# range checks live in the schema, so a bad value is refused with its key before any work
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Decay = Annotated[float, Field(ge=0.0, lt=1.0)]


@config
class SegmentConfig:
    """Fixed-length windows for segment models; utterance scores are the mean of segment scores."""

    seconds: PositiveFloat = 2.0
    train_hop: PositiveFloat = 1.0
    """Hop between training segments (Li et al. 2018: 1 s)."""
    eval_hop: PositiveFloat = 0.4
    """Hop between evaluation segments (Li et al. 2018: 0.4 s)."""


@config
class DataConfig:
    train: list[str]
    """Labelled training shard sets: directories, globs, brace patterns or URLs. Several sets
    (e.g. several corpora) are mixed in proportion to their size."""
    unlabelled: list[str] = field(default_factory=list)
    """Unlabelled shard sets (semi-supervised methods)."""
    unlabelled_weight: Fraction = 0.5
    """Fraction of the training stream drawn from the unlabelled sets."""
    valid: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    batch_size: PositiveInt = 32
    crop_seconds: PositiveFloat | None = 3.0
    """Random crop/pad of training utterances; null keeps whole utterances (length-bucketed)."""
    eval_max_seconds: PositiveFloat | None = 30.0
    """Evaluation utterances longer than this are cut (memory bound); null keeps everything."""
    samples_per_epoch: PositiveInt | None = None
    """Training samples per epoch over all ranks; by default the training shards' total (with
    ``feature_cache``, crops of the cached utterances from successive shuffles)."""
    shuffle_buffer: NonNegativeInt = 1000
    num_workers: NonNegativeInt = 2
    """DataLoader worker processes per training worker."""
    labels: LabelConfig = field(default_factory=LabelConfig)
    attributes: list[ATTRIBUTE] = field(default_factory=list)
    """Emotional attributes regressed with a CCC loss (when the method trains them)."""
    segment: SegmentConfig | None = None
    feature_cache: bool = False
    """Compute the training set's front-end features once (whole utterances, eval mode, in
    memory) and crop / segment frames of them every epoch; SpecAugment and speaker
    normalisation still apply per batch (:mod:`ssl_ser.train.feature_cache`). The validation
    sets' features are kept from the first epoch on as well (they are read every epoch; up to
    1 GiB, in CPU memory). Needs one training source, no waveform ``augment`` and a
    deterministic front-end."""


@config
class OptimConfig:
    name: Literal["adam", "adamw", "sgd", "adadelta"] = "adam"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    momentum: Decay = 0.9
    """SGD momentum."""
    nesterov: bool = False
    betas: tuple[Decay, Decay] = (0.9, 0.999)
    rho: Fraction = 0.9
    """Adadelta decay."""


@config
class ScheduleConfig:
    name: Literal["constant", "multistep", "step", "cosine"] = "constant"
    milestones: list[PositiveInt] = field(default_factory=list)
    """multistep: 1-based epochs at which the rate is multiplied by gamma (Li et al.: 21, 31, 41)."""
    step_size: PositiveInt = 20
    """step: multiply by gamma every step_size epochs (LSSED: 20)."""
    gamma: PositiveFloat = 0.1
    warmup_epochs: NonNegativeInt = 0


@config
class TrainConfig:
    epochs: PositiveInt = 10
    seed: int = 0
    grad_clip: PositiveFloat | None = 5.0
    """Max global gradient norm; null disables clipping."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """auto: bf16 autocast on GPU, fp32 on CPU; fp16 (GPU only) adds a gradient scaler."""
    metric: str = "ua"
    """Validation metric that picks the best checkpoint (ua, wa, macro_f1, weighted_f1, ccc_mean, loss...)."""
    metric_mode: Literal["max", "min"] = "max"
    num_to_keep: PositiveInt = 2
    """Checkpoints kept (the best by metric, plus always the latest for resuming)."""
    max_steps_per_epoch: PositiveInt | None = None
    log_every: NonNegativeInt = 50
    init_from: str | None = None
    """Transfer: a run directory or checkpoint whose weights (all but the final layer) start this run."""
    freeze_body_epochs: NonNegativeInt = 0
    """Transfer: epochs that train only the new final layer before everything is fine-tuned."""
    mixup: NonNegativeFloat = 0.0
    """Mixup (Zhang et al. 2018) of front-end features: each batch is mixed with a shuffled copy
    of itself with a weight drawn from Beta(mixup, mixup) and the loss mixes the two targets'
    losses with the same weight; 0 disables it."""
    ema_decay: Decay | None = None
    """Keep an exponential moving average of the weights with this decay per step (e.g. 0.99);
    validation, the best checkpoint and its later uses take the averaged weights. null: off."""


@config
class ScalingSection:
    num_workers: PositiveInt = 1
    use_gpu: bool = False
    resources_per_worker: dict[str, NonNegativeFloat] = field(default_factory=dict)
    max_failures: Annotated[int, Field(ge=-1)] = 0
    """Worker failures survived by restarting from the last checkpoint (-1: any number)."""


@config
class DebugConfig:
    """What ``--debug`` changes: one process, small caps, deterministic, progress bar."""

    max_train_batches: PositiveInt | None = 20
    max_eval_batches: PositiveInt | None = 50
    num_workers: NonNegativeInt = 0


@config
class JobConfig:
    name: str
    """Run name; with storage_path it identifies the run (rerunning it resumes)."""
    storage_path: str = "runs"
    """Local directory or shared/remote storage (s3://...) for checkpoints and logs."""
    method: dict[str, Any] = field(default_factory=lambda: {"name": "supervised"})
    frontend: dict[str, Any] = field(default_factory=lambda: {"name": "logmel"})
    model: dict[str, Any] = field(default_factory=lambda: {"name": "resnet34_xvector"})
    augment: dict[str, Any] = field(default_factory=dict)
    data: DataConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSection = field(default_factory=ScalingSection)
    debug: DebugConfig = field(default_factory=DebugConfig)


def run_dir(job: JobConfig) -> Path | None:
    """The run's directory, ``storage_path/name``, when storage is local (None for remote storage)."""
    return None if is_url(job.storage_path) else Path(job.storage_path) / job.name


def component(section: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """Split a ``{name: ..., options...}`` section into its name and options."""
    options = dict(section)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{where}.name is required (a string naming the {where})")
    return name, options


def fingerprint(job: JobConfig, *sections: str) -> str:
    """A short hash of config sections (used to refuse resuming a run with another model/data)."""
    data = to_dict(job)
    blob = json.dumps({s: data[s] for s in sections}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
