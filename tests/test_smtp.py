"""The SMTP transport against a real SMTP server: delivery, reuse, faults, TLS and login."""

from __future__ import annotations

import dataclasses
import logging
import socket
import time

import pytest

from bulletin.config import Smtp
from bulletin.config.secrets import smtp_credentials
from bulletin.delivery.configured import from_config
from bulletin.delivery.smtp import SmtpConnectionError, SmtpTransport
from bulletin.delivery.transports import Deferred, Rejected, Sent
from bulletin.mail.message import Message
from tests.smtp_server import SmtpServer, make_tls_files, smtp_server

# Dot-stuffing, a lone dot, a long quoted-printable line and 8-bit-free MIME: what
# CompiledEmail produces, with the lines SMTP most easily gets wrong.
DATA = (
    b"To: bob@example.org\r\n"
    b"From: SELEC Communications <news@example.org>\r\n"
    b"Subject: Workshop in Sofia\r\n"
    b"Message-ID: <e1.news-en-0123456789abcdef@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b".a line that starts with a dot\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b"Police and customs experts met in Sofia =E2=80=94 " + b"x" * 60 + b"=\r\n"
    b"the end.\r\n"
)


def message(recipient: str = "bob@example.org", data: bytes = DATA) -> Message:
    return Message(
        channel="email",
        edition="e1",
        target="news-en",
        recipient=recipient,
        data=data,
        name=f"news-en-{recipient}",
        sender="news@example.org",
    )


def settings(server: SmtpServer, **changes) -> Smtp:
    return Smtp(**{"host": server.host, "port": server.port, "timeout": 2.0, **changes})


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server():
    with smtp_server() as running:
        yield running


# Without a line that starts with a dot the DATA step sends the message as it is; with
# one, the dots are doubled on the wire and undone by the server.
WITHOUT_DOTS = b"".join(line for line in DATA.splitlines(True) if not line.startswith(b"."))


@pytest.mark.parametrize(
    "data", [DATA, WITHOUT_DOTS, b"." + WITHOUT_DOTS], ids=["dots", "none", "first"]
)
def test_message_arrives_byte_for_byte(server, data):
    with SmtpTransport(settings(server)) as transport:
        sent = transport.send(message(data=data))

    assert isinstance(sent, Sent)
    [received] = server.received
    assert received.data == data
    assert received.sender == "news@example.org"
    assert received.recipients == ("bob@example.org",)


def test_one_connection_carries_many_messages(server):
    addresses = [f"reader{n}@example.org" for n in range(25)]
    with SmtpTransport(settings(server)) as transport:
        for address in addresses:
            transport.send(message(address))
        assert transport.accepted == 25

    assert [r.recipients[0] for r in server.received] == addresses
    assert {r.connection for r in server.received} == {1}
    assert server.connections == transport.connections == 1


@pytest.mark.parametrize(
    ("fault", "permanent", "reply"),
    [
        ("451", False, "451 4.3.0"),
        ("452", False, "452 4.2.2"),
        ("421", False, "421 4.3.2"),
        ("data:451", False, "451 4.3.0"),
        ("data:421", False, "421 4.3.2"),
        ("550", True, "550 5.1.1 Mailbox unavailable"),
        ("552", True, "552 5.2.2"),
        ("554", True, "554 5.7.1"),
        ("data:552", True, "552 5.2.2"),
        ("data:554", True, "554 5.7.1"),
    ],
)
def test_server_reply_decides_whether_the_failure_is_permanent(server, fault, permanent, reply):
    server.plan("bob@example.org", [fault])
    with SmtpTransport(settings(server)) as transport:
        refused = transport.send(message("bob@example.org"))
        assert isinstance(transport.send(message("carol@example.org")), Sent)

    assert isinstance(refused, Rejected if permanent else Deferred)
    assert reply in refused.detail
    assert "bob@example.org" in refused.detail
    assert [r.recipients for r in server.received] == [("carol@example.org",)]
    # A 421 closes the channel, so carol needed a new connection; other replies keep it.
    assert server.connections == (2 if "421" in fault else 1)


def test_retry_after_a_temporary_failure_is_delivered(server):
    server.plan("bob@example.org", ["451", "ok"])
    with SmtpTransport(settings(server)) as transport:
        deferred = transport.send(message())
        assert isinstance(deferred, Deferred) and "451" in deferred.detail
        assert isinstance(transport.send(message()), Sent)

    assert len(server.received) == 1
    assert server.attempts == [("bob@example.org", "451"), ("bob@example.org", "ok")]


def test_connection_dropped_during_data_fails_temporarily_then_reconnects(server):
    server.plan("bob@example.org", ["drop"])
    with SmtpTransport(settings(server)) as transport:
        dropped = transport.send(message())  # not SmtpConnectionError: only this message
        assert isinstance(dropped, Deferred)
        transport.send(message())
        assert transport.connections == 2

    assert "lost the connection" in dropped.detail
    assert [r.connection for r in server.received] == [2]


