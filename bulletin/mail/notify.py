"""Tells the site's comms address, by email, that a run failed for good and why."""

from __future__ import annotations

import datetime as dt
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from bulletin.config import Config
from bulletin.mail.message import Message


def failure_notice(config: Config, edition: str | None, headline: str, report: str) -> Message:
    """An email to `[delivery] notify` saying what failed; `report` is the run's Markdown."""
    assert config.delivery.notify
    email = EmailMessage(policy=SMTP)
    email["From"] = config.sender.from_
    email["To"] = config.delivery.notify
    email["Subject"] = f"[{config.site.title}] publish failed: {headline}"
    email["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message_id = make_msgid(domain=config.sender.domain)
    email["Message-ID"] = message_id
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(
        f"{headline}\n\nEdition: {edition or '(none)'}\n\n{report}\n"
        "Run the same publish again once the cause is fixed: nothing is sent twice.\n"
    )
    return Message(
        channel="email",
        edition=edition or "no-edition",
        target="notify",
        recipient=config.delivery.notify,
        data=email.as_bytes(),
        name=f"notify-{uuid.uuid4().hex[:12]}",
        sender=config.sender.address,
        message_id=message_id,
    )
