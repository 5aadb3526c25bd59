"""What validating an entry found that depends on the entry and the configuration alone:
whether its signed approval verifies, and altered copies of a funding text in its body.

Both cost time at every publish (an Ed25519 signature, a fuzzy match of every sentence), so
they are remembered in `.bulletin/checks.cache`, keyed by a digest of the entry (fields,
front matter, line numbers) under a fingerprint of the configuration and the code that
decides them: an edit, a new approver key or new funding texts are always seen. A cache
that cannot be read is ignored; one that cannot be written is not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
from collections.abc import Iterable
from pathlib import Path

from bulletin.compliance import near_misses
from bulletin.config.model import Config
from bulletin.content.entries import Entry
from bulletin.errors import Problem
from bulletin.files import write_atomically
from bulletin.pipeline.public import entry_digest

FILE = "checks.cache"
_PACKAGE = Path(__file__).resolve().parent.parent
_CODE = (
    "compliance.py",
    "pipeline/checked.py",
    "pipeline/public.py",
    *(f"content/{p.name}" for p in sorted((_PACKAGE / "content").glob("*.py"))),
)
#: each approval's verdict, once decided in this process (choose and due ask again)
_DECIDED: dict[tuple[str, bytes], Problem | None] = {}
_FINGERPRINTS: dict[int, tuple[Config, str]] = {}  # the config is kept: its id stays its own


def _fingerprint(config: Config) -> str:
    known = _FINGERPRINTS.get(id(config))
    if known is not None:
        return known[1]
    if len(_FINGERPRINTS) > 16 or len(_DECIDED) > 200_000:
        _FINGERPRINTS.clear()
        _DECIDED.clear()
    hashed = hashlib.sha256(f"{config.root}\0{config.model_dump_json()}".encode())
    for name in _CODE:
        with contextlib.suppress(OSError):
            hashed.update((_PACKAGE / name).read_bytes())
    _FINGERPRINTS[id(config)] = (config, hashed.hexdigest())
    return _FINGERPRINTS[id(config)][1]


class Verdicts:
    """Each entry's approval problem and near-miss problems, remembered by its digest."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.path = config.state_dir / FILE
        self.fingerprint = _fingerprint(config)
        self._old: dict[bytes, tuple[Problem | None, list[Problem]]] = {}
        self._new: dict[bytes, tuple[Problem | None, list[Problem]]] = {}
        try:
            stored = pickle.loads(self.path.read_bytes())  # noqa: S301 -- bulletin's own file
            if stored[0] == self.fingerprint:
                self._old = stored[1]
        except Exception:  # missing, damaged or from another configuration: decide afresh
            self._old = {}

    def all(self, entries: Iterable[Entry]) -> list[Problem]:
        """Each entry's approval problem (if any) and, unless withdrawn, its near-misses,
        in one pass (an archive has thousands)."""
        problems: list[Problem] = []
        old, new, fingerprint = self._old, self._new, self.fingerprint
        for entry in entries:
            digest = entry_digest(entry)
            found = old.get(digest)
            if found is None:
                found = self._decide(entry)
            new[digest] = found
            _DECIDED[(fingerprint, digest)] = found[0]
            if found[0] is not None:
                problems.append(found[0])
            problems += found[1]
        return problems

    def _decide(self, entry: Entry) -> tuple[Problem | None, list[Problem]]:
        from bulletin.content.approval import approval_problem  # a signature to verify

        live = entry.status != "withdrawn"
        return approval_problem(self.config, entry), (
            near_misses(self.config, [entry]) if live else []
        )

    def save(self) -> None:
        """Keep the verdicts of the entries seen by this validation (those gone are dropped)."""
        if self._new.keys() == self._old.keys():
            return
        data = pickle.dumps((self.fingerprint, self._new), protocol=pickle.HIGHEST_PROTOCOL)
        with contextlib.suppress(OSError):
            write_atomically(self.path, data, mode=0o600)


def is_publishable(config: Config, entry: Entry) -> bool:
    """`content.approval.is_publishable`, from the verdict validation reached if it did."""
    if entry.status != "approved":
        return False
    key = (_fingerprint(config), entry_digest(entry))
    if key not in _DECIDED:
        from bulletin.content.approval import approval_problem

        _DECIDED[key] = approval_problem(config, entry)
    return _DECIDED[key] is None
