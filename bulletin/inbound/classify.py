"""Says what a message that came back is: a bounce (and whether for good), a complaint, a
mailto unsubscribe, an auto-reply, or something else. Reads only; acts on nothing.

Standards first: a DSN (RFC 3464) or an ARF report (RFC 5965) is read as such; bounces in
the older, free formats (Exim, qmail, Postfix or sendmail without DSN, Exchange…) go to
flufl.bounce's detectors, with our own rules for the status code and what it means;
auto-replies (RFC 3834 Auto-Submitted, vacation, out-of-office) are never bounces.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

from bulletin.inbound import reports

Kind = Literal["bounce", "complaint", "unsubscribe", "auto-reply", "other"]
KINDS: tuple[Kind, ...] = ("bounce", "complaint", "unsubscribe", "auto-reply", "other")

_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailer", "maildelivery"}
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed|problem)"
    r"|returned mail|failure notice|mail delivery (failed|failure|system|subsystem)"
    r"|could not be delivered|non.?deliver|delivery notification|rejected|permanent error"
    r"|mail system error|returned to sender|unzustellbar|nicht zustellbar",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto.?reply|auto.?response|autoresponder"
    r"|vacation|away from|on leave|abwesenheit|absence|^\s*auto:",
    re.IGNORECASE,
)
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*((re|aw|fw|fwd)\s*:\s*)*unsubscribe\b", re.IGNORECASE)
_COMPLAINT_SUBJECT = re.compile(r"^\s*complaint about message from", re.IGNORECASE)
_TEXT_ADDRESS = re.compile(r"<?([A-Za-z0-9._%+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?")
_SMTP_REPLY = re.compile(r"(?<![\d.])([45])\d\d(?:[ -]|$)", re.MULTILINE)
_TEXT_LIMIT = 64 * 1024  # enough of a bounce's words to find a status code


@dataclass(frozen=True)
class Classification:
    """What a message is (see the module docstring), and about whom."""

    kind: Kind
    recipient: str | None = None
    status: str | None = None
    permanent: bool | None = None
    detail: str = ""

    def as_json(self, file: str) -> dict[str, Any]:
        return {
            "file": file,
            "kind": self.kind,
            "recipient": self.recipient,
            "status": self.status,
            "permanent": self.permanent,
        }


def parse(data: bytes) -> Message:
    """The message, parsed leniently (compat32: the fastest, and forgiving of bad headers)."""
    return email.message_from_bytes(data, policy=email.policy.compat32)


def classify(data: bytes) -> Classification:
    """What the message in `data` is."""
    return classify_message(parse(data))


def classify_message(message: Message) -> Classification:
    """What the parsed `message` is."""
    parts = reports.parts(message)
    for part in parts:
        kind = part.get_content_type()
        if kind in reports.ARF_TYPES:
            report = reports.feedback(part, message)
            if report.action == "not-spam":
                return Classification("other", report.recipient, detail="not-spam feedback")
            return Classification("complaint", report.recipient, detail=report.action)
    for part in parts:
        if part.get_content_type() in reports.DSN_TYPES:
            found = reports.delivery_status(part)
            if found and found[0].action in ("failed", "delayed"):
                first = found[0]
                return Classification("bounce", first.recipient, first.status,
                                      first.permanent, first.detail)  # fmt: skip
            if found:  # delivered, relayed, expanded: good news, nothing to do
                return Classification("other", found[0].recipient, detail=found[0].action)
    subject = _header(message, "Subject")
    if _COMPLAINT_SUBJECT.search(subject):  # Microsoft's JMRP reports are not ARF
        original = reports.enclosed_headers(message)
        to = None if original is None else reports.address(str(original.get("To", "")))
        return Classification("complaint", to, detail="jmrp")
    if _UNSUBSCRIBE_SUBJECT.search(subject) or _to_unsubscribe(message):
        return Classification("unsubscribe", _sender(message))
    if _looks_like_bounce(message, subject):
        return _free_form_bounce(message, parts)
    if _is_auto_reply(message, subject):
        return Classification("auto-reply", _sender(message))
    return Classification("other", _sender(message))


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else " ".join(str(value).split())


def _sender(message: Message) -> str | None:
    address = parseaddr(_header(message, "From"))[1].lower()
    return address if "@" in address else None


def _to_unsubscribe(message: Message) -> bool:
    fields = [_header(message, name) for name in ("To", "Delivered-To", "X-Original-To")]
    return any(address.lower().startswith("unsubscribe+") for _, address in getaddresses(fields))


def _looks_like_bounce(message: Message, subject: str) -> bool:
    sender = parseaddr(_header(message, "From"))[1].lower()
    if sender.partition("@")[0] in _DAEMONS or message.get("X-Failed-Recipients"):
        return True
    return_path = _header(message, "Return-Path")
    if return_path in ("<>", "<MAILER-DAEMON>") and not _is_auto_reply(message, subject):
        return True
    return bool(_BOUNCE_SUBJECT.search(subject))


def _is_auto_reply(message: Message, subject: str) -> bool:
    auto = _header(message, "Auto-Submitted").lower()
    if auto.startswith("auto-replied"):
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if _header(message, "Precedence").lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.search(subject))


def _free_form_bounce(message: Message, parts: list[Message]) -> Classification:
    """A bounce without a DSN: flufl.bounce finds whom, our rules how bad."""
    temporary, permanent = _flufl_failures(message)
    failed = message.get("X-Failed-Recipients")
    recipient = (
        min(permanent) if permanent else min(temporary) if temporary
        else reports.address(str(failed).split(",")[0]) if failed else None
    )  # fmt: skip
    text = _text(parts)
    if recipient is None:
        recipient = _first_address(message, text)
    status = reports.status_code(text)
    if status is not None:
        is_permanent: bool | None = status.startswith("5")
    elif permanent or temporary:
        is_permanent = bool(permanent)
    else:
        reply = _SMTP_REPLY.search(text)
        is_permanent = None if reply is None else reply.group(1) == "5"
    nothing = recipient is None and status is None and is_permanent is None
    if nothing and _is_auto_reply(message, _header(message, "Subject")):
        return Classification("auto-reply", _sender(message))
    detail = next((line.strip() for line in text.splitlines() if status and status in line), "")
    return Classification("bounce", recipient, status, is_permanent, detail[:300])


def _first_address(message: Message, text: str) -> str | None:
    """The first address a free-form bounce's words name that is not its own sender's or
    receiver's: most say "could not deliver to <address>" before anything else."""
    own = {a.lower() for _, a in getaddresses([_header(message, n) for n in ("From", "To")])}
    original = reports.enclosed_headers(message)
    if original is not None:
        to = reports.address(str(original.get("To", "")))
        if to is not None:
            return to
    for match in _TEXT_ADDRESS.finditer(text):
        found = match.group(1).lower().rstrip(".")
        if found not in own and found.partition("@")[0] not in _DAEMONS:
            return found
    return None


