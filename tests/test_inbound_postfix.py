"""End to end with a real Postfix: bulletin publishes over SMTP; Postfix accepts the message
for an unknown user, then bounces it to the VERP envelope sender, into a Maildir; bulletin
processes that Maildir, and the next edition skips the address."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.delivery.smtp import SmtpTransport
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.store.database import connect, deliveries
from tests.conftest import run_cli
from tests.postfix_server import postfix, wait_for_mail

ENTRY = """\
---
title: The next workshop
date: 2019-12-20
language: en
status: draft
---
Experts meet again.
"""


def _site(site: Path, port: int) -> None:
    text = (site / "bulletin.toml").read_text()
    text = text.replace(
        "[lists.news]",
        f'[delivery]\ntransport = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\n\n'
        '[inbound]\nreturn_path = "bounces@example.org"\n\n[lists.news]',
    )
    # Only the subscribers: no external list (lists.example.org is nowhere), no partner.
    text = text[: text.index("[lists.desk]")]
    (site / "bulletin.toml").write_text(text)
    (site / "readers.csv").write_text("email\nana@example.org\ngone@example.org\n")


def _publish(site: Path):
    """Publish through the conductor (the flows' core, without a Prefect server), its email
    over SMTP to the site's server."""
    config = load_config(site)
    engine = connect(config.database_url)
    transports = TransportFactory(
        lambda: SmtpTransport(config.delivery.smtp), lambda key: MemoryTransport(lambda m: None)
    )
    try:
        return core.publish(site, steps=core.Steps(transports, engine=engine)).report
    finally:
        engine.dispose()


def test_a_postfix_bounce_to_the_verp_address_suppresses_and_the_next_edition_skips(site):
    with postfix(["ana", "bounces"]) as server:
        _site(site, server.port)
        imported = run_cli("subscribers", "import", "readers.csv", "--list", "news", site=site)
        assert imported.returncode == 0, imported.stderr
        first = _publish(site)
        assert first.per_list["news"]["sent"] == 2, server.log()
        # Postfix took both in the dialogue; the unknown user bounces afterwards, as a DSN.
        bounce = wait_for_mail(server.maildir("bounces"))[0]
        assert b"bounces+" in bounce.read_bytes()
        classified = run_cli("inbound", "classify", str(bounce), "--json", site=site)
        assert json.loads(classified.stdout)[0] | {"file": ""} == {
            "file": "", "kind": "bounce", "recipient": "gone@example.org",
            "status": "5.1.1", "permanent": True,
        }  # fmt: skip
        processed = run_cli(
            "inbound", "process", "--maildir", str(server.maildir("bounces")), "--json", site=site
        )
        assert processed.returncode == 0, processed.stderr
        report = json.loads(processed.stdout)
        assert report["suppressed"] == ["gone@example.org"]
        assert report["bounces"] == {"permanent": 1, "temporary": 0}
        (site / "content" / "2019-12-20-next.md").write_text(ENTRY)
        approved = run_cli("approve", "content/2019-12-20-next.md", "--by", "editor", site=site)
        assert approved.returncode == 0, approved.stderr
        edition = _publish(site).edition
        wait_for_mail(server.maildir("ana"), 2)
        log = server.log()
    assert log.count("to=<gone@example.org>") == 1  # the first edition only
    engine = connect(f"sqlite:///{site / '.bulletin' / 'bulletin.db'}")
    try:
        with engine.connect() as db:
            to = set(
                db.scalars(
                    sa.select(deliveries.c.recipient).where(
                        deliveries.c.edition_id == edition, deliveries.c.channel == "email"
                    )
                )
            )
    finally:
        engine.dispose()
    assert "ana@example.org" in to and "gone@example.org" not in to
