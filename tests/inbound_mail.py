"""Builders of the messages that come back, for the inbound tests: DSNs, ARF reports,
auto-replies and mailto unsubscribes, each as the bytes a mail server would deliver."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from tests.smtp_server import Received


def _report(to: str, sender: str, subject: str, kind: str, text: str, parts: list[str]) -> bytes:
    """A multipart/report as mail servers write them, CRLF line ends."""
    lines = [
        f"From: {sender}", f"To: {to}", f"Subject: {subject}",
        "Date: Sun, 29 Nov 2026 10:00:00 +0000", "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type={kind}; boundary="REPORT"', "",
        "--REPORT", "Content-Type: text/plain; charset=us-ascii", "", text,
    ]  # fmt: skip
    for part in parts:
        lines += ["--REPORT", part]
    lines.append("--REPORT--")
    return ("\r\n".join(lines) + "\r\n").encode()


def _headers_of(original: bytes) -> str:
    return original.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")


def dsn(to: str, recipient: str, status: str, original: bytes = b"") -> bytes:
    """An RFC 3464 delivery status notification to `to` about `recipient`."""
    action = "failed" if status.startswith("5") else "delayed"
    fields = (
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} mailbox unavailable\r\n"
    )
    parts = [fields]
    if original:
        parts.append("Content-Type: text/rfc822-headers\r\n\r\n" + _headers_of(original))
    text = f"Your message to <{recipient}> could not be delivered."
    daemon = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
    subject = "Undelivered Mail Returned to Sender"
    return _report(to, daemon, subject, "delivery-status", text, parts)


def arf(original: bytes) -> bytes:
    """A feedback-loop complaint (RFC 5965) enclosing the original message's header."""
    fields = (
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
    )
    enclosed = "Content-Type: text/rfc822-headers\r\n\r\n" + _headers_of(original)
    return _report("abuse@example.org", "Feedback Loop <fbl@isp.example.net>", "Abuse report",
                   "feedback-report", "An abuse report.", [fields, enclosed])  # fmt: skip


def plain(to: str, sender: str, subject: str, **headers: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hello.\n")
    return message.as_bytes()


def to_maildir(folder: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(folder, create=True)
    for data in messages:
        box.add(data)
    return folder


def to_mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return path


def sent_to(received: list[Received], address: str) -> Received:
    return next(m for m in received if address in m.recipients)
