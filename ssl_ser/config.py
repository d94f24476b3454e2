"""Typed, validated configs loaded from YAML.

Config sections are pydantic dataclasses (``@config``): plain dataclasses with validation, so
an unknown or misspelt key, a wrong type or a bad value is refused with a message that names
the key and what is allowed. ``--set a.b=c`` overrides are applied before validation, so they
are checked exactly like the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, dataclass_transform

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass

from ssl_ser.errors import SslSerError

T = TypeVar("T")

_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=False)


@dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field, Field))
def config(cls: type[T]) -> type[T]:
    """Make ``cls`` a validated, keyword-only config dataclass that refuses unknown keys."""
    return _pydantic_dataclass(cls, config=_CONFIG, kw_only=True)  # type: ignore[return-value]


class ConfigError(SslSerError, ValueError):
    """A config that cannot be used; the message names the offending key(s)."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a nested dict (values parsed as YAML: ``3``, ``[1,2]``, ``null``)."""
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        keys = path.strip().split(".")
        node = data
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(keys[: i + 1])} is not a section")
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {err}") from None
    return data


def from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "config",
              prefix: str = "") -> T:
    """Validate ``data`` into ``cls``; every problem is reported with its dotted key.

    ``prefix`` is prepended to key paths, for sections validated on their own (``method.k``).
    """
    try:
        return TypeAdapter(cls).validate_python(dict(data))
    except ValidationError as err:
        lines = [_describe(cls, e, prefix) for e in err.errors()]
        raise ConfigError(f"{source}: " + ("\n  " if len(lines) > 1 else "") + "\n  ".join(lines)) from None


def load(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = (),
         data: Mapping[str, Any] | None = None) -> T:
    """Load ``cls`` from a YAML file (or ``data``), then overrides, then validate."""
    raw = dict(data) if data is not None else read_yaml(path) if path is not None else {}
    raw = apply_overrides(raw, overrides)
    return from_dict(cls, raw, source=str(path) if path is not None else "config")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


# --- error messages -----------------------------------------------------------------------

def _describe(cls: type, error: Mapping[str, Any], prefix: str = "") -> str:
    loc = [str(p) for p in error["loc"]]
    key = ".".join([prefix, *loc] if prefix else loc) or "<top>"
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        allowed = _fields_at(cls, loc[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}; allowed here: {', '.join(allowed)}"
    if error["type"] in ("missing", "missing_keyword_argument", "missing_argument"):
        return f"missing required key {key!r}"
    got = error.get("input")
    return f"{key}: {error['msg']} (got {got!r})"


def _fields_at(cls: type, loc: list[str]) -> list[str]:
    """The field names of the (nested) config class found by walking ``loc`` from ``cls``."""
    tp: Any = cls
    for part in loc:
        tp = _unwrap(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                continue  # a union-member tag or similar: stay on this type
            tp = hints[part]
        elif typing.get_origin(tp) in (list, tuple, dict):
            tp = typing.get_args(tp)[-1]
    tp = _unwrap(tp)
    return [f.name for f in dataclasses.fields(tp)] if dataclasses.is_dataclass(tp) else []


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``; ``list[X]``/``dict[str, X]`` -> ``X`` when ``X`` is a dataclass."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else tp
    if origin in (list, dict, tuple):
        inner = typing.get_args(tp)[-1] if typing.get_args(tp) else None
        if inner is not None and dataclasses.is_dataclass(_unwrap(inner)):
            return _unwrap(inner)
    return tp
