"""Where messages come back: an IMAP folder, a Maildir, or an mbox file, read one message at
a time (memory stays flat however large the mailbox). A message is marked done — moved to
the done folder, or flagged — only after its outcome is recorded; nothing is ever deleted.
"""

from __future__ import annotations

import imaplib
import mailbox
import os
import re
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from bulletin.config.model import Config
from bulletin.config.people import Imap
from bulletin.errors import ConfigError, SourceError


@dataclass(frozen=True)
class Incoming:
    """One message of a source: its bytes, or None when it is larger than the limit."""

    key: str
    data: bytes | None
    size: int


class Source(ABC):
    """A mailbox: its messages not done yet, and the marks for done and failed ones."""

    name: str = ""

    @abstractmethod
    def messages(self) -> Iterator[Incoming]: ...

    def done(self, item: Incoming) -> None:  # noqa: B027 - a read-only source marks nothing
        """The message's outcome is recorded: do not offer it again."""

    def failed(self, item: Incoming) -> None:  # noqa: B027
        """The message could not be processed: leave it where a person can look."""

    def close(self) -> None:  # noqa: B027
        """Let go of the mailbox."""

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class MaildirSource(Source):
    """A Maildir: messages in new/ and cur/ not yet seen; done ones get the Seen flag."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise SourceError(f"{path}: not a Maildir (it needs cur/ and new/ folders)")
        self.path, self.max_bytes, self.name = path, max_bytes, str(path)

    def messages(self) -> Iterator[Incoming]:
        for folder in ("new", "cur"):
            try:
                names = sorted(os.listdir(self.path / folder))
            except OSError as exc:
                raise SourceError(f"{self.path / folder}: cannot be read ({exc.strerror})") from exc
            for name in names:
                if name.startswith(".") or "S" in name.partition(":2,")[2]:
                    continue
                file = self.path / folder / name
                try:
                    size = file.stat().st_size
                    data = file.read_bytes() if size <= self.max_bytes else None
                except FileNotFoundError:  # another reader took it meanwhile
                    continue
                yield Incoming(f"{folder}/{name}", data, size)

    def done(self, item: Incoming) -> None:
        folder, name = item.key.split("/", 1)
        base, _, flags = name.partition(":2,")
        target = self.path / "cur" / f"{base}:2,{''.join(sorted(set(flags) | {'S'}))}"
        os.replace(self.path / folder / name, target)


class MboxSource(Source):
    """An mbox file, read only: processing it again is harmless (each message acts once)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        if not path.is_file():
            raise SourceError(f"{path}: no such mbox file")
        self.path, self.max_bytes, self.name = path, max_bytes, str(path)

    def messages(self) -> Iterator[Incoming]:
        try:
            box = mailbox.mbox(self.path, create=False)
            keys = box.keys()  # one pass over the file, keeping offsets only
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot be read ({exc.strerror})") from exc
        try:
            for key in keys:
                with box.get_file(key) as handle:  # at most the limit is read
                    data: bytes | None = handle.read(self.max_bytes + 1)
                size = len(data or b"")
                if size > self.max_bytes:
                    data = None
                yield Incoming(str(key), data, size)
        finally:
            box.close()


