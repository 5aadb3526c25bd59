"""Writes rendered files into public/: the only place bulletin writes the web archive.

`.bulletin/public.state` remembers, for each file written, the digest of the inputs it was
rendered from (`pipeline.public.Inputs`); the next publish renders and checks a file again
only when that digest changed or the file is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from bulletin.config.model import Config
from bulletin.errors import ContentError
from bulletin.files import ReadRefused, inside, read_capped, write_atomically, write_if_changed

if TYPE_CHECKING:
    from bulletin.pipeline.staging import Staged

#: The largest file of static/ copied into public/ (an image, a PDF); larger ones are an
#: error, not a silent truncation.
MAX_ASSET_BYTES = 50 * 1024 * 1024


def write_public(
    config: Config,
    files: Mapping[str, bytes],
    inputs: Mapping[str, str] | None = None,
    staged: Staged | None = None,
) -> list[str]:
    """Write `files` (paths relative to public/) and the site's static/ folder and emblems;
    `inputs`, the digest of the inputs of each file, is remembered for the next run.
    `staged`: the folder the files were written into as they were rendered, which becomes
    public/ (see pipeline.staging).

    Unchanged files are left alone; every write is atomic, so a reader (or `serve`) never
    sees half a page. Returns the paths written, relative to the site.
    """
    public = config.public_dir
    everything = dict(files)
    try:
        everything.update(_assets(config))
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    if staged is not None and staged.publish(everything):
        written = [public / name for name in sorted(everything)]
    else:
        from bulletin.pipeline.staging import clear_abandoned

        clear_abandoned(config.state_dir)
        written = []
        folders: set[Path] = set()
        for name, data in sorted(everything.items()):
            path = public / name
            if write_if_changed(path, data, mode=0o644, folders=folders):
                written.append(path)
    if inputs:
        # The archive's digest holds once every file is written (the files of this run's
        # inputs that were not are current).
        PublicState(config).remember({n: k for n, k in inputs.items() if n in files or not n})
    return [p.relative_to(config.root).as_posix() for p in written]


def _assets(config: Config) -> dict[str, bytes]:
    """The site's static/ folder and emblems, by their paths in public/."""
    static = config.root / "static"
    sources = {p for p in static.rglob("*") if p.is_file()} if static.is_dir() else set()
    sources |= {config.root / f.emblem for f in config.funding.values()}
    assets = {}
    for source in sorted(sources):
        # A link in static/ leading out of the site (a key, a password file) is not
        # published; the emblem's path was checked with the configuration.
        if not inside(source, config.root):
            continue
        shown = source.relative_to(config.root)
        try:
            assets[shown.as_posix()] = read_capped(source, MAX_ASSET_BYTES)
        except ReadRefused as exc:
            raise ContentError(f"{shown.as_posix()}: bulletin will not publish it: {exc}") from exc
    return assets


def clear_previews(config: Config) -> None:
    shutil.rmtree(config.public_dir / "preview", ignore_errors=True)


STATE = "public.state"
#: the name under which the state keeps the digest of the whole archive (not a file)
SITE = ""
_PACKAGE = Path(__file__).resolve().parent.parent
#: the code, catalogs and libraries that decide what a file of public/ holds
_CODE = ("render", "locales", "content", "compliance.py", "pipeline/public.py")
_LIBRARIES = ("Jinja2", "feedgen", "icalendar", "lxml", "mjml", "Babel", "markupsafe")


def fingerprint(config: Config) -> str:
    """A digest of everything a file of public/ depends on besides its own inputs: the
    configuration, the site's templates and catalogs, bulletin's, and the libraries."""
    from bulletin.render.i18n import SITE_LOCALES
    from bulletin.render.templates import DEFAULT_TEMPLATES

    hashed = hashlib.sha256(f"{config.root}\0{config.model_dump_json()}\0".encode())
    sources: list[Path] = []
    for folder in (config.root / "templates", config.root / SITE_LOCALES, DEFAULT_TEMPLATES):
        sources += _files_under(folder) if folder.is_dir() else []
    for name in _CODE:
        path = _PACKAGE / name
        sources += _files_under(path) if path.is_dir() else [path]
    for source in sources:
        hashed.update(f"{source}\0".encode())
        with contextlib.suppress(OSError):
            hashed.update(hashlib.sha256(source.read_bytes()).digest())
    for library in _LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):
            hashed.update(f"{library}={version(library)}\0".encode())
    return hashed.hexdigest()


#: the state last read or written in this process, by its path: the file's identity and
#: times, its fingerprint and inputs (a publish reads it to render, then again to write)
_KNOWN: dict[Path, tuple[tuple[int, int, int, int], str, dict[str, str]]] = {}


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _files_under(folder: Path) -> list[Path]:
    """The files under `folder`, sorted, without Python's compiled bytecode: whether a run
    wrote it (`python -B`, PYTHONDONTWRITEBYTECODE, a read-only install, an import that
    came first) changes nothing a file of public/ holds, and must not render it again."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


class PublicState:
    """What public/ was last written from: for each file, the digest of its inputs."""

    def __init__(self, config: Config) -> None:
        self.public = config.public_dir
        self.path = config.state_dir / STATE
        self.fingerprint = fingerprint(config)
        self.inputs: dict[str, str] = {}
        identity = _identity(self.path)
        known = _KNOWN.get(self.path)
        if identity is not None and known is not None and known[0] == identity:
            # The very file this process read or wrote (a write replaces it: a new inode).
            self.inputs = dict(known[2]) if known[1] == self.fingerprint else {}
            return
        try:
            stored = pickle.loads(self.path.read_bytes())  # noqa: S301 -- bulletin's own file
            if stored[0] == self.fingerprint:
                self.inputs = dict(stored[1])
            if identity is not None:
                _KNOWN[self.path] = (identity, stored[0], dict(stored[1]))
        except Exception:  # missing, damaged, or from other templates or code: render all
            self.inputs = {}

    def current(self, name: str, key: str) -> bool:
        """public/`name` was written from inputs of digest `key` and is still there."""
        return self.inputs.get(name) == key and os.access(f"{self.public}/{name}", os.F_OK)

    def missing(self, names: Iterable[str]) -> list[str]:
        """Those of `names` that are not in public/ (gone since, or never written): one
        access(2) each, and nothing else per file. What bulletin wrote there is a file; a
        link is followed, as a web server would."""
        access, public, there = os.access, f"{self.public}/", os.F_OK
        return [name for name in names if not access(public + name, there)]

    def holds(self, site: str) -> bool:
        """Whether public/ was last written whole from the archive of digest `site` (see
        `public.Inputs.unchanged`), every file of it still there."""
        if self.inputs.get(SITE) != site:
            return False
        return not self.missing(name for name in self.inputs if name)

    def remember(self, inputs: Mapping[str, str]) -> None:
        if all(self.inputs.get(name) == key for name, key in inputs.items()):
            return
        self.inputs.update(inputs)
        data = pickle.dumps((self.fingerprint, self.inputs), protocol=pickle.HIGHEST_PROTOCOL)
        # Not kept: the next run renders everything again; nothing is wrong in public/.
        try:
            write_atomically(self.path, data, mode=0o600)
        except OSError:
            return
        identity = _identity(self.path)
        if identity is not None:
            _KNOWN[self.path] = (identity, self.fingerprint, dict(self.inputs))
