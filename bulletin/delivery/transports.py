"""The one transport interface, its outcomes, the outbox and in-memory backends, and the factory.

    with factory.email() as transport:   # a Transport is a context manager
        outcome = transport.send(message)   # Sent | Deferred | Rejected

A message that cannot go is an outcome, not an exception: `Deferred` may go later,
`Rejected` never will. Only `TransportUnavailable` (server down, bad TLS or login) is
raised, because no message of the run can go. Transports are made at the edge (the command
line, a flow) through a `TransportFactory` and passed in; the core never chooses one. The
SMTP (delivery.smtp) and webhook (delivery.webhooks) backends subclass the same `Transport`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

from bulletin.files import write_atomically
from bulletin.mail.message import Message

if TYPE_CHECKING:
    pass


@dataclass(slots=True)
class Sent:
    """The message was taken; `message_id` is the one it carries."""

    message_id: str = ""


@dataclass(slots=True)
class Deferred:
    """A temporary failure: trying again later may work, after `retry_after` seconds when
    the other side asked for a wait."""

    detail: str
    retry_after: float | None = None


@dataclass(slots=True)
class Rejected:
    """A permanent failure: the same message will never be taken."""

    detail: str


SendOutcome = Sent | Deferred | Rejected


class Transport(ABC):
    """Sends messages one at a time; closed when done (it is a context manager)."""

    @abstractmethod
    def send(self, message: Message) -> SendOutcome:
        """Deliver `message`; raises only TransportUnavailable, when nothing can go."""

    def close(self) -> None:  # noqa: B027 -- most backends hold nothing to release
        """Release the connection, if any."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutboxTransport(Transport):
    """Writes each message into outbox/: nothing leaves the machine.

    Emails go to outbox/email/<edition>/<name>.eml, byte for byte what SMTP would carry;
    partner payloads to outbox/partners/<partner>/<edition>.json. Writes are atomic and
    names are stable, so a message written twice after a crash is still one file.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, message: Message) -> Path:
        if message.channel == "email":
            return self.root / "email" / message.edition / f"{message.name}.eml"
        return self.root / "partners" / message.target / f"{message.edition}.json"

    def send(self, message: Message) -> SendOutcome:
        write_atomically(self.path_for(message), message.data)
        return Sent(message.message_id)


class MemoryTransport(Transport):
    """Hands every message to a function: for tests and for embedding bulletin.

    The function returns the outcome, or None for `Sent`.
    """

    def __init__(self, handler: Callable[[Message], SendOutcome | None]) -> None:
        self.handler = handler

    def send(self, message: Message) -> SendOutcome:
        outcome = self.handler(message)
        return Sent(message.message_id) if outcome is None else outcome


class TransportFactory:
    """Makes the transports of a run, each new and closed by whoever asked for it.

    `email()` opens one connection for the lists' email (the delivery engine asks once per
    worker); `partner(key)` makes a partner's transport: `partner(key)` when given, else an
    email one (an email partner, or a test that sends everything to one place).
    """

    def __init__(
        self,
        email: Callable[[], Transport],
        partner: Callable[[str], Transport] | None = None,
    ) -> None:
        self._email = email
        self._partner = partner

    def email(self) -> Transport:
        return self._email()

    def partner(self, key: str) -> Transport:
        return self._partner(key) if self._partner is not None else self._email()
