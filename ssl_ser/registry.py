"""Name -> component registries.

A new corpus, front-end, model or method is one module plus one ``@REGISTRY.register("name")``
line. Packages that hold registered components import all their submodules on first lookup
(:func:`import_submodules`), so nobody maintains a central list.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ssl_ser.errors import SslSerError

T = TypeVar("T")


class UnknownNameError(SslSerError, KeyError):
    """A name that is not in a registry; the message lists what is."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """A mapping from names to components, filled by a decorator.

    ``package`` names the package whose submodules register into this registry, ``modules``
    single modules that do (components kept beside the module that owns the registry, which
    they import); both are imported lazily the first time the registry is read, so importing
    ``ssl_ser`` stays cheap and no import cycle forms.
    """

    def __init__(self, kind: str, package: str | None = None, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._package = package
        self._modules = modules
        self._items: dict[str, T] = {}
        self._loaded = package is None and not modules

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def _load(self) -> None:
        if not self._loaded:
            # marked loaded only on success: a broken module must fail every lookup loudly,
            # not leave a half-filled registry that reports "unknown name"
            if self._package is not None:
                import_submodules(self._package)
            for module in self._modules:
                importlib.import_module(module)
            self._loaded = True

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_submodules(package: str) -> None:
    """Import every module of ``package`` (not recursive): each registers itself on import."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
