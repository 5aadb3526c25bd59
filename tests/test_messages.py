"""Personalised messages: the SMTP wire form made beside the message is the message."""

from __future__ import annotations

import datetime as dt

import pytest

from bulletin.config import Smtp, load_config
from bulletin.content.entries import load_entries
from bulletin.delivery.smtp import SmtpTransport
from bulletin.mail.compiled import CompiledEmail
from bulletin.mail.message import Message, wire_form
from bulletin.render.renderer import Renderer
from tests.smtp_server import smtp_server

WHEN = dt.datetime(2019, 11, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def personalised(site) -> list[Message]:
    config = load_config(site)
    entries = load_entries(config).entries
    rendered = Renderer(config).email(entries, "2019-11-20-1", config.lists["news"].name)
    compiled = CompiledEmail(config, rendered, "2019-11-20-1", "news", config.lists["news"])
    return [
        compiled.personalise(address, f"token-{n}", WHEN, name)
        for n, (address, name) in enumerate(
            [("ana@example.org", "Ana Popescu"), ("ivan@example.org", ""), ("x.y@example.org", "")]
        )
    ]


def test_wire_form_is_the_message_dot_stuffed(personalised):
    for message in personalised:
        assert message.wire == wire_form(message.data)
    # The check means something only if the email has lines to escape: its CSS has.
    assert b"\r\n." in personalised[0].data


def test_compiled_messages_arrive_byte_for_byte_over_smtp(personalised):
    with smtp_server() as server:
        with SmtpTransport(Smtp(host=server.host, port=server.port, timeout=5.0)) as transport:
            for message in personalised:
                transport.send(message)
        assert [r.data for r in server.received] == [m.data for m in personalised]
