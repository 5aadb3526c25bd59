"""Writes files atomically: a reader (a browser, `serve`, a crashed run's successor) sees
the old bytes or the new ones, never half a file. The only way bulletin writes a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` in one step, making its folder if needed; `mode` sets
    the new file's permissions (the temporary file's 0600 otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes, *, mode: int | None = None) -> bool:
    """`write_atomically` unless `path` holds `data` already; True when it wrote."""
    try:
        if path.read_bytes() == data:
            return False
    except (FileNotFoundError, IsADirectoryError):
        pass
    write_atomically(path, data, mode=mode)
    return True
