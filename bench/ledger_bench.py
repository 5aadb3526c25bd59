"""The ledger's hot path per message: what keeping every attempt (delivery_attempts) costs.

`Claims.record` commits, per message, the last message's outcome and the next one's claim;
since attempts are kept it also inserts the outcome into the attempt history. The baseline,
measured in the same run on the same database: the same transaction without that insert
(the ledger's statements before attempts were kept). SQLite on a file, as a site has it.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bulletin.content.entries import Entry
from bulletin.store import ledger
from bulletin.store.database import connect
from bulletin.store.statuses import Channel

Row = tuple[str, str, str, str, str]
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
ENTRY = Entry(
    path=Path("content/first.md"), display="content/first.md", slug="first", title="First",
    date=NOW.date(), language="en", funding="eu", status="approved", body="", html="",
    approval="sha256:first",
)  # fmt: skip


@dataclass
class _Sent:
    status: str = "sent"
    detail: str | None = None
    message_id: str | None = "<1@example.org>"
    retry_at: dt.datetime | None = None
    suppress: bool = False
    permanent: bool = False


def _edition(folder: Path, name: str, count: int) -> tuple[object, list[ledger.Pending]]:
    engine = connect(f"sqlite:///{folder / name / 'bulletin.db'}")
    recipients = [(Channel.EMAIL, "news", f"r{i}@example.org") for i in range(count)]
    with engine.begin() as db:
        ledger.prepare(db, "e", [ENTRY], recipients, NOW)
        rows = ledger.pending_page(db, "e", 0, count, channel=Channel.EMAIL)
    return engine, rows


def _run(engine: object, rows: list[ledger.Pending], without_history: bool) -> float:
    claims = ledger.Claims(engine)  # type: ignore[arg-type]
    if without_history:
        # A no-op statement in the insert's place: the baseline keeps the round trip, so the
        # ratio is what the insert itself costs (a little less than dropping it would save).
        claims._attempt = "SELECT ?, ?, ?, ?, ?"
    sent = _Sent()
    started = time.perf_counter()
    previous = None
    for row in rows:
        claims.record(previous, row, NOW)
        previous = (row, sent)
    claims.record(previous, None, NOW)
    took = time.perf_counter() - started
    claims.close()
    return took


def ledger_rows(quick: bool) -> list[Row]:
    count, repeats = (2000, 3) if quick else (20_000, 5)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        timings: dict[bool, list[float]] = {True: [], False: []}
        for repeat in range(repeats):
            for without in (True, False):
                engine, rows = _edition(folder, f"{repeat}-{without}", count)
                timings[without].append(_run(engine, rows, without))
                engine.dispose()  # type: ignore[attr-defined]
    base = count / statistics.median(timings[True])
    kept = count / statistics.median(timings[False])
    rate: Callable[[float], str] = lambda r: f"{r:,.0f} msgs/s"  # noqa: E731
    return [
        (f"ledger hot path, {count} msgs (x{repeats}), SQLite", "", "", "", ""),
        ("  outcome + claim, a no-op in place of the history", rate(base), "", "", ""),
        ("  outcome + claim + attempt kept (bulletin)", rate(kept),
         "the same without the history", rate(base), f"{kept / base:.2f}x rate"),
    ]  # fmt: skip
