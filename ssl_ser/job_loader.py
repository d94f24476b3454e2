"""Reading a job: YAML (or a dict) to a validated :class:`~ssl_ser.job.JobConfig`, with its
relative paths resolved, and everything about it that can be checked before any worker starts.

Each pluggable section is checked against the component it names: the method's options
dataclass, and the front-end/model constructors' keyword arguments, so a misspelt option
is refused on the driver with the key and the allowed names, not minutes later on a worker.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssl_ser.config import ConfigError, from_dict, load
from ssl_ser.data.stream import resolve_shards
from ssl_ser.errors import SslSerError
from ssl_ser.files import is_url
from ssl_ser.inference import frontend_section
from ssl_ser.job import JobConfig, component

if TYPE_CHECKING:  # the registry module imports every front-end: at run time only when looked up
    from ssl_ser.features import Frontend
    from ssl_ser.registry import Registry


def check_options(fn: Callable[..., Any], options: dict[str, Any], where: str,
                  provided: tuple[str, ...] = (), shared: tuple[str, ...] = ()) -> None:
    """Refuse keyword options ``fn`` does not take (``provided`` are filled in by the system;
    ``shared`` are taken by every component of the kind, outside ``fn``'s signature)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if n not in ("self", *provided)
               and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    allowed += shared
    for key in options:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key '{where}.{key}'{hint}; allowed here: name, {', '.join(allowed)}")


def validate_job(job: JobConfig, check_data: bool = True) -> None:
    from ssl_ser.features import (  # deferred: the registry imports every plug-in module; only when looked up
        FRONTENDS,
        validate_options,
    )

    # deferred: the registry imports every plug-in module; only when looked up
    from ssl_ser.methods import METHODS
    from ssl_ser.models import MODELS, SHARED_OPTIONS
    from ssl_ser.models.init import parse_init

    name, options = component(job.method, "method")
    method_cls = _lookup(METHODS, name, "method")
    from_dict(method_cls.Options, options, source="job", prefix="method")
    component(job.frontend, "frontend")
    name, frontend_options, _ = frontend_section(job.frontend)
    frontend_cls = _lookup(FRONTENDS, name, "frontend")
    validate_options(frontend_cls.__init__, frontend_options, what="frontend")
    name, options = component(job.model, "model")
    model_cls = _lookup(MODELS, name, "model")
    check_options(model_cls, options, "model", provided=("in_features", "num_classes", "num_speakers", "num_corpora"),
                  shared=SHARED_OPTIONS)
    parse_init(options.get("init"), what=f"model {name!r}")
    metrics = method_cls.metric_names(job)
    if job.train.metric not in metrics:
        raise ConfigError(f"train.metric {job.train.metric!r} is not reported by method "
                          f"{job.method['name']!r}; choose one of: {', '.join(sorted(metrics))}")
    if not job.data.train:
        raise ConfigError("data.train must name at least one shard set")
    if job.augment:
        # deferred: the registry imports every plug-in module; only when looked up
        from ssl_ser.augment import check_augment

        check_augment(job.augment)
    if check_data:

        for section in ("train", "unlabelled", "valid", "test"):
            for spec in getattr(job.data, section):
                try:
                    resolve_shards(spec)
                except SslSerError as err:
                    raise ConfigError(f"data.{section}: {err}") from None
        check_frontend_files(FRONTENDS, frontend_cls, frontend_options)


def check_frontend_files(frontends: Registry[type[Frontend]], frontend_cls: type[Frontend],
                         options: dict[str, Any]) -> None:
    """The files each front-end reads when built (``Frontend.check_files``), its ``base``
    (a front-end built on another, as ``functionals``) included."""
    frontend_cls.check_files(options)
    base = options.get("base")
    if isinstance(base, dict) and isinstance(base.get("name"), str):
        rest = {k: v for k, v in base.items() if k != "name"}
        check_frontend_files(frontends, _lookup(frontends, base["name"], "frontend.base"), rest)


def _lookup(registry: Any, name: str, where: str) -> Any:
    try:
        return registry.get(name)
    except SslSerError as err:
        raise ConfigError(f"{where}.name: {err}") from None


def load_job(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
             check_data: bool = True) -> JobConfig:
    """Load and validate a job config. Relative paths (shards, storage, init_from) resolve
    against the current directory, as on a command line; workers get absolute paths."""
    job = load(JobConfig, path, overrides)
    _resolve_paths(job, Path.cwd())
    validate_job(job, check_data=check_data)
    return job


def job_from_dict(data: dict[str, Any], base_dir: str | Path = ".", check_data: bool = True) -> JobConfig:
    job = from_dict(JobConfig, data, source="job")
    _resolve_paths(job, Path(base_dir).resolve())
    validate_job(job, check_data=check_data)
    return job


def _resolve_mapping_file(spec: str, base: Path) -> str:
    """A path, or the name of a mapping shipped in ``ssl_ser/resources/label_maps``."""
    path = Path(spec) if Path(spec).is_absolute() else base / spec
    if path.exists():
        return str(path)
    shipped = Path(__file__).resolve().parent / "resources" / "label_maps" / f"{spec}.yaml"
    if shipped.exists():
        return str(shipped)
    raise ConfigError(f"data.labels.mapping_file: {spec!r} is neither a file nor a shipped "
                      f"mapping ({', '.join(sorted(p.stem for p in shipped.parent.glob('*.yaml')))})")



def _resolve_paths(job: JobConfig, base: Path) -> None:
    def fix(spec: str) -> str:
        if is_url(spec) or Path(spec).is_absolute():
            return spec
        return str(base / spec)

    data = job.data
    for name in ("train", "unlabelled", "valid", "test"):
        setattr(data, name, [fix(s) for s in getattr(data, name)])
    if data.labels.mapping_file:
        data.labels.mapping_file = _resolve_mapping_file(data.labels.mapping_file, base)
    if not is_url(job.storage_path) and not Path(job.storage_path).is_absolute():
        job.storage_path = str(base / job.storage_path)
    if job.train.init_from:
        job.train.init_from = fix(job.train.init_from)
