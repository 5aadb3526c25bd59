"""A whole public/ written while it is rendered: a build into a site without public/ (the
first one, or one after `rm -rf public`) writes each file, as soon as it is rendered, into
a folder of the site's state that no reader sees, and that folder becomes public/ in one
rename once every output passed the gates.

Creating tens of thousands of files and folders is mostly the kernel's work: done by a
process of its own beside the rendering, it takes the time of a second core rather than
adding its own. An output refused by the gates leaves no trace: the folder is removed, and
public/ was never there. Anything unexpected (public/ made meanwhile, the state folder on
another file system, a write that failed) falls back to writing public/ file by file, as
always.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bulletin.files import write_new
from bulletin.processes import module_process

if TYPE_CHECKING:
    from bulletin.config.model import Config

PREFIX = "public.new-"
MODE = 0o644


class Staged:
    """The files of a build being written into `folder`, to become `public`: by a process
    of its own, fed in batches through a pipe by a thread of this one. (A thread writing
    the files itself would wait for the interpreter's lock before each system call, while
    the rendering holds it: a few files a second.)"""

    def __init__(self, public: Path, folder: Path) -> None:
        self.public, self.folder = public, folder
        self.files = _Streaming(self)
        #: the bytes last given for each name (the same objects as in `files`: no copy)
        self._given: dict[str, bytes] = {}
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._failed = False
        self._writer = module_process(
            __name__,
            str(folder),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._feeder = threading.Thread(target=self._feed, name="bulletin public/", daemon=True)
        self._feeder.start()

    @classmethod
    def start(cls, config: Config) -> Staged | None:
        """A staged public/ when the site has none yet; None otherwise (public/ is then
        written in place, each file atomically)."""
        public = config.public_dir
        if os.path.lexists(public):
            return None
        state = config.state_dir
        clear_abandoned(state)
        folder = state / f"{PREFIX}{os.getpid()}"
        try:
            state.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            return cls(public, folder)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def give(self, name: str, data: bytes) -> None:
        self._given[name] = data
        encoded = name.encode()
        self._queue.put(_HEADER.pack(len(encoded), len(data)) + encoded)
        self._queue.put(data)

    def _feed(self) -> None:
        """Pass what was given to the writer, as much at a time as is waiting."""
        pipe = self._writer.stdin
        assert pipe is not None
        ended = False
        while not ended:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while batch[-1] is not None:
                    batch.append(self._queue.get_nowait())
            ended = batch[-1] is None
            if not self._failed:
                try:
                    pipe.write(b"".join(b for b in batch if b is not None))
                    pipe.flush()
                except OSError:  # the writer stopped: public/ is written in place
                    self._failed = True
        with contextlib.suppress(OSError):
            pipe.close()

    def publish(self, files: Mapping[str, bytes]) -> bool:
        """Make public/ of the folder holding exactly `files` (paths relative to public/);
        False when it could not be, public/ then being left to be written in place."""
        self._queue.put(None)
        self._feeder.join()
        if self._writer.wait() == 0 and not self._failed:
            try:
                folders: set[Path] = set()
                for name, data in files.items():
                    if self._given.get(name) is not data:  # given since, or changed since
                        write_new(self.folder / name, data, mode=MODE, folders=folders)
                for name in self._given.keys() - files.keys():
                    (self.folder / name).unlink()
                os.rename(self.folder, self.public)  # refused if public/ was made meanwhile
                return True
            except OSError:
                pass
        self.discard()
        return False

    def discard(self) -> None:
        self._failed = True
        if self._feeder.is_alive():
            self._queue.put(None)
        self._writer.kill()
        self._writer.wait()
        self._feeder.join()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Streaming(dict[str, bytes]):
    """The files of a build: each one set is given to the staging folder at once."""

    def __init__(self, staged: Staged) -> None:
        super().__init__()
        self._staged = staged

    def __setitem__(self, name: str, data: bytes) -> None:
        super().__setitem__(name, data)
        self._staged.give(name, data)


def clear_abandoned(state: Path) -> None:
    """Remove the staging folders of builds that ended without finishing (killed, or the
    machine stopped): those whose process is gone. Every write of public/ looks."""
    with contextlib.suppress(OSError):
        for folder in state.glob(PREFIX + "*"):
            pid = folder.name.removeprefix(PREFIX)
            if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_HEADER = struct.Struct("<II")  # a file's name, then its bytes: their lengths


def _write_all(folder: Path, source: BinaryIO) -> None:
    """The writer: each file read from `source` written under `folder`."""
    folders: set[Path] = {folder}
    while header := source.read(_HEADER.size):
        name_size, size = _HEADER.unpack(header)
        name = source.read(name_size).decode()
        write_new(folder / name, source.read(size), mode=MODE, folders=folders)


if __name__ == "__main__":
    _write_all(Path(sys.argv[1]), sys.stdin.buffer)
