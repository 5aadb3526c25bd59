"""The SMTP transport against a server that offers PIPELINING (RFC 2920), as Postfix does:
MAIL, RCPT and DATA go in one write, and every fault still ends as it does one step at a time.

The transport tests of test_smtp.py and the delivery tests of test_smtp_delivery.py run
here again with the test server offering PIPELINING (aiosmtpd does not by itself).
"""

from __future__ import annotations

import smtplib

import pytest

from bulletin.delivery.smtp import SmtpTransport
from bulletin.delivery.transports import Rejected, Sent
from tests import smtp_server as served
from tests.smtp_server import smtp_server
from tests.test_smtp import (  # noqa: F401 -- collected again here, with PIPELINING offered
    message,
    settings,
    test_connection_dropped_during_data_fails_temporarily_then_reconnects,
    test_message_arrives_byte_for_byte,
    test_one_connection_carries_many_messages,
    test_retry_after_a_temporary_failure_is_delivered,
    test_server_reply_decides_whether_the_failure_is_permanent,
)
from tests.test_smtp_delivery import (  # noqa: F401
    test_faults_are_retried_or_recorded_and_one_bad_address_stops_nothing,
    test_publish_killed_at_any_moment_sends_everyone_exactly_once,
    test_server_down_stops_the_run_and_the_next_run_sends_the_rest,
)


async def _offer_pipelining(self, smtp, session, envelope, hostname, responses):
    session.host_name = hostname
    return [*responses[:-1], "250-PIPELINING", responses[-1]]


@pytest.fixture(autouse=True)
def pipelining(monkeypatch):
    monkeypatch.setattr(served._Handler, "handle_EHLO", _offer_pipelining, raising=False)


@pytest.fixture
def server():
    with smtp_server() as running:
        yield running


def _writes(monkeypatch) -> list[bytes]:
    """What the client writes to the socket, one item per write."""
    writes: list[bytes] = []
    send = smtplib.SMTP.send

    def counted(self, s):
        writes.append(s if isinstance(s, bytes) else s.encode())
        return send(self, s)

    monkeypatch.setattr(smtplib.SMTP, "send", counted)
    return writes


def test_commands_go_in_one_write_when_the_server_offers_pipelining(server, monkeypatch):
    with SmtpTransport(settings(server)) as transport:
        transport.send(message("first@example.org"))  # connects and greets
        writes = _writes(monkeypatch)
        for n in range(3):
            assert isinstance(transport.send(message(f"reader{n}@example.org")), Sent)

    per_message = [w for w in writes if not w.upper().startswith(b"QUIT")]
    assert len(per_message) == 6  # commands, then the data: two writes a message
    mail, rcpt, data, end = per_message[0].split(b"\r\n")
    assert mail.startswith(b"MAIL FROM:<news@example.org> size=")  # the server offers SIZE
    assert (rcpt, data, end) == (b"RCPT TO:<reader0@example.org>", b"DATA", b"")
    assert [r.recipients[0] for r in server.received][1:] == [
        f"reader{n}@example.org" for n in range(3)
    ]


def test_without_pipelining_each_command_waits_for_its_reply(server, monkeypatch):
    monkeypatch.delattr(served._Handler, "handle_EHLO")
    with SmtpTransport(settings(server)) as transport:
        transport.send(message("first@example.org"))
        writes = _writes(monkeypatch)
        assert isinstance(transport.send(message("reader0@example.org")), Sent)

    commands = [w for w in writes if not w.upper().startswith(b"QUIT")]
    assert [w.split(b":")[0].strip() for w in commands[:3]] == [b"MAIL FROM", b"RCPT TO", b"DATA"]
    assert len(commands) == 4


@pytest.mark.parametrize("fault", ["550", "451", "rcpt:553 5.1.3 Bad address"])
def test_a_refused_recipient_leaves_the_connection_ready_for_the_next(server, fault):
    server.plan("bob@example.org", [fault])
    with SmtpTransport(settings(server)) as transport:
        refused = transport.send(message("bob@example.org"))
        after = transport.send(message("carol@example.org"))

    assert not isinstance(refused, Sent)
    assert isinstance(refused, Rejected) == fault.removeprefix("rcpt:").startswith("5")
    assert isinstance(after, Sent)
    assert [r.recipients for r in server.received] == [("carol@example.org",)]
    assert server.connections == 1


def test_an_address_that_needs_quoting_is_quoted_as_smtplib_does(server):
    with SmtpTransport(settings(server)) as transport:
        sent = transport.send(message('"john smith"@example.org'))

    assert isinstance(sent, Sent)
    assert server.received[0].recipients == ('"john smith"@example.org',)
