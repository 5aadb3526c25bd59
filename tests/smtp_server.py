"""A real SMTP server in the test process (aiosmtpd) that records mail and plays planned faults.

    with smtp_server() as server:                       # mode "none" | "starttls" | "ssl"
        server.plan("bob@example.org", ["451", "ok"])   # bob's 1st attempt: 451, 2nd: accepted
        server.plan_next(["drop"])                      # the next attempt to anyone else
        ...send to server.host, server.port...
        server.received      # [Received(sender, recipients, data, connection, tls, login)]
        server.connections   # connections accepted so far
        server.attempts      # [(recipient, fault)] in the order the server saw them

A fault is played once, for one message attempt, when the server sees its RCPT:

    "ok"                  accept the message
    "451", "550", ...     answer that code with a stock reply, at RCPT ("421" also hangs up)
    "data:554"            the same, after the message data instead of at RCPT
    "550 5.1.1 No such"   a reply of your own, at RCPT (or "data:550 5.1.1 No such")
    "drop"                take the data, then close the connection without a reply
    "stall"               take the data, then say nothing for `stall_seconds` and hang up

`make_tls_files` makes a private CA and a server certificate for localhost and 127.0.0.1;
`smtp_server(mode="starttls" | "ssl", tls=...)` serves with it, and a client trusts it
through `tls.client_context()`. `users={"alice": "secret"}` requires a login (AUTH).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"

REPLIES = {
    "421": "421 4.3.2 Service shutting down, closing channel",
    "450": "450 4.2.1 Mailbox busy, try again later",
    "451": "451 4.3.0 Local error in processing, try again later",
    "452": "452 4.2.2 Insufficient system storage",
    "550": "550 5.1.1 Mailbox unavailable",
    "552": "552 5.2.2 Mailbox full",
    "553": "553 5.1.3 Mailbox name not allowed",
    "554": "554 5.7.1 Transaction failed",
}


@dataclass(frozen=True)
class Received:
    """A message the server accepted."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes  # exactly the bytes sent, dot-stuffing undone; ends with CRLF
    connection: int  # 1 for the first connection the server accepted, 2 for the next...
    tls: bool
    login: str | None


@dataclass(frozen=True)
class TlsFiles:
    cafile: Path
    certfile: Path
    keyfile: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that verifies, trusting this CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cafile))


