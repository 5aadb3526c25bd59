"""Sends messages over one persistent SMTP connection, reconnecting when it drops."""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl

from pydantic import SecretStr

from bulletin.config.model import Smtp
from bulletin.delivery.transports import Deferred, Rejected, SendOutcome, Sent, Transport
from bulletin.errors import TransportUnavailable
from bulletin.mail.message import Message, wire_form

log = logging.getLogger(__name__)


def _sendmail(
    smtp: smtplib.SMTP,
    sender: str,
    recipient: str,
    data: bytes,
    options: list[str],
    wire: bytes | None = None,
) -> None:
    """`smtplib.SMTP.sendmail` for one recipient, raising the same errors, with less work
    per message: smtplib escapes leading dots with a multi-line regular expression over the
    whole message and copies it twice, and parses both addresses with `email.utils`, which
    together cost more than the rest of a send. `wire` is the message already escaped
    (`Message.wire`). When the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go
    in one write and their replies are read together: two round trips per message, not four.
    """
    if smtp.does_esmtp and smtp.has_extn("size"):
        options = [*options, f"size={len(data)}"]
    if "SMTPUTF8" in options:  # smtplib checks that the server offers it, and encodes
        _sendmail_stepwise(smtp, sender, recipient, options)
    else:
        tail = "".join(" " + option for option in options)
        commands = [f"MAIL FROM:{_quoted(sender)}{tail}", f"RCPT TO:{_quoted(recipient)}", "DATA"]
        if smtp.does_esmtp and smtp.has_extn("pipelining"):
            smtp.send("".join(command + "\r\n" for command in commands).encode("ascii"))
            replies = _replies(smtp, len(commands))
        else:
            replies = []
            for command in commands:
                smtp.send(command.encode("ascii") + CRLF)
                replies.append(smtp.getreply())
                if replies[-1][0] not in _EXPECTED[len(replies) - 1]:
                    break
        _check(smtp, sender, recipient, replies)
    smtp.send(wire or wire_form(data))
    code, reply = smtp.getreply()
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


#: The replies MAIL, RCPT and DATA expect.
_EXPECTED = ((250,), (250, 251), (354,))
CRLF = b"\r\n"
# An address written as it is between angle brackets; any other goes through smtplib.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _quoted(address: str) -> str:
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _replies(smtp: smtplib.SMTP, count: int) -> list[tuple[int, bytes]]:
    """The replies to `count` pipelined commands; fewer when the server hung up after
    refusing one (a 421 closes the channel)."""
    replies: list[tuple[int, bytes]] = []
    try:
        while len(replies) < count:
            replies.append(smtp.getreply())
            if replies[-1][0] == 421:
                break
    except smtplib.SMTPServerDisconnected:
        expected = zip(replies, _EXPECTED, strict=False)
        if all(code in codes for (code, _), codes in expected):
            raise  # nothing was refused: the connection was lost
    return replies


def _check(
    smtp: smtplib.SMTP, sender: str, recipient: str, replies: list[tuple[int, bytes]]
) -> None:
    """Raise smtplib's error for the first command refused, leaving the connection ready
    for the next message (or closed after a 421)."""
    for stage, (code, reply) in enumerate(replies):
        if code in _EXPECTED[stage]:
            continue
        if len(replies) == 3 and replies[2][0] == 354:  # DATA went through regardless:
            with contextlib.suppress(smtplib.SMTPException):  # end it empty (RFC 2920 3.1)
                smtp.send(b"." + CRLF)
                smtp.getreply()
        _abandon(smtp, code)
        if stage == 0:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        if stage == 1:
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        raise smtplib.SMTPDataError(code, reply)


