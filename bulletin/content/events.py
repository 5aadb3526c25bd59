"""The event fields of an entry's front matter: what it is (`kind`) and when it starts and
ends during the day (`start_time`, `end_time`), read and checked like the other fields.

Most entries are events: the reference item is a workshop held in Sofia on two days. An
entry is an event unless it says `kind: news`; calendars (`render.calendars`) carry events
only. Times are wall-clock times in the site's time zone, on `date` and `end_date`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bulletin.content.fields import FrontMatter

KINDS = ("event", "news")
EVENT_FIELDS = ("kind", "start_time", "end_time")
_TIME = re.compile(r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)")


@dataclass(frozen=True)
class EventFields:
    """An entry's kind and times of day; None when the entry gives none."""

    kind: str
    start_time: dt.time | None
    end_time: dt.time | None


def read_event_fields(
    front: FrontMatter, date: dt.date | None, end_date: dt.date | None
) -> EventFields:
    """The event fields of `front`; problems are recorded in it, with their lines."""
    kind = front.text("kind") or "event"
    if kind not in KINDS:
        front.problem("kind", "kind-unknown", f"kind {kind!r} is not one of {', '.join(KINDS)}")
    start = _time(front, "start_time")
    end = _time(front, "end_time")
    if end is not None and start is None:
        front.problem("end_time", "time-order", "end_time needs a start_time; add one")
    elif start and end and date and (end_date or date) == date and end <= start:
        message = f"end_time {end:%H:%M} is not after start_time {start:%H:%M} on the same day"
        front.problem("end_time", "time-order", message)
    return EventFields(kind, start, end)


def _time(front: FrontMatter, name: str) -> dt.time | None:
    value = front.meta.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 9:30 as a sexagesimal number: 570 minutes.
        return dt.time(value // 60, value % 60)
    if isinstance(value, dt.time):
        return value
    match = _TIME.fullmatch(str(value).strip())
    if match is None:
        message = f'{name} is {str(value)[:40]!r}, not a time of day; write it as "09:30"'
        front.problem(name, "time-invalid", message)
        return None
    return dt.time(int(match["hour"]), int(match["minute"]))
