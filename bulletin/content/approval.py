"""Records approvals in entry files and tells whether an entry is still as it was approved."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

from bulletin.content.entries import Entry, split_front_matter
from bulletin.content.fields import APPROVAL_FIELDS
from bulletin.errors import Problem
from bulletin.files import write_atomically

HASH_PREFIX = "sha256:"
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


def approval_problem(entry: Entry) -> Problem | None:
    """Why an approved entry may not be published, or None when it may."""
    if entry.status != "approved":
        return None
    if not entry.approval:
        return Problem(
            entry.display,
            "approval-missing",
            "status is approved but the entry was never approved with the tool; run "
            f"bulletin approve {entry.display} --by NAME",
            entry.line("status"),
        )
    if entry.approval != content_hash(entry.meta, entry.body):
        who = f" by {entry.approved_by}" if entry.approved_by else ""
        when = f" on {entry.approved_at:%Y-%m-%d %H:%M}" if entry.approved_at else ""
        return Problem(
            entry.display,
            "approval-stale",
            f"edited after it was approved{who}{when}, so it cannot be published; review the "
            f"change and run bulletin approve {entry.display} --by NAME again",
            entry.line("approval"),
        )
    return None


def is_publishable(entry: Entry) -> bool:
    return entry.status == "approved" and approval_problem(entry) is None


def approve(entry: Entry, by: str, now: dt.datetime) -> None:
    """Write status, approver, time and content hash into the entry's front matter."""
    if not by.strip() or "\n" in by:
        raise ValueError("the approver's name must be one line of text")
    text = entry.path.read_text(encoding="utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    parts = split_front_matter(text)
    assert parts is not None, "approve() takes entries that loaded"
    front, body, _ = parts
    kept = [line for line in front.split("\n") if not _sets(line, {"status", *APPROVAL_FIELDS})]
    while kept and not kept[-1].strip():
        kept.pop()
    kept += [
        "status: approved",
        f"approved_by: {json.dumps(by.strip(), ensure_ascii=False)}",
        f"approved_at: {now.isoformat(timespec='seconds')}",
        f"approval: {content_hash(entry.meta, entry.body)}",
    ]
    text = "---\n" + "\n".join(kept) + "\n---\n" + body
    write_atomically(entry.path, text.encode("utf-8"))


def _sets(line: str, names: set[str]) -> bool:
    match = re.match(r"^([A-Za-z_][\w-]*)\s*:", line)
    return bool(match and match.group(1) in names)