def _sendmail_stepwise(smtp: smtplib.SMTP, sender: str, recipient: str, options: list[str]) -> None:
    """MAIL, RCPT and DATA through smtplib, one reply at a time."""
    code, reply = smtp.mail(sender, options)
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        _abandon(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: hang up on 421 ("closing channel"), else reset the transaction."""
    if code == 421:
        smtp.close()
    else:
        smtp._rset()  # type: ignore[attr-defined]  # sendmail's own reset: it swallows a broken connection


class SmtpConnectionError(TransportUnavailable):
    """The SMTP connection could not be set up as configured; no recipient is at fault."""


class SmtpTransport(Transport):
    """One persistent connection to the [delivery.smtp] server, for one thread at a time.

    It connects on the first send, and again on the first send after the connection broke.
    It never retries on its own: a refused message is its outcome (Deferred for 4xx and a
    lost connection, Rejected for 5xx) and the caller decides; a connection that cannot be
    set up raises SmtpConnectionError.
    `connections` counts the connections opened, `accepted` the messages the server took
    on the current one.
    """

    def __init__(
        self,
        settings: Smtp,
        credentials: tuple[str, SecretStr] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        # Made on first use: loading the system's CA certificates takes a noticeable
        # fraction of a second, wasted on a plain connection.
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self.connections = 0
        self.accepted = 0

    @property
    def server(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def send(self, message: Message) -> SendOutcome:
        smtp = self._connection()
        # Addresses outside ASCII need the server's SMTPUTF8; smtplib checks it offers it.
        options = [] if f"{message.sender}{message.recipient}".isascii() else ["SMTPUTF8"]
        try:
            _sendmail(smtp, message.sender, message.recipient, message.data, options, message.wire)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return self._refused(message.recipient, code, reply)
        except smtplib.SMTPSenderRefused as exc:
            # The envelope sender is the same for every message: a refusal (often "530
            # authentication required" or "553 not owned by user") is the run's problem.
            self._drop()
            raise SmtpConnectionError(
                f"{self.server} refused the sender {message.sender}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}; check [sender] from and the "
                "[delivery.smtp] login",
                misconfigured=500 <= exc.smtp_code < 600,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            return self._refused(message.recipient, exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError:
            return Rejected(
                f"{self.server} cannot take {message.recipient}: the address is not ASCII "
                "and the server does not offer SMTPUTF8"
            )
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return Deferred(
                f"lost the connection to {self.server} while sending to {message.recipient}: "
                f"{self._reason(exc)}; the next send reconnects"
            )
        self.accepted += 1
        return Sent(message.message_id)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass  # a polite goodbye only; the socket is closed below either way
        finally:
            smtp.close()

    def _refused(self, recipient: str, code: int, reply: bytes | str) -> Deferred | Rejected:
        if self._smtp is not None and self._smtp.sock is None:
            self._drop()  # smtplib hangs up after a 421 "closing channel"
        said = f"the message to {recipient}: {code} {_text(reply)}"
        if 500 <= code < 600:
            return Rejected(f"{self.server} rejected {said}")
        return Deferred(f"{self.server} deferred {said}")

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and self._smtp.sock is not None:
            return self._smtp
        self._drop()
        smtp = self._connect()
        try:
            self._greet(smtp)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        self.connections += 1
        self.accepted = 0
        log.debug("connected to %s (%s)", self.server, self.settings.security)
        return smtp

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        try:
            if settings.security == "ssl":
                return smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    timeout=settings.timeout,
                    context=self._tls(),
                )
            return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._connect_error(exc) from exc

    def _greet(self, smtp: smtplib.SMTP) -> None:
        """EHLO, STARTTLS when configured, and the login when there are credentials."""
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.settings.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SmtpConnectionError(
                        f"{self.server} does not offer STARTTLS, and [delivery.smtp] "
                        'security = "starttls" does not send in clear text; use the port '
                        'that offers it (often 587), or security = "ssl" for a port that '
                        "expects TLS from the start (often 465)",
                        misconfigured=True,
                    )
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if self._credentials is not None:
                self._login(smtp, *self._credentials)
        except SmtpConnectionError:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            raise self._connect_error(exc) from exc

    def _login(self, smtp: smtplib.SMTP, username: str, password: SecretStr) -> None:
        settings = self.settings
        where = f"check {settings.username_env} and {settings.password_env}"
        try:
            smtp.login(username, password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpConnectionError(
                f"{self.server} refused the login of {username!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}; {where}",
                misconfigured=True,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SmtpConnectionError(
                f"{self.server} does not offer a login (SMTP AUTH) on this connection; "
                'many servers offer it only over TLS: set security = "starttls" or "ssl" '
                "in [delivery.smtp], or unset username_env if it needs none",
                misconfigured=True,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise SmtpConnectionError(
                f"{self.server} did not complete the login of {username!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}",
                misconfigured=500 <= exc.smtp_code < 600,
            ) from exc
        except smtplib.SMTPException as exc:  # "No suitable authentication method found."
            raise SmtpConnectionError(
                f"{self.server} offers no login method that Python's smtplib speaks: {exc}",
                misconfigured=True,
            ) from exc

    def _connect_error(self, exc: BaseException) -> SmtpConnectionError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return SmtpConnectionError(
                f"the SMTP server's certificate is not trusted: {exc.verify_message} "
                f"({self.server}); install the certificate of the CA that signed it on this "
                "machine (or point SSL_CERT_FILE at it), check that [delivery.smtp] host is "
                "the name in the certificate, or set security to match the server",
                misconfigured=True,
            )
        if isinstance(exc, ssl.SSLError):
            return SmtpConnectionError(
                f"TLS with {self.server} failed: {exc.reason or exc}; check [delivery.smtp] "
                'security and port: "ssl" usually goes with port 465, "starttls" with 587',
                misconfigured=True,
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            return SmtpConnectionError(
                f"{self.server} would not start a session: {exc.smtp_code} {_text(exc.smtp_error)}",
                misconfigured=500 <= exc.smtp_code < 600,
            )
        return SmtpConnectionError(
            f"cannot connect to the SMTP server {self.server}: {self._reason(exc)}",
            misconfigured=False,
        )

    def _reason(self, exc: BaseException) -> str:
        seen: BaseException | None = exc
        while seen is not None:  # smtplib turns a socket timeout into "unexpectedly closed"
            if isinstance(seen, TimeoutError):
                return f"no answer within {self.settings.timeout:g} s"
            seen = seen.__cause__ or seen.__context__
        return str(exc) or type(exc).__name__

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def _text(reply: bytes | str) -> str:
    """A server reply as one line of text, for messages and the ledger."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())
