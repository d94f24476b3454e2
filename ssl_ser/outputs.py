"""Checking output paths before the work, so a long job never fails at its very end on a path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ssl_ser.errors import SslSerError


class OutputPathError(SslSerError):
    """An output path that cannot be written; the message names it and why."""


def check_writable(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if a file can be written there (missing folders are created
    later by the writer); otherwise :class:`OutputPathError` naming the obstacle. Probes by
    opening the file for appending (nothing is written) or creating and removing a temporary
    file in the nearest existing folder, which also catches read-only file systems."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"output {path} is a folder; give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"cannot write {path}: {ancestor} is a file, not a folder")
    try:
        if path.exists():
            open(path, "ab").close()
        else:
            handle, probe = tempfile.mkstemp(dir=ancestor, prefix=".ssl-ser-probe-")
            os.close(handle)
            os.unlink(probe)
    except OSError as err:
        raise OutputPathError(f"cannot write {path}: {err.strerror or err}") from None
    return path
