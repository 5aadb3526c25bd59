"""Tells the site's comms address, by email, that a run failed for good and why."""

from __future__ import annotations

import datetime as dt
import uuid

from bulletin.config.model import Config
from bulletin.errors import ConfigError
from bulletin.mail.builder import compose
from bulletin.mail.message import Message


def failure_notice(config: Config, edition: str | None, headline: str, report: str) -> Message:
    """An email to `[delivery] notify` saying what failed; `report` is the run's Markdown.
    DKIM-signed like editions when the site signs."""
    assert config.delivery.notify

    def notice(sign: bool) -> Message:
        return compose(
            config,
            to=config.delivery.notify or "",
            subject=f"[{config.site.title}] publish failed: {headline}",
            text=(
                f"{headline}\n\nEdition: {edition or '(none)'}\n\n{report}\n"
                "Run the same publish again once the cause is fixed: nothing is sent twice.\n"
            ),
            when=dt.datetime.now(dt.UTC),
            edition=edition or "no-edition",
            target="notify",
            name=f"notify-{uuid.uuid4().hex[:12]}",
            reply_to=False,  # it goes to the site's own people, not to readers
            sign=sign,
        )

    try:
        return notice(sign=True)
    except ConfigError:
        # The DKIM key may be what failed the run: the notice then goes unsigned rather
        # than not at all.
        return notice(sign=False)
