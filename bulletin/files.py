"""Reads and writes a site's files safely: reads bounded in size and kept inside the site,
writes atomic (a reader — a browser, `serve`, a crashed run's successor — sees the old bytes
or the new ones, never half a file). The only way bulletin writes a file."""

from __future__ import annotations

import functools
import io
import os
import stat
import tempfile
from pathlib import Path


class ReadRefused(Exception):
    """A file bulletin will not read: it leads outside the site, is not a regular file (a
    device such as /dev/zero, a pipe), is too large, or cannot be opened. The message says
    why, without the file's name (the caller names it)."""


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, every symbolic link followed, is `root` or lies under it."""
    try:
        return _within(os.path.realpath(path, strict=True), _real_root(str(root)))
    except OSError:  # missing, or a symlink loop
        return False


def read_capped(path: Path, limit: int, *, root: Path | None = None) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them; with `root`, only when
    the file, symbolic links followed, lies inside `root`. Raises ReadRefused otherwise."""
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; no effect on files.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ReadRefused(f"cannot read it: {exc.strerror}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # checked first: a folder cannot be opened as a file
        os.close(fd)
        raise ReadRefused("it is not a regular file (a folder, a device, a pipe or a socket)")
    with os.fdopen(fd, "rb", buffering=0) as handle:
        if root is not None and not _within(_opened_path(fd, path), _real_root(str(root))):
            raise ReadRefused(
                "it is a symbolic link leading outside the site folder; copy the file into the site"
            )
        if info.st_size > limit:
            raise ReadRefused(_too_large(info.st_size, limit))
        # The size as stat says (files in /proc say 0), then the rest up to the limit.
        if info.st_size:
            data = _read_up_to(handle, min(info.st_size, limit) + 1)
            if len(data) > info.st_size:
                data += _read_up_to(handle, limit + 1 - len(data))
        else:
            data = _read_up_to(handle, limit + 1)
    if len(data) > limit:
        raise ReadRefused(_too_large(len(data), limit))
    return data


def _read_up_to(handle: io.FileIO, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = handle.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _opened_path(fd: int, path: Path) -> str:
    """The real path of the file open as `fd`: what the kernel opened (no race with a link
    changed in between) where /proc tells it, else the path resolved."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _real_root(root: str) -> str:
    return _real_absolute(os.path.abspath(root))  # absolute first: the cwd can change


@functools.lru_cache(maxsize=64)
def _real_absolute(root: str) -> str:
    return os.path.realpath(root)


def _within(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _too_large(size: int, limit: int) -> str:
    def shown(n: int) -> str:
        if n >= 1024 * 1024:
            return f"{n / 1024 / 1024:.1f} MB"
        return f"{n / 1024:.0f} KB" if n >= 10 * 1024 else f"{n:,} bytes"

    return f"it is {shown(size)}, more than the {shown(limit)} allowed"


def write_atomically(
    path: Path, data: bytes, *, mode: int | None = None, folders: set[Path] | None = None
) -> None:
    """Replace `path` with `data` in one step, making its folder if needed; `mode` sets
    the new file's permissions (the temporary file's 0600 otherwise). `folders`: those
    made or found already by a run writing many files, which adds this one's (a build
    writes tens of thousands, and asking again for a folder there costs a system call a
    busy file system takes its time over)."""
    _make_folder(path, folders)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:  # the folder was removed since: made again
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


def _make_folder(path: Path, folders: set[Path] | None) -> None:
    """Make `path`'s folder unless `folders` (those of this run so far) has it already."""
    if folders is None or path.parent not in folders:
        path.parent.mkdir(parents=True, exist_ok=True)
        if folders is not None:
            folders.add(path.parent)


def write_new(path: Path, data: bytes, *, mode: int, folders: set[Path]) -> None:
    """Write `data` into a new file at `path`, in a folder no reader sees yet (one that
    replaces another in one rename once complete, see `pipeline.staging`): no temporary
    file, as nobody can see this one half written. `folders`: those made already."""
    _make_folder(path, folders)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the mode asked for, whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_if_changed(
    path: Path, data: bytes, *, mode: int | None = None, folders: set[Path] | None = None
) -> bool:
    """`write_atomically` unless `path` holds `data` already; True when it wrote. A file
    of another size is not read (a calendar of thousands of events weighs megabytes)."""
    try:
        if os.stat(path).st_size == len(data) and path.read_bytes() == data:
            return False
    except (FileNotFoundError, IsADirectoryError):
        pass
    write_atomically(path, data, mode=mode, folders=folders)
    return True


def user_cache_folder(kind: str) -> Path | None:
    """The user's cache folder of `kind` (compiled "catalogs", "dates" data, checked
    "config"): `$XDG_CACHE_HOME/bulletin/<kind>` (by default `~/.cache/bulletin/<kind>`);
    None for a user without a home folder."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None
    return Path(base) / "bulletin" / kind
