"""Makes the transports a site's configuration names: the outbox, or SMTP and signed
webhooks. The edge (the command line, a flow, the web service) calls it and passes the
factory in; nothing below it chooses a transport."""

from __future__ import annotations

from collections.abc import Callable

from bulletin.config.model import Config
from bulletin.delivery.transports import OutboxTransport, Transport, TransportFactory
from bulletin.errors import ConfigError


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
