"""Writing files so that a kill or a full disk never leaves a half-written one under its name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ssl_ser.errors import SslSerError


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write ``path`` through ``path.tmp``: flushed, fsynced and renamed into place when the
    block ends, removed (the old ``path`` untouched) when it raises."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        handle: IO[Any] = tmp.open("w", encoding="utf-8") if mode == "w" else tmp.open("wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # on a full disk the cleanup itself must not fail
            tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, text: str) -> None:
    """``path`` holds exactly ``text``, or (after a failure) what it held before."""
    with atomic_open(path) as handle:
        handle.write(text)


def writable_dir(path: str | Path, what: str = "output directory") -> Path:
    """Create ``path`` if needed and prove that files can be written there, before any long
    work whose results would go there; otherwise one clear :class:`SslSerError`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # os.access is not the truth (root, ACLs, mounts)
            pass
    except OSError as err:
        raise SslSerError(f"{what} {path} is not writable: {err.strerror or err}") from None
    return path
