"""The checked configuration kept between commands: a command whose bulletin.toml is byte
for byte the one checked before takes its values from the record, without parsing the
file's TOML or checking its values again (nor importing the validation library).

A record is kept in the user's cache folder (`$XDG_CACHE_HOME/bulletin/config/`, by
default `~/.cache/bulletin/config/`), one file per site folder, as the compiled catalogs
are. It is keyed by everything the checked values are a function of: the bytes of
bulletin.toml, the site folder as named, the code that checks them (this package and what
it uses), pydantic's version and Python's. The checks that look outside the file (the
emblem files, the DKIM key) are not kept: they run every time (`loading._cross_checks`).
A record that cannot be read is a record not kept; a cache folder that cannot be written
keeps nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import sys
from pathlib import Path

from bulletin.config.model import Config
from bulletin.files import user_cache_folder, write_atomically

FORMAT = 1
#: the modules whose code decides what bulletin.toml is checked into
_CODE = (
    *sorted(p.name for p in Path(__file__).parent.glob("*.py")),
    "../files.py",
    "../errors.py",
    "../redaction.py",
)
#: pydantic's module that names its version and the pydantic-core version it requires
_PYDANTIC_VERSION = "version.py"


def record_key(root: Path, data: bytes) -> bytes:
    """The record's key for bulletin.toml holding `data` in the site folder `root`."""
    digest = hashlib.sha256(f"{FORMAT}\0{root}\0{sys.version}\0".encode())
    digest.update(hashlib.sha256(data).digest())
    here = Path(__file__).parent
    for name in _CODE:
        digest.update(_bytes_of(here / name, name))
    digest.update(_bytes_of(_pydantic_version(), "pydantic"))
    return digest.digest()


def _bytes_of(path: Path | None, name: str) -> bytes:
    try:
        return hashlib.sha256(path.read_bytes()).digest() if path else name.encode()
    except OSError:
        return name.encode()


def _pydantic_version() -> Path | None:
    """pydantic's version module, found without importing pydantic."""
    spec = importlib.util.find_spec("pydantic")
    folders = spec.submodule_search_locations if spec else None
    return Path(next(iter(folders))) / _PYDANTIC_VERSION if folders else None


def kept(root: Path, key: bytes) -> Config | None:
    """The configuration of the site folder `root` checked under `key`, or None."""
    path = _record(root)
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            if file.read(len(key)) != key:
                return None
            config = pickle.load(file)  # noqa: S301 -- written by this user's own commands
    except Exception:
        return None
    return config if isinstance(config, Config) else None


def keep(root: Path, key: bytes, config: Config) -> None:
    """Keep `config` under `key` for the next command."""
    path = _record(root)
    if path is not None:
        data = key + pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            write_atomically(path, data)
        except OSError:
            return


def _record(root: Path) -> Path | None:
    """The record of the site folder `root`; None for a user without a home folder."""
    folder = user_cache_folder("config")
    if folder is None:
        return None
    name = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:32]
    return folder / f"{name}.pickle"
