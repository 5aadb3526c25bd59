"""The tables of bulletin.toml about people and mailboxes beside the publish itself: who
may approve (`[approvers.ID]`, public keys only) and where reports come back (`[inbound]`)."""

from __future__ import annotations

import base64
import re
from dataclasses import field
from typing import Literal

from bulletin.config.base import Section, checks, table

APPROVER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@table
class Approver(Section):
    """[approvers.ID]: someone whose `bulletin approve` makes entries publishable."""

    name: str
    #: "ed25519:" and the base64 of the raw 32-byte public key (`bulletin approvers add`)
    public_key: str

    @staticmethod
    @checks("name")
    def _name(value: str) -> str:
        if not value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must be one line of text, such as Press Office")
        return value.strip()

    @staticmethod
    @checks("public_key")
    def _public_key(value: str) -> str:
        kind, _, data = value.partition(":")
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raw = b""
        if kind != "ed25519" or len(raw) != 32:
            raise ValueError(
                "is not an Ed25519 public key like ed25519:<base64>; copy the line that "
                "bulletin approvers add printed"
            )
        return value


@table
class Imap(Section):
    """[inbound.imap]: the mailbox bounces, complaints and unsubscribes arrive in."""

    host: str
    port: int | None = None  # 993 with ssl, else 143
    security: Literal["none", "starttls", "ssl"] = "ssl"
    username_env: str = "BULLETIN_IMAP_USERNAME"
    password_env: str | None = "BULLETIN_IMAP_PASSWORD"  # noqa: S105 (a variable name)
    #: the name of a Prefect Secret block holding the password, instead of password_env
    password_block: str | None = None
    folder: str = "INBOX"
    #: where a message goes once its outcome is recorded; "" flags it there instead
    done_folder: str = "bulletin-done"
    #: where a message that cannot be processed goes; "" leaves it in place
    error_folder: str = ""
    timeout: float = field(default=30.0, metadata={"gt": 0})

    @property
    def server_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)


@table
class Inbound(Section):
    """[inbound]: VERP envelope senders and the processing of what comes back to them."""

    return_path: str
    #: the tokenised mailto of List-Unsubscribe; default unsubscribe@ the return_path's domain
    unsubscribe_address: str | None = None
    soft_bounce_limit: int = field(default=3, metadata={"ge": 1})
    soft_bounce_days: int = field(default=30, metadata={"ge": 1})
    max_message_bytes: int = field(default=10 * 2**20, metadata={"ge": 1024})
    imap: Imap | None = None

    @staticmethod
    @checks("return_path", "unsubscribe_address")
    def _bare_address(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+\.[A-Za-z]+", value
        ):
            raise ValueError(
                f"{value!r} is not a bare address like bounces@example.org (no name, no '+')"
            )
        return value

    @property
    def unsubscribe(self) -> str:
        domain = self.return_path.rpartition("@")[2]
        return self.unsubscribe_address or f"unsubscribe@{domain}"
