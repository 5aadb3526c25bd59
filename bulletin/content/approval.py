"""Signs approvals into entry files and tells whether an entry is still as it was approved,
by the approver whose key signed it.

`approval` in the front matter is `sha256:<content hash> ed25519:<approver>:<signature>`:
the approver's Ed25519 signature of the entry's slug, its content hash, the approver and
the time (`approval_message`), checked against the public key bulletin.toml lists for
that approver. Writing the fields by hand gives no valid signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from bulletin.config.model import Config
from bulletin.content.approvers import ApproverKey, verifies
from bulletin.content.entries import Entry, split_front_matter
from bulletin.content.fields import APPROVAL_FIELDS
from bulletin.errors import Problem
from bulletin.files import write_atomically

HASH_PREFIX = "sha256:"
SIGNATURE_PREFIX = "ed25519:"
_BARE_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_SIGNED = re.compile(r"(sha256:[0-9a-f]{64}) ed25519:([a-z0-9-]+):([A-Za-z0-9_-]{86})")
# Status is not hashed: approving changes it, and withdrawing needs no new approval.
_UNHASHED = {"status", *APPROVAL_FIELDS}


def content_hash(meta: dict[Any, Any], body: str) -> str:
    """A hash of what a reader would see: every front-matter field but approval, and the body."""
    fields = {str(k): v for k, v in meta.items() if str(k) not in _UNHASHED}
    canonical = json.dumps(
        {"fields": fields, "body": body.replace("\r\n", "\n").rstrip()},
        sort_keys=True,
        ensure_ascii=False,
        default=_jsonable,
    )
    return HASH_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _jsonable(value: object) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Approval:
    """One signed approval, as an entry carries it and the approvals table records it."""

    slug: str
    path: str
    content_hash: str
    approver: str  # the approver's ID in bulletin.toml
    approved_by: str  # their name there
    approved_at: dt.datetime
    signature: str

    @property
    def field(self) -> str:
        """The value of the entry's `approval` field."""
        return f"{self.content_hash} {SIGNATURE_PREFIX}{self.approver}:{self.signature}"


def approval_message(
    slug: str, digest: str, approver: str, approved_by: str, approved_at: dt.datetime
) -> bytes:
    """What an approver signs: the entry, what it said, who approved it and when."""
    when = str(int(approved_at.timestamp()))
    return "\n".join(("bulletin approval 1", slug, digest, approver, approved_by, when)).encode()


def parsed(entry: Entry) -> Approval | None:
    """The entry's approval as written, whether or not it verifies; None if it has none
    in the signed form."""
    match = _SIGNED.fullmatch((entry.approval or "").strip())
    if match is None or entry.approved_at is None:
        return None
    digest, approver, signature = match.groups()
    return Approval(
        entry.slug,
        entry.display,
        digest,
        approver,
        entry.approved_by or "",
        entry.approved_at,
        signature,
    )


def approval_problem(config: Config, entry: Entry) -> Problem | None:
    """Why an approved entry may not be published, or None when it may."""
    if entry.status != "approved":
        return None
    again = f"bulletin approve {entry.display} --by NAME"
    if not entry.approval:
        return Problem(
            entry.display,
            "approval-missing",
            f"status is approved but the entry was never approved with the tool; run {again}",
            entry.line("status"),
        )
    line = entry.line("approval")
    if _BARE_HASH.fullmatch(entry.approval.strip()):
        return Problem(
            entry.display,
            "approval-unsigned",
            "approved before approvals were signed: its approval is a bare hash, which anyone "
            f"can write by hand, so it cannot be published; have an approver review it and run "
            f"{again} (re-approve)",
            line,
        )
    approval = parsed(entry)
    if approval is None:
        return Problem(
            entry.display,
            "approval-forged",
            "the approval fields are not ones bulletin approve writes (written or changed by "
            f"hand?), so it cannot be published; have an approver review it and run {again}",
            line,
        )
    if approval.content_hash != content_hash(entry.meta, entry.body):
        who = f" by {entry.approved_by}" if entry.approved_by else ""
        when = f" on {entry.approved_at:%Y-%m-%d %H:%M}" if entry.approved_at else ""
        return Problem(
            entry.display,
            "approval-stale",
            f"edited after it was approved{who}{when}, so it cannot be published; review the "
            f"change and run {again} again",
            line,
        )
    approver = config.approvers.get(approval.approver)
    if approver is None:
        return Problem(
            entry.display,
            "approver-unknown",
            f"approved with the key of approvers.{approval.approver}, which bulletin.toml does "
            f"not list (removed, or never added), so it cannot be published; run {again}",
            line,
        )
    message = approval_message(
        entry.slug, approval.content_hash, approval.approver, approver.name, approval.approved_at
    )
    if approval.approved_by != approver.name or not verifies(approver, message, approval.signature):
        return Problem(
            entry.display,
            "approval-forged",
            f"the approval's signature does not verify with the key of approvers."
            f"{approval.approver} ({approver.name}): the approval was written or changed by "
            f"hand, not by bulletin approve, so it cannot be published; have an approver "
            f"review it and run {again}",
            line,
        )
    return None


def approved_hash(entry: Entry) -> str:
    """The content hash the entry was approved with, as the ledger keeps it per edition (the
    signature is in the approvals trail)."""
    approval = parsed(entry)
    return approval.content_hash if approval else entry.approval or ""


def is_publishable(config: Config, entry: Entry) -> bool:
    return entry.status == "approved" and approval_problem(config, entry) is None


def approve(entry: Entry, signer: ApproverKey, now: dt.datetime) -> Approval:
    """Sign the entry's approval and write status, approver, time and the signed record
    into its front matter."""
    text = entry.path.read_text(encoding="utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    parts = split_front_matter(text)
    assert parts is not None, "approve() takes entries that loaded"
    front, body, _ = parts
    now = now.replace(microsecond=0)
    digest = content_hash(entry.meta, entry.body)
    message = approval_message(entry.slug, digest, signer.id, signer.name, now)
    approval = Approval(
        entry.slug, entry.display, digest, signer.id, signer.name, now, signer.sign(message)
    )
    kept = [line for line in front.split("\n") if not _sets(line, {"status", *APPROVAL_FIELDS})]
    while kept and not kept[-1].strip():
        kept.pop()
    kept += [
        "status: approved",
        f"approved_by: {json.dumps(signer.name, ensure_ascii=False)}",
        f"approved_at: {now.isoformat(timespec='seconds')}",
        f"approval: {json.dumps(approval.field)}",
    ]
    text = "---\n" + "\n".join(kept) + "\n---\n" + body
    write_atomically(entry.path, text.encode("utf-8"))
    return approval


def _sets(line: str, names: set[str]) -> bool:
    match = re.match(r"^([A-Za-z_][\w-]*)\s*:", line)
    return bool(match and match.group(1) in names)
