"""Statuses are named constants (StrEnum) but stay the same strings: in the database, in the
JSON report and in the report's text."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa

from bulletin.content.entries import Entry
from bulletin.pipeline.report import Report
from bulletin.store import ledger
from bulletin.store.statuses import Channel, DeliveryStatus, EditionStatus, SubscriberStatus
from tests.conftest import connected

NOW = dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC)


ENTRY = Entry(
    path=Path("content/first.md"), display="content/first.md", slug="first", title="First",
    date=NOW.date(), language="en", funding="eu", status="approved", body="", html="",
    approval="sha256:first",
)  # fmt: skip


class _Sent:
    status = DeliveryStatus.SENT
    detail = None
    message_id = "<1@example.org>"
    retry_at = None
    suppress = False
    permanent = False


def test_the_database_holds_the_statuses_strings(database_url):
    engine = connected(database_url)
    recipients = [
        (Channel.EMAIL, "news", "ana@example.org"),
        (Channel.PARTNER, "interpol", "https://partner.example/hooks/bulletin"),
    ]
    with engine.begin() as db:
        ledger.prepare(db, "2025-03-04-1", [ENTRY], recipients, NOW)
        (row,) = ledger.pending_page(db, "2025-03-04-1", 0, 10, channel=Channel.EMAIL)
    claims = ledger.Claims(engine)
    try:
        assert claims.record(None, row, NOW)
        claims.record((row, _Sent()), None, NOW)
    finally:
        claims.close()
    with engine.begin() as db:
        ledger.mark_sending(db, ledger.pending_partners(db, "2025-03-04-1"), NOW)
        ledger.finish(db, "2025-03-04-1", NOW)
        stored = db.execute(sa.text("SELECT channel, status FROM deliveries ORDER BY id")).all()
        edition = db.scalar(sa.text("SELECT status FROM editions"))
    assert [tuple(r) for r in stored] == [("email", "sent"), ("partner", "sending")]
    assert edition == "done"
    assert {type(value) for r in stored for value in r} | {type(edition)} == {str}


def test_statuses_are_their_strings():
    assert [str(s) for s in DeliveryStatus] == ["pending", "sending", "sent", "failed", "skipped"]
    assert [str(s) for s in EditionStatus] == ["prepared", "done"]
    assert [str(s) for s in SubscriberStatus] == ["pending", "active", "unsubscribed", "suppressed"]
    assert [str(s) for s in Channel] == ["email", "partner"]
    assert {"sent": 1}[DeliveryStatus.SENT] == 1 and {DeliveryStatus.SENT: 1}["sent"] == 1


def test_the_report_reads_as_before_from_the_ledgers_plain_strings():
    report = Report("2025-03-04-1", ["a", "b"], notes=["a note"])
    report.add_tally({
        ("email", "news", "sent"): 3, ("email", "news", "failed"): 1,
        ("email", "news", "skipped"): 2, ("email", "news", "pending"): 1,
        ("email", "other", "sent"): 5, ("partner", "interpol", "sent"): 1,
        ("partner", "interpol", "failed"): 1, ("partner", "europol", "skipped"): 1,
    })  # fmt: skip
    report.failures = [("news", "x@example.org", "550 no | such")]
    assert json.dumps(report.as_json()) == (
        '{"edition": "2025-03-04-1", "entries": ["a", "b"], '
        '"email": {"sent": 8, "failed": 1, "skipped": 2}, '
        '"partners": {"europol": "skipped", "interpol": "failed"}, "public": [], '
        '"notes": ["a note"], "failures": [{"target": "news", "recipient": "x@example.org", '
        '"reason": "550 no | such"}]}'
    )
    assert report.failed
    assert list(report.lines()) == [
        "a note",
        "Edition 2025-03-04-1: 2 entries",
        "  email: 8 sent, 1 failed, 2 skipped (news 3, other 5)",
        "  partners: europol skipped, interpol failed",
        "  failed: news → x@example.org: 550 no | such",
        "  who got it, who did not: bulletin status 2025-03-04-1",
    ]
    markdown = report.markdown()
    assert "| news | 3 | 1 | 2 |\n| other | 5 | 0 | 0 |\n" in markdown
    assert "| europol | skipped | 0 | 0 | 1 |\n| interpol | failed | 1 | 1 | 0 |\n" in markdown
    assert "`bulletin status 2025-03-04-1` shows, per list and partner" in markdown
    assert json.dumps(Report(None, []).as_json()) == (
        '{"edition": null, "entries": [], "email": {"sent": 0, "failed": 0, "skipped": 0}, '
        '"partners": {}, "public": []}'
    )
