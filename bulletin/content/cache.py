"""Remembers what loading each entry file gave, so that a publish reads and validates only
the entries that changed since the last one.

The cache lives in the site's state folder (`.bulletin/entries.cache`). Each file's record
holds the hash of its bytes, under a fingerprint of its path, the configuration and the code
and libraries that parse and validate an entry: any change to one of them is a miss, so an
edit is always seen. Reading and hashing every file at every publish costs what the archive
weighs, so a record also holds the file's identity and times (device, inode, size, mtime,
ctime); a file whose identity and times are the ones recorded is not read again. Any write
changes the ctime, which no one can set back; and a file whose times were within a few
seconds of the record (a clock's tick, on file systems whose times are coarse) is recorded
without them, so it is read and hashed again next time.

So that one new entry does not rewrite the whole cache, the records changed since the last
full write go to a small second file (`entries.cache.recent`), tied to the full one; it is
folded into the full one when it grows. A record is only ever used when the file still
matches it, so a lost, stale or damaged file costs time, never a wrong entry. A cache that
cannot be read is ignored and rewritten; one that cannot be written is simply not kept.
Only bulletin writes the state folder, so its pickles are trusted.

A file is a fixed header (the format, the fingerprint, the generation that ties the recent
file to the full one, the records' length), the pickle of the records, read only when the
header fits, then the heavy parts. Paths are stored as their text and taken back from the
paths about to be loaded. An object of the class a `Split` names (an entry) is stored in two
parts: its light fields, in the records, and the pickle of its heavy ones (an entry's body,
HTML, front matter and line numbers: most of its bytes), after them, where its record points.
Reading the cache reads the records only; each object reads its heavy part when one of its
heavy fields is first used (a publish renders few of the entries it reads). The file stays
open until then: a cache written meanwhile replaces the file's name, not what is open, so an
object always reads its own part; a file cut short under a run is an error, never an entry.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import os
import pickle
import stat
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePath
from typing import Any, BinaryIO, cast

from bulletin.config.model import Config
from bulletin.content.frontmatter import MAX_ENTRY_BYTES
from bulletin.files import ReadRefused, read_capped, write_atomically

FILE = "entries.cache"
#: the records changed since the full file was written (see the module's docstring)
RECENT = ".recent"
FORMAT = 4
#: a file's header: a mark, the format, the fingerprint, the generation, the records' length
_HEADER = struct.Struct("<8sI32s16sQ")
_MARK = b"bulletin"
#: a file whose mtime or ctime is this close to the record's writing (or later) is
#: recorded without them: a change within the same tick of a coarse clock would keep them
RACY_NS = 3_000_000_000
#: the recent records are folded into the full file when they are more than this share
#: of the whole (or more than a few dozen)
FOLD_SHARE = 16
FOLD_MIN = 64
# The modules whose code decides what an entry file loads to: all of content/ and config/,
# and the capped reads and problems they use.
_CODE = tuple(
    sorted(p.name for p in Path(__file__).parent.glob("*.py"))
    + sorted(f"../config/{p.name}" for p in (Path(__file__).parent.parent / "config").glob("*.py"))
    + ["../files.py", "../errors.py"]
)
_LIBRARIES = ("markdown-it-py", "mdit-py-plugins", "nh3", "PyYAML", "pydantic")

#: a file's identity and times: device, inode, size, mtime and ctime (ns)
Seen = tuple[int, int, int, int, int]
#: a record: the file as last seen (None: read it again), the hash of its bytes, the result
Record = tuple[Seen | None, bytes, Any]


class Heavy:
    """The heavy parts of a cache file, each read when asked for. The file stays open while
    an object may ask (it is closed when the last is gone): a new cache replaces its name,
    never what is open here."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.start = 0

    def __del__(self, close: Callable[[int], None] = os.close) -> None:
        close(self.fd)  # `os` itself may be gone when the interpreter exits

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, self.start + offset)
        if len(data) != length:
            raise OSError(f"the entry cache was cut short while in use ({length} bytes wanted)")
        return data


#: where an object's heavy part is: the file's parts, its offset among them, its length
HeavyPart = tuple[Heavy, int, int]