class ImapSource(Source):
    """An IMAP folder; done messages move to the done folder (or are flagged there)."""

    def __init__(self, settings: Imap, login: tuple[str, SecretStr], max_bytes: int) -> None:
        self.settings, self.max_bytes = settings, max_bytes
        self.name = f"imap://{settings.host}:{settings.server_port}/{settings.folder}"
        where = f"[inbound.imap] {settings.host}:{settings.server_port}"
        try:
            self._imap = self._connect(settings)
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            raise SourceError(
                f"{where}: cannot connect ({exc}); check host, port and security"
            ) from exc
        try:
            self._imap.login(login[0], login[1].get_secret_value())
        except imaplib.IMAP4.error as exc:
            self._imap.shutdown()
            raise SourceError(
                f"{where}: login refused for {login[0]}; check the user and password in "
                f"{settings.username_env} / {settings.password_env or settings.password_block}"
            ) from exc
        self._command("select", _quoted(settings.folder))
        # The capabilities after login, which name extensions such as MOVE (RFC 6851).
        listed = b" ".join(self._command("capability")).upper().split()
        self._moves = b"MOVE" in listed
        for folder in filter(None, (settings.done_folder, settings.error_folder)):
            self._imap.create(_quoted(folder))  # an error when it exists: that is fine

    @staticmethod
    def _connect(settings: Imap) -> imaplib.IMAP4:
        context = ssl.create_default_context()
        port, timeout = settings.server_port, settings.timeout
        if settings.security == "ssl":
            return imaplib.IMAP4_SSL(settings.host, port, ssl_context=context, timeout=timeout)
        imap = imaplib.IMAP4(settings.host, port, timeout=timeout)
        if settings.security == "starttls":
            imap.starttls(context)
        return imap

    def _command(self, name: str, *args: str) -> list[bytes]:
        try:
            status, data = getattr(self._imap, name)(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SourceError(f"{self.name}: {name} failed ({exc})") from exc
        if status != "OK":
            raise SourceError(f"{self.name}: {name} answered {status}: {data!r}")
        return [item if isinstance(item, bytes) else b"" for item in data]

    def messages(self) -> Iterator[Incoming]:
        query = "UNFLAGGED" if not self.settings.done_folder else "ALL"
        uids = b" ".join(self._command("uid", "SEARCH", query)).split()
        for uid in uids:
            fetched = self._raw_fetch(uid.decode(), "(RFC822.SIZE)")
            match = re.search(rb"RFC822\.SIZE (\d+)", fetched[0] if fetched else b"")
            size = int(match.group(1)) if match else 0
            data = None
            if size <= self.max_bytes:
                parts = self._raw_fetch(uid.decode(), "(BODY.PEEK[])")
                data = next((p for p in parts if isinstance(p, bytes) and p), None)
            yield Incoming(uid.decode(), data, size)

    def _raw_fetch(self, uid: str, what: str) -> list[bytes]:
        try:
            status, data = self._imap.uid("FETCH", uid, what)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SourceError(f"{self.name}: FETCH failed ({exc})") from exc
        if status != "OK":
            raise SourceError(f"{self.name}: FETCH answered {status}")
        found: list[bytes] = []
        for item in data:
            if isinstance(item, tuple):
                found.append(item[1] if what.startswith("(BODY") else item[0])
            elif isinstance(item, bytes) and not what.startswith("(BODY"):
                found.append(item)
        return found

    def _move(self, uid: str, folder: str) -> None:
        if self._moves:
            self._command("uid", "MOVE", uid, _quoted(folder))
        else:  # without MOVE (RFC 6851): copy, then flag the original as deleted
            self._command("uid", "COPY", uid, _quoted(folder))
            self._command("uid", "STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")

    def done(self, item: Incoming) -> None:
        if self.settings.done_folder:
            self._move(item.key, self.settings.done_folder)
        else:
            self._command("uid", "STORE", item.key, "+FLAGS.SILENT", r"(\Flagged \Seen)")

    def failed(self, item: Incoming) -> None:
        if self.settings.error_folder:
            self._move(item.key, self.settings.error_folder)

    def close(self) -> None:
        try:
            self._imap.close()
            self._imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def open_source(config: Config, maildir: Path | None = None, mbox: Path | None = None) -> Source:
    """The Maildir or mbox given, else the site's `[inbound.imap]` mailbox."""
    limit = config.inbound.max_message_bytes if config.inbound else 10 * 2**20
    if maildir is not None:
        return MaildirSource(maildir, limit)
    if mbox is not None:
        return MboxSource(mbox, limit)
    if config.inbound is None or config.inbound.imap is None:
        raise ConfigError(
            "bulletin.toml has no [inbound.imap] mailbox; add one (host, user and password "
            "variables), or name a source with --maildir DIR or --mbox FILE"
        )
    from bulletin.config.secrets import imap_login

    return ImapSource(config.inbound.imap, imap_login(config.inbound.imap), limit)
