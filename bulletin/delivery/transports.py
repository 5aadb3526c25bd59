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

from bulletin.errors import ConfigError
from bulletin.files import write_atomically
from bulletin.mail.message import Message

if TYPE_CHECKING:
    from bulletin.config import Config


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


def from_config(config: Config, *, partners: bool = True) -> TransportFactory:
    """The transports `[delivery] transport` names: the outbox, or SMTP for email and
    signed webhooks over HTTPS for webhook partners (their email partners go by SMTP).

    The SMTP credentials (perhaps a Prefect Secret block) are read, and the TLS context
    made, once for all of the run's connections. Every partner's secret is read here,
    before anything is sent, so a missing one stops the run with a configuration error
    rather than failing a partner for good; `partners=False` (a batch of email only, on a
    machine that holds no partner secrets) reads none.
    """
    if config.delivery.transport == "outbox":
        return TransportFactory(lambda: OutboxTransport(config.outbox_dir))
    if config.delivery.transport != "smtp":
        raise ConfigError(
            f"delivery.transport = {config.delivery.transport!r} is not available in this "
            'version; use "outbox"'
        )
    import ssl

    from bulletin.config.secrets import smtp_credentials
    from bulletin.delivery.smtp import SmtpTransport

    settings = config.delivery.smtp
    credentials = smtp_credentials(settings)
    context = ssl.create_default_context() if settings.security != "none" else None

    def email() -> Transport:
        return SmtpTransport(settings, credentials, ssl_context=context)

    if not partners:
        return TransportFactory(email, _no_partners)
    return TransportFactory(email, _partners(config, email))


def _partners(config: Config, email: Callable[[], Transport]) -> Callable[[str], Transport]:
    from bulletin.config.secrets import partner_secret
    from bulletin.delivery.webhooks import WebhookTransport

    secrets = {
        key: partner_secret(partner, key)
        for key, partner in config.partners.items()
        if partner.webhook
    }

    def partner(key: str) -> Transport:
        found = config.partners[key]
        if found.webhook:
            return WebhookTransport(key, found.webhook, secrets[key], timeout=found.timeout)
        return email()

    return partner


def _no_partners(key: str) -> Transport:
    raise ConfigError(f"partner {key}: this run was set up to send email only")