@dataclass(frozen=True)
class Split:
    """How the cache stores the objects of one class in two parts (see the module's
    docstring), and makes one again from them."""

    kind: type
    #: an object's parts: the text of its path, its light fields, the pickle of its heavy
    #: ones (None: the object is stored whole)
    parts: Callable[[Any], tuple[str, Any, bytes] | None]
    #: the object from its path, its light fields and where the pickle of its heavy ones is
    #: (which it reads only when they are used)
    join: Callable[[Path, Any, HeavyPart], Any]


def fingerprint(config: Config) -> bytes:
    """A digest of what decides what an entry file loads to, besides the file: its folder,
    the configuration, and the code and libraries that parse and validate an entry."""
    return _fingerprint(config, _CODE)


def _fingerprint(config: Config, code: tuple[str, ...]) -> bytes:
    digest = hashlib.sha256(f"{FORMAT}\0{config.root}\0".encode())
    digest.update(config.model_dump_json().encode())
    here = Path(__file__).parent
    for name in code:
        try:
            digest.update((here / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    for library in _LIBRARIES:
        try:
            digest.update(f"{library}={version(library)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{library}=\0".encode())
    return digest.digest()


def seen(path: str | Path) -> Seen | None:
    """The identity and times of the regular file `path` (None for anything else: a link,
    a folder, a device, a file that is not there), its link not followed."""
    try:
        info = os.lstat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


#: from this many records on, what a load makes is kept out of the collector's walks
SETTLED_RECORDS = 2_000


@contextlib.contextmanager
def _no_collection(settle: bool) -> Iterator[None]:
    """Python's cyclic garbage collector paused: loading thousands of entries makes objects
    by the hundred thousand, none of them garbage, and each collection would walk them all.
    With `settle`, what is alive afterwards is moved out of the collector's reach for good
    (gc.freeze): the entries live as long as the run, and every later full collection would
    walk them again, for nothing. Garbage waiting for the collector is collected first, so
    that nothing is frozen that should have been freed; an entry dropped later is still
    freed, by its reference count (entries hold no cycles)."""
    enabled = gc.isenabled()
    if settle and enabled:
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if settle:
            gc.freeze()
        if enabled:
            gc.enable()


class EntryCache:
    """What each entry file loaded to last time; `load` returns a hit or calls through.

    `file` and `code` (paths relative to this module) serve other results computed from
    one entry file alone, such as its compliance near-misses. `split` stores the objects of
    one class in two parts, the heavy one read when used (see the module's docstring)."""

    def __init__(
        self,
        config: Config,
        file: str = FILE,
        code: tuple[str, ...] = (),
        paths: Iterable[Path] = (),
        split: Split | None = None,
    ) -> None:
        self.path = config.state_dir / file
        self.recent_path = config.state_dir / (file + RECENT)
        self.root = config.root
        self._fingerprint = _fingerprint(config, _CODE + code)
        self._split = split
        self._generation = b""
        #: the full file's records, and those of the recent file (None: the file is gone)
        self._full: dict[str, Record] = {}
        self._recent: dict[str, Record | None] = {}
        self._new: dict[str, Record] = {}
        self.hits = self.misses = self.reads = 0
        # `paths` (the files about to be loaded) are reused for the paths in the cache:
        # making a Path again from its text costs more than the rest of an entry.
        by_text = {str(p): p for p in paths}
        with _no_collection(settle=len(by_text) >= SETTLED_RECORDS):
            stored = self._read(self.path, by_text)
            if stored is not None:
                self._generation, self._full = stored
                recent = self._read(self.recent_path, by_text)
                if recent is not None and recent[0] == self._generation:
                    self._recent = recent[1]
        self._old = {**self._full, **self._recent}
        for name, record in self._recent.items():
            if record is None:
                self._old.pop(name, None)

    def _read(self, path: Path, by_text: dict[str, Path]) -> tuple[bytes, Any] | None:
        try:
            heavy = Heavy(os.open(path, os.O_RDONLY))  # closed with the last object using it
        except OSError:
            return None
        try:
            header = os.pread(heavy.fd, _HEADER.size, 0)
            mark, form, fingerprint, generation, length = _HEADER.unpack(header)
            if (mark, form, fingerprint) != (_MARK, FORMAT, self._fingerprint):
                return None  # the records are not read
            heavy.start = _HEADER.size + length
            data = os.pread(heavy.fd, length, _HEADER.size)
            records = _Unpickler(io.BytesIO(data), by_text, self._split, heavy).load()
            return (generation, records) if len(data) == length and type(records) is dict else None
        except Exception:  # truncated, or from another version: start afresh
            return None

    def load(
        self,
        path: Path,
        loader: Callable[[Path], Any],
        identity: Callable[[str], Seen | None] = seen,
    ) -> Any:
        """`loader(path)`'s result for the file as it is now, from the cache if it holds it.
        `identity`: `seen`, or what it gave for the file just before (see `Listed`)."""
        name = str(path)
        now = identity(name)
        cached = self._old.get(name)
        if now is not None and cached is not None and cached[0] == now:
            self.hits += 1
            self._new[name] = cached
            return cached[2]
        try:
            # The same capped read as the loader's: a link to /dev/zero is refused, not read.
            key = hashlib.sha256(read_capped(path, MAX_ENTRY_BYTES, root=self.root)).digest()
        except ReadRefused:
            return loader(path)  # the loader says what is wrong with the file
        self.reads += 1
        if cached is not None and cached[1] == key:
            self.hits += 1
            self._new[name] = (now, key, cached[2])
            return cached[2]
        self.misses += 1
        result = loader(path)
        self._new[name] = (now, key, result)
        return result

    def save(self, complete: bool) -> None:
        """Keep what this load saw, if that changed anything; after a `complete` load (every
        file of the site), files not seen are gone and are dropped."""
        cutoff = time.time_ns() - RACY_NS
        for name, (now, key, result) in self._new.items():
            if now is not None and max(now[3], now[4]) >= cutoff:
                self._new[name] = (None, key, result)  # too recent to be trusted: read again
        kept = self._new if complete else {**self._old, **self._new}
        if kept.keys() == self._old.keys() and all(
            self._old[name] is record for name, record in kept.items()
        ):
            return  # what is stored already
        recent: dict[str, Record | None] = {
            name: record for name, record in kept.items() if self._full.get(name) is not record
        }
        recent |= {name: None for name in self._full.keys() - kept.keys()}
        try:
            if self._generation and len(recent) <= max(FOLD_MIN, len(kept) // FOLD_SHARE):
                self._write(self.recent_path, self._generation, recent)
            else:  # a new full file; the recent one, of another generation, is ignored
                generation = os.urandom(16)
                self._write(self.path, generation, kept)
                self._write(self.recent_path, generation, {})
        except OSError:
            pass  # a read-only site still loads; it just loads everything each time

    def _write(self, path: Path, generation: bytes, records: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        pickler = _Pickler(buffer, self._split)
        pickler.dump(records)
        header = _HEADER.pack(_MARK, FORMAT, self._fingerprint, generation, buffer.tell())
        write_atomically(path, b"".join([header, buffer.getvalue(), *pickler.heavy]), mode=0o600)


class _Pickler(pickle.Pickler):
    """Writes each Path as its text, and each object `split` names as its path's text, its
    light fields and where its heavy part is among `heavy`: references `_Unpickler`
    resolves."""

    def __init__(self, file: BinaryIO, split: Split | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.split = split
        self.heavy: list[bytes] = []
        self.size = 0

    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, PurePath):
            return str(obj)
        split = self.split
        if split is not None and isinstance(obj, split.kind):
            parts = split.parts(obj)
            if parts is not None:
                text, light, heavy = parts
                self.heavy.append(heavy)
                self.size += len(heavy)
                return (text, light, self.size - len(heavy), len(heavy))
        return None


class _Unpickler(pickle.Unpickler):
    """Reads the records `_Pickler` wrote, taking each Path from `paths` when it is there."""

    def __init__(
        self, file: BinaryIO, paths: dict[str, Path], split: Split | None, heavy: Heavy
    ) -> None:
        super().__init__(file)
        self.paths = paths
        self.join = split.join if split is not None else None
        self.heavy = heavy

    def persistent_load(self, pid: object) -> object:
        if type(pid) is str:
            return self.paths.get(pid) or Path(pid)
        if self.join is None:
            raise pickle.UnpicklingError("a cache of objects stored in parts")
        text, light, offset, length = cast(tuple[str, Any, int, int], pid)
        return self.join(self.paths.get(text) or Path(text), light, (self.heavy, offset, length))
