"""A publish that found nothing to send, remembered (`.bulletin/idle.memo`), so that the next
one that finds the site as it was says so without loading the archive.

Finding that there is nothing to send means loading, validating and digesting every entry
of the archive: most of what a routine publish costs, once there are thousands. So the
conclusion is kept with a digest of what it was drawn from: every entry file's identity
and times (the entry cache's own test of a file being unchanged), the configuration,
bulletin's code and the libraries that read entries, and the ledger's editions; and with
the digest of the archive public/ was written from. A publish whose digest is the same,
while public/ holds that archive with every file still there, has nothing to send either,
and nothing to write. Anything else (an edit, a new or removed file, an approval, a new key,
a new edition, a resend, another version of bulletin) loads the site as before.

Time moves on, too: an approved entry waiting for its `publish_at` ends the memo then. A
file changed within a clock's tick of the memo is never trusted to it (it is not kept), and
one that is not a plain file (a link) keeps none. A memo that cannot be read is a miss;
one that cannot be written is not kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bulletin.config.model import Config
from bulletin.content.cache import RACY_NS, fingerprint
from bulletin.content.entries import Listed
from bulletin.files import write_atomically
from bulletin.pipeline.write import PublicState

if TYPE_CHECKING:
    import sqlalchemy as sa

FILE = "idle.memo"
FORMAT = 1
_PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Idle:
    """What the last publish with nothing to send said, and what it held."""

    #: the digest of what the conclusion was drawn from (see the module's docstring)
    key: bytes
    #: the digest of the archive public/ was written from (`Inputs.unchanged`)
    site: str
    #: the plan's notes (how many entries, approved, published, waiting)
    notes: tuple[str, ...]
    #: when the first approved entry waiting for its publish_at is due (None: none waits)
    until: dt.datetime | None


class Memo:
    """The site as a publish finds it (its entry files listed, the ledger read in brief),
    and what the memo says of it."""

    def __init__(self, config: Config, engine: sa.Engine) -> None:
        from bulletin.store import ledger

        self.path = config.state_dir / FILE
        self.config = config
        self.listed = Listed(config)
        with engine.connect() as db:
            editions = ledger.in_brief(db)
        self.key = _key(config, self.listed, editions)

    def hit(self, now: dt.datetime) -> tuple[list[str], dict[str, str]] | None:
        """The notes and public/ inputs of a publish with nothing to send, if the memo holds
        one for the site as it is now and public/ is as that publish left it; else None."""
        if self.key is None:
            return None
        try:
            stored = pickle.loads(self.path.read_bytes())  # noqa: S301 -- bulletin's own file
            if stored[0] != FORMAT or type(stored[1]) is not Idle:
                return None
            idle: Idle = stored[1]
        except Exception:  # missing, damaged, or from another version
            return None
        if idle.key != self.key or (idle.until is not None and now >= idle.until):
            return None
        state = PublicState(self.config)
        if not state.holds(idle.site):
            return None  # written since from another archive, templates or code; or a file gone
        return list(idle.notes), dict(state.inputs)

    def remember(self, notes: list[str], site: str | None, until: dt.datetime | None) -> None:
        """Keep what a publish that found nothing to send said, for the site as listed."""
        if self.key is None or not site:
            return
        cutoff = time.time_ns() - RACY_NS
        if any(s is None or max(s[3], s[4]) >= cutoff for s in self.listed.seen.values()):
            return  # a file too recent to be trusted by its times alone: no memo
        data = pickle.dumps((FORMAT, Idle(self.key, site, tuple(notes), until)))
        with contextlib.suppress(OSError):  # not kept: the next publish loads the site
            if self.path.exists() and self.path.read_bytes() == data:
                return  # kept already
            write_atomically(self.path, data, mode=0o600)


def _key(config: Config, listed: Listed, editions: tuple[object, ...]) -> bytes | None:
    if any(s is None for s in listed.seen.values()):
        return None  # a link or an unreadable file: its times say nothing of its text
    digest = hashlib.sha256(f"{FORMAT}\0".encode())
    digest.update(fingerprint(config))  # the folder, configuration, content code, libraries
    digest.update(_code())
    digest.update(pickle.dumps((list(listed.seen.items()), editions), pickle.HIGHEST_PROTOCOL))
    return digest.digest()


@functools.cache
def _code() -> bytes:
    """bulletin's code as installed: each module's path, size and times (a process runs the
    code it started with)."""
    found = []
    for folder, dirs, names in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                found.append((folder, name, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return pickle.dumps(found, pickle.HIGHEST_PROTOCOL)
