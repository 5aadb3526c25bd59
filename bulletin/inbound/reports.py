"""Reads the standard report formats: delivery status notifications (RFC 3464
`message/delivery-status`) and abuse feedback reports (RFC 5965 `message/feedback-report`).

Both carry blocks of header-like fields; these functions return what bulletin acts on:
whom the report is about, the status code, and whether the failure is for good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
ARF_TYPES = ("message/feedback-report",)
ORIGINAL_TYPES = (
    "message/rfc822",
    "text/rfc822-headers",
    "message/global",
    "message/global-headers",
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"<?([^\s<>;\"]+@[^\s<>;\"]+?)>?$")


@dataclass(frozen=True)
class Report:
    """One recipient a DSN reports on, or the subject of a complaint."""

    recipient: str | None
    status: str | None
    permanent: bool | None
    action: str  # DSN Action (failed, delayed, delivered...), or the ARF Feedback-Type
    detail: str = ""


def parts(message: Message) -> list[Message]:
    """The message's parts, depth first, not descending into enclosed messages: the
    original a report returns is not part of the report."""
    found = [message]
    payload = message.get_payload()
    if message.is_multipart() and message.get_content_maintype() == "multipart":
        for part in payload if isinstance(payload, list) else []:
            if isinstance(part, Message):
                found.extend(parts(part))
    return found


def field_blocks(part: Message) -> list[Message]:
    """The blocks of fields of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parsed the blocks already
        return [block for block in payload if isinstance(block, Message)]
    text = part.get_payload(decode=True) or b""
    if not isinstance(text, bytes):
        return []
    decoded = text.decode("utf-8", "replace").replace("\r\n", "\n")
    parser = HeaderParser()
    return [parser.parsestr(chunk) for chunk in re.split(r"\n\s*\n", decoded) if chunk.strip()]


def address(value: str | None) -> str | None:
    """The address of a recipient field (`rfc822; a@b`, `<a@b>`, or bare), lowercased."""
    if not value:
        return None
    value = " ".join(value.split()).rpartition(";")[2].strip()
    match = _ADDRESS.search(value)
    return match.group(1).lower() if match else None


def status_code(text: str | None) -> str | None:
    """The first enhanced status code (RFC 3463) of class 4 or 5 in `text`."""
    if not text:
        return None
    for match in _STATUS.finditer(text):
        if match.group(1) in "45":
            return ".".join(match.groups())
    return None


def delivery_status(part: Message) -> list[Report]:
    """The per-recipient reports of a DSN part, failures first."""
    reports: list[Report] = []
    for block in field_blocks(part)[1:] or field_blocks(part):
        recipient = address(block.get("Original-Recipient")) or address(
            block.get("Final-Recipient")
        )
        action = str(block.get("Action", "")).strip().lower()
        if recipient is None and not action:
            continue
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        status = status_code(str(block.get("Status", ""))) or status_code(diagnostic)
        if action == "failed":
            permanent: bool | None = status is None or status.startswith("5")
        elif action == "delayed":
            permanent = False
        else:
            permanent = None if status is None else status.startswith("5")
        reports.append(Report(recipient, status, permanent, action or "failed", diagnostic))
    reports.sort(key=lambda r: r.action not in ("failed", "delayed"))
    return reports


def feedback(part: Message, message: Message) -> Report:
    """The complaint of an ARF report: its type and whom the reported message went to."""
    blocks = field_blocks(part)
    fields = blocks[0] if blocks else Message()
    kind = str(fields.get("Feedback-Type", "abuse")).strip().lower()
    recipient = address(fields.get("Original-Rcpt-To"))
    if recipient is None:
        original = enclosed_headers(message)
        recipient = address(original.get("To")) if original is not None else None
    return Report(recipient, None, None, kind)


def enclosed_headers(message: Message) -> Message | None:
    """The header of the original message a report encloses, if it encloses one."""
    for part in parts(message):
        if part.get_content_type() not in ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            return HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    return None