def _flufl_failures(message: Message) -> tuple[set[str], set[str]]:
    from flufl.bounce import all_failures  # loads its detectors only for free-form bounces

    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping on odd input finds nothing
        return set(), set()

    def clean(found: Any) -> set[str]:
        addresses = (
            a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in found
        )
        return {a.strip("<>").lower() for a in addresses if "@" in a}

    return clean(temporary), clean(permanent)


def _text(parts: list[Message]) -> str:
    """The report's own words (its text parts, not the returned original), decoded."""
    chunks: list[str] = []
    size = 0
    for part in parts:
        body = part.get_payload()
        if part.get_content_maintype() == "multipart" and isinstance(body, str):
            chunks.append(body[:_TEXT_LIMIT])  # its boundary never came: all of it is text
            continue
        if (
            part.get_content_maintype() != "text"
            or part.get_content_type() == "text/rfc822-headers"
        ):
            continue
        raw = part.get_payload(decode=True)
        if not isinstance(raw, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            chunk = raw[:_TEXT_LIMIT].decode(charset, "replace")
        except LookupError:  # an unknown charset name
            chunk = raw[:_TEXT_LIMIT].decode("utf-8", "replace")
        chunks.append(chunk)
        size += len(chunk)
        if size > _TEXT_LIMIT:
            break
    return "\n".join(chunks)