def test_stalled_server_times_out_after_the_configured_timeout():
    with smtp_server(stall_seconds=10) as server:
        server.plan("bob@example.org", ["stall"])
        with SmtpTransport(settings(server, timeout=1)) as transport:
            started = time.monotonic()
            stalled = transport.send(message())
            waited = time.monotonic() - started
            transport.send(message())

    assert 0.9 < waited < 3
    assert isinstance(stalled, Deferred)
    assert "no answer within 1 s" in stalled.detail
    assert [r.connection for r in server.received] == [2]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_a_trusted_certificate_delivers(tls, security):
    with smtp_server(mode=security, tls=tls) as server:
        transport = SmtpTransport(
            settings(server, security=security), ssl_context=tls.client_context()
        )
        with transport:
            transport.send(message())
            transport.send(message("carol@example.org"))

    assert [(r.tls, r.connection, r.data) for r in server.received] == [(True, 1, DATA)] * 2


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_untrusted_certificate_fails_the_connection_not_the_recipient(tls, security):
    with (
        smtp_server(mode=security, tls=tls) as server,
        SmtpTransport(settings(server, security=security)) as transport,
        pytest.raises(SmtpConnectionError) as caught,
    ):
        transport.send(message())

    assert "certificate is not trusted" in str(caught.value)
    assert caught.value.misconfigured is True
    assert caught.value.permanent is False  # never a reason to suppress bob
    assert server.received == []


def test_starttls_refuses_a_server_that_does_not_offer_it(server):
    with (
        SmtpTransport(settings(server, security="starttls")) as transport,
        pytest.raises(SmtpConnectionError, match="does not offer STARTTLS") as caught,
    ):
        transport.send(message())

    assert caught.value.misconfigured is True
    assert server.received == []


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_login_with_credentials_from_the_environment(tls, security, monkeypatch, caplog):
    monkeypatch.setenv("TEST_SMTP_USER", "alice")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret-Pa55word")
    caplog.set_level(logging.DEBUG)
    with smtp_server(mode=security, tls=tls, users={"alice": "s3cret-Pa55word"}) as server:
        config = settings(
            server,
            security=security,
            username_env="TEST_SMTP_USER",
            password_env="TEST_SMTP_PASSWORD",
        )
        with SmtpTransport(config, smtp_credentials(config), ssl_context=tls.client_context()) as t:
            t.send(message())

    assert [r.login for r in server.received] == ["alice"]
    assert "s3cret-Pa55word" not in caplog.text


def chain(error: BaseException | None) -> str:
    """Everything a traceback of `error` could show: messages and reprs, causes included."""
    text = ""
    while error is not None:
        text += f"{error!s} {error!r} {error.args!r}\n"
        error = error.__cause__ or error.__context__
    return text


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("wrong-Pa55word", "refused the login of 'alice': 535"),
        (None, "refused the sender news@example.org: 530"),
    ],
)
def test_failed_login_names_the_variables_but_never_the_password(
    tls, monkeypatch, caplog, password, expected
):
    monkeypatch.setenv("TEST_SMTP_USER", "alice")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", password or "")
    caplog.set_level(logging.DEBUG)
    with smtp_server(mode="starttls", tls=tls, users={"alice": "s3cret-Pa55word"}) as server:
        config = settings(server, security="starttls", username_env="TEST_SMTP_USER")
        config = dataclasses.replace(config, password_env="TEST_SMTP_PASSWORD")
        credentials = smtp_credentials(config) if password else None
        with (
            SmtpTransport(config, credentials, ssl_context=tls.client_context()) as transport,
            pytest.raises(SmtpConnectionError) as caught,
        ):
            transport.send(message())

    assert expected in str(caught.value)
    assert caught.value.permanent is False
    if password:
        assert "TEST_SMTP_USER and TEST_SMTP_PASSWORD" in str(caught.value)
        assert password not in chain(caught.value)
        assert password not in caplog.text
    assert server.received == []


def test_unreachable_server_is_a_temporary_connection_error():
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        SmtpTransport(Smtp(host="127.0.0.1", port=port, timeout=1)) as transport,
        pytest.raises(SmtpConnectionError, match=f"127.0.0.1:{port}") as caught,
    ):
        transport.send(message())

    assert caught.value.misconfigured is False
    assert caught.value.permanent is False


def test_smtp_config_sends_with_the_login_from_the_environment(config, tls, monkeypatch):
    monkeypatch.setenv("BULLETIN_SMTP_USERNAME", "alice")
    monkeypatch.setenv("BULLETIN_SMTP_PASSWORD", "s3cret-Pa55word")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cafile))  # how a site trusts a private CA
    with smtp_server(mode="starttls", tls=tls, users={"alice": "s3cret-Pa55word"}) as server:
        smtp = settings(
            server,
            security="starttls",
            username_env="BULLETIN_SMTP_USERNAME",
            password_env="BULLETIN_SMTP_PASSWORD",
        )
        delivery = dataclasses.replace(config.delivery, transport="smtp", smtp=smtp)
        configured = dataclasses.replace(config, delivery=delivery)
        with from_config(configured, partners=False).email() as transport:
            assert isinstance(transport, SmtpTransport)
            transport.send(message())

    assert [(r.login, r.tls) for r in server.received] == [("alice", True)]
