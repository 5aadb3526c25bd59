"""Remembers what loading each entry file gave, keyed by the file's bytes, so that a publish
reads and validates only the entries that changed since the last one.

The cache lives in the site's state folder (`.bulletin/entries.cache`). A key is the hash
of the file's bytes, its path, the configuration and the code and libraries that parse
and validate an entry: any change to one of them is a miss, so an edit is always seen.
A cache that cannot be read is ignored and rewritten; one that cannot be written is
simply not kept. Only bulletin writes the state folder, so its pickles are trusted.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from bulletin.config.model import Config
from bulletin.content.frontmatter import MAX_ENTRY_BYTES
from bulletin.files import ReadRefused, read_capped, write_atomically

FILE = "entries.cache"
FORMAT = 2
# The modules whose code decides what an entry file loads to: all of content/ and config/,
# and the capped reads and problems they use.
_CODE = tuple(
    sorted(p.name for p in Path(__file__).parent.glob("*.py"))
    + sorted(f"../config/{p.name}" for p in (Path(__file__).parent.parent / "config").glob("*.py"))
    + ["../files.py", "../errors.py"]
)
_LIBRARIES = ("markdown-it-py", "mdit-py-plugins", "nh3", "PyYAML", "pydantic")


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


class EntryCache:
    """What each entry file loaded to last time; `load` returns a hit or calls through.

    `file` and `code` (paths relative to this module) serve other results computed from
    one entry file alone, such as its compliance near-misses."""

    def __init__(
        self,
        config: Config,
        file: str = FILE,
        code: tuple[str, ...] = (),
        paths: Iterable[Path] = (),
    ) -> None:
        self.path = config.state_dir / file
        self.root = config.root
        self._fingerprint = _fingerprint(config, _CODE + code)
        self._old: dict[str, tuple[bytes, Any]] = {}
        self._new: dict[str, tuple[bytes, Any]] = {}
        self.hits = self.misses = 0
        try:
            # `paths` (the files about to be loaded) are reused for the paths in the cache:
            # making a Path again from its text costs more than the rest of an entry.
            with self.path.open("rb") as stored_file:
                stored = _Unpickler(stored_file, {str(p): p for p in paths}).load()
            if stored[0] == self._fingerprint:
                self._old = stored[1]
        except Exception:  # missing, truncated, or from another version: start afresh
            self._old = {}

    def load(self, path: Path, loader: Callable[[Path], Any]) -> Any:
        """`loader(path)`'s result for the file as it is now, from the cache if it holds it."""
        try:
            # The same capped read as the loader's: a link to /dev/zero is refused, not read.
            key = hashlib.sha256(read_capped(path, MAX_ENTRY_BYTES, root=self.root)).digest()
        except ReadRefused:
            return loader(path)  # the loader says what is wrong with the file
        name = str(path)
        cached = self._old.get(name)
        if cached is not None and cached[0] == key:
            self.hits += 1
            self._new[name] = cached
            return cached[1]
        self.misses += 1
        result = loader(path)
        self._new[name] = (key, result)
        return result

    def save(self, complete: bool) -> None:
        """Keep what this load saw, if that changed anything; after a `complete` load (every
        file of the site), files not seen are gone and are dropped."""
        kept = self._new if complete else {**self._old, **self._new}
        if not self.misses and kept.keys() == self._old.keys():
            return
        try:
            buffer = io.BytesIO()
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((self._fingerprint, kept))
            write_atomically(self.path, buffer.getvalue(), mode=0o600)
        except OSError:
            pass  # a read-only site still loads; it just loads everything each time


class _Pickler(pickle.Pickler):
    """Writes each Path as its text (a reference `_Unpickler` resolves)."""

    def persistent_id(self, obj: object) -> str | None:
        return str(obj) if isinstance(obj, PurePath) else None


class _Unpickler(pickle.Unpickler):
    """Reads a cache `_Pickler` wrote, taking each Path from `paths` when it is there."""

    def __init__(self, file: BinaryIO, paths: dict[str, Path]) -> None:
        super().__init__(file)
        self.paths = paths

    def persistent_load(self, pid: object) -> Path:
        text = str(pid)
        return self.paths.get(text) or Path(text)
