"""Delivers messages: to the local outbox, or to a function (in memory); one interface.

    with transport:                      # a Transport is a context manager
        transport.send(message)          # raises DeliveryError (permanent or not)

Transports are made at the edge (the command line, a flow) and passed in; the core never
chooses one. SMTP and webhook backends implement the same three methods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bulletin.files import write_atomically
from bulletin.mail.message import Message


class Transport(Protocol):
    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...


class _Closing:
    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutboxTransport(_Closing):
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

    def send(self, message: Message) -> None:
        write_atomically(self.path_for(message), message.data)


class MemoryTransport(_Closing):
    """Hands every message to a function: for tests and for embedding bulletin."""

    def __init__(self, handler: Callable[[Message], None]) -> None:
        self.handler = handler

    def send(self, message: Message) -> None:
        self.handler(message)


def from_config(config) -> Transport:
    """The transport that `[delivery] transport` names, for the command line and flows."""
    return factory(config)()


def factory(config) -> Callable[[], Transport]:
    """Makes the configured transport, one per connection of a run.

    The SMTP credentials (perhaps a Prefect Secret block) are read, and the TLS context
    made, once for all of the run's connections.
    """
    if config.delivery.transport == "outbox":
        return lambda: OutboxTransport(config.outbox_dir)
    if config.delivery.transport == "smtp":
        import ssl

        from bulletin.config.secrets import smtp_credentials
        from bulletin.delivery.smtp import SmtpTransport

        settings = config.delivery.smtp
        credentials = smtp_credentials(settings)
        context = ssl.create_default_context() if settings.security != "none" else None
        return lambda: SmtpTransport(settings, credentials, ssl_context=context)
    from bulletin.errors import ConfigError

    raise ConfigError(
        f"delivery.transport = {config.delivery.transport!r} is not available in this "
        'version; use "outbox"'
    )


def partners_from_config(config) -> Callable[[str], Transport]:
    """Each partner's transport, as `[delivery] transport` says: the outbox, or signed
    webhooks over HTTPS and partner emails through the email transport.

    Every partner's secret is read here, before anything is sent, so a missing one stops
    the run with a configuration error rather than failing a partner for good.
    """
    if config.delivery.transport == "outbox":
        outbox = OutboxTransport(config.outbox_dir)
        return lambda key: outbox
    from bulletin.config.secrets import partner_secret
    from bulletin.delivery.webhooks import WebhookTransport

    secrets = {
        key: partner_secret(partner, key)
        for key, partner in config.partners.items()
        if partner.webhook
    }

    def make(key: str) -> Transport:
        partner = config.partners[key]
        if partner.webhook:
            return WebhookTransport(key, partner.webhook, secrets[key], timeout=partner.timeout)
        return from_config(config)

    return make
