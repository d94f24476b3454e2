"""Writing files so that a kill or a full disk never leaves a half-written one under its name,
and holding a directory against a second writer."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
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
        with open(tmp, mode, encoding="utf-8" if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # on a full disk the cleanup itself must not fail
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def locked_directory(directory: str | Path, on_busy: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` itself (no lock file to leave behind) for
    the block. When another process holds it, ``on_busy()`` is called first: raise there to give
    up, or return to wait for the other process to let go."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_busy()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def atomic_write(path: str | Path, text: str) -> None:
    """``path`` holds exactly ``text``, or (after a failure) what it held before."""
    with atomic_open(path) as handle:
        handle.write(text)


def is_url(spec: str) -> bool:
    """A remote location (``s3://``, ``http://``...) or a ``pipe:`` command, not a local path."""
    return "://" in spec or spec.startswith("pipe:")


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON, written atomically."""
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; None if there is no such file; a damaged one is named, with what to do."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SslSerError(f"{path}: not valid JSON ({err}); delete it to redo the step that wrote it") from None


def writable_dir(path: str | Path, what: str = "output directory") -> Path:
    """Create ``path`` if needed and prove that files can be written there, before any long
    work whose results would go there; otherwise one clear :class:`SslSerError`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SslSerError(f"{what} {path} is not writable: {err.strerror or err}") from None
    _probe(path, f"{what} {path} is not writable")
    return path


def writable_file(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if a file can be written there (missing folders are created
    later by the writer); otherwise one clear :class:`SslSerError` naming the obstacle. Nothing
    is written: an existing file is opened for appending, else the nearest existing folder is
    probed, which also catches read-only file systems."""
    path = Path(path)
    if path.is_dir():
        raise SslSerError(f"output {path} is a folder; give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SslSerError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if path.exists():
        try:
            open(path, "ab").close()
        except OSError as err:
            raise SslSerError(f"cannot write {path}: {err.strerror or err}") from None
    else:
        _probe(ancestor, f"cannot write {path}")
    return path


def _probe(folder: Path, what: str) -> None:
    """Create and remove a temporary file in ``folder`` (os.access is not the truth: root, ACLs,
    read-only mounts)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise SslSerError(f"{what}: {err.strerror or err}") from None