def make_tls_files(directory: Path) -> TlsFiles:
    """A private CA and a certificate it signed for localhost and 127.0.0.1, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def builder(subject: str, issuer: x509.Name, key) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )

    def usage(**allowed: bool) -> x509.KeyUsage:
        names = (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        )
        return x509.KeyUsage(**{name: allowed.get(name, False) for name in names})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bulletin test CA")])
    ca = (
        builder("bulletin test CA", ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        builder("localhost", ca_name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address(HOST)),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class SmtpServer:
    """What a test sees of the server: where it listens, what it received, what to play."""

    def __init__(self, *, users: dict[str, str] | None = None, stall_seconds: float = 5.0):
        self.host = HOST
        self.port = 0
        self.cafile: Path | None = None
        self.stall_seconds = stall_seconds
        self.users = dict(users or {})
        self._lock = threading.Lock()
        self._plans: dict[str, deque[str]] = {}
        self._next: deque[str] = deque()
        self._received: list[Received] = []
        self._attempts: list[tuple[str, str]] = []
        self._connections = 0

    def plan(self, recipient: str, faults: list[str]) -> None:
        """Faults for the next attempts to `recipient`, one each; then it is accepted."""
        for fault in faults:
            _parse(fault)
        with self._lock:
            self._plans.setdefault(recipient.lower(), deque()).extend(faults)

    def plan_next(self, faults: list[str]) -> None:
        """Faults for the next attempts to any recipient without a plan of its own."""
        for fault in faults:
            _parse(fault)
        with self._lock:
            self._next.extend(faults)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def attempts(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._attempts)

    def _connected(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections

    def _fault_for(self, recipient: str) -> str:
        with self._lock:
            plan = self._plans.get(recipient.lower())
            fault = plan.popleft() if plan else self._next.popleft() if self._next else "ok"
            self._attempts.append((recipient, fault))
            return fault

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)


def _parse(fault: str) -> tuple[str, str]:
    """(stage, action) for a fault: stage "rcpt" or "data", action "ok", "drop"... or a reply."""
    stage, action = ("", fault)
    if fault.startswith(("rcpt:", "data:")):
        stage, _, action = fault.partition(":")
    if action in ("drop", "stall"):
        return stage or "data", action
    if action == "ok":
        return stage or "rcpt", action
    reply = REPLIES.get(action, action)
    if not (reply[:3].isdigit() and reply[0] in "45" and (len(reply) == 3 or reply[3] == " ")):
        raise ValueError(f"unknown fault {fault!r}: use ok, drop, stall or an SMTP 4xx/5xx reply")
    return stage or "rcpt", reply


class _Handler:
    """aiosmtpd's hooks; they run on the server's event loop thread."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(self, smtp: SMTP, session: Session, envelope: Envelope, address, options):
        if self.server.users and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, smtp: SMTP, session: Session, envelope: Envelope, address, options):
        if not envelope.rcpt_tos:
            envelope.fault = _parse(self.server._fault_for(address))
        stage, action = envelope.fault
        if stage == "rcpt" and action != "ok":
            return await self._play(smtp, action)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope):
        stage, action = envelope.fault
        if stage == "data" and action != "ok":
            return await self._play(smtp, action)
        self.server._record(
            Received(
                sender=envelope.mail_from,
                recipients=tuple(envelope.rcpt_tos),
                data=envelope.original_content,
                connection=smtp.bulletin_connection,
                tls=smtp.transport.get_extra_info("ssl_object") is not None,
                login=session.auth_data,
            )
        )
        return "250 2.0.0 OK"

    async def _play(self, smtp: SMTP, action: str) -> str:
        if action == "stall":
            await asyncio.sleep(self.server.stall_seconds)
        if action in ("drop", "stall"):
            smtp.transport.close()
            await asyncio.Event().wait()  # connection_lost cancels this session's task
        if action.startswith("421"):
            # After the reply goes out: nothing suspends between here and aiosmtpd's push.
            smtp.loop.call_soon(smtp.transport.close)
        return action

    def authenticate(self, smtp, session, envelope, mechanism, data: LoginPassword) -> AuthResult:
        login, password = data.login.decode(), data.password.decode()
        ok = login in self.server.users and self.server.users[login] == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class _Controller(Controller):
    """Numbers the connections it accepts, leaving out the one `start` makes to probe."""

    def __init__(self, server: SmtpServer, handler: _Handler, **kwargs) -> None:
        super().__init__(handler, hostname=HOST, port=0, server_hostname="localhost", **kwargs)
        self.bulletin_server = server
        self._probing = True

    def factory(self) -> SMTP:
        smtp = super().factory()
        smtp.bulletin_connection = 0 if self._probing else self.bulletin_server._connected()
        return smtp

    def _trigger_server(self) -> None:
        # Port 0 lets the system pick a free port; the probe and the tests need the real one.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

    def start(self) -> None:
        super().start()
        self._probing = False


@contextmanager
def smtp_server(
    *,
    mode: str = "none",
    tls: TlsFiles | None = None,
    users: dict[str, str] | None = None,
    stall_seconds: float = 5.0,
) -> Iterator[SmtpServer]:
    """A running server on 127.0.0.1 and a free port, stopped on exit."""
    if mode not in ("none", "starttls", "ssl"):
        raise ValueError(f"mode {mode!r}: use none, starttls or ssl")
    if mode != "none" and tls is None:
        raise ValueError(f"mode {mode!r} needs tls=make_tls_files(...)")
    server = SmtpServer(users=users, stall_seconds=stall_seconds)
    handler = _Handler(server)
    kwargs: dict[str, object] = {}
    if users:
        kwargs["authenticator"] = handler.authenticate
        # handle_MAIL enforces the login: aiosmtpd's own auth_required warns without
        # STARTTLS, and it never offers AUTH on an implicit-TLS ("ssl") port otherwise.
        kwargs["auth_require_tls"] = mode == "starttls"
    if mode == "starttls":
        kwargs.update(tls_context=tls.server_context(), require_starttls=True)
    elif mode == "ssl":
        kwargs["ssl_context"] = tls.server_context()
    if tls is not None:
        server.cafile = tls.cafile
    controller = _Controller(server, handler, **kwargs)
    controller.start()
    server.port = controller.port
    try:
        yield server
    finally:
        controller.stop()
