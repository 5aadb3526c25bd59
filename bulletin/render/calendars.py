"""Builds the iCalendar (RFC 5545) files of event entries with the `icalendar` library.

`public/entries/<slug>/event.ics` for each event, and the subscribable calendars
`public/calendar.ics`, `public/<language>/calendar.ics` and `public/tags/<tag>/calendar.ics`.
All-day events are `VALUE=DATE` with an exclusive `DTEND` (the day after `end_date`); events
with times are in the site's time zone, whose `VTIMEZONE` the calendar carries. The `UID` is
`<slug>@<site host>`, stable across rebuilds and editions.

`SEQUENCE` and `DTSTAMP` come from the event as it was last written to public/: unchanged,
they are kept (a rebuild is byte-identical); when the date, times, place, title or status
change, `SEQUENCE` goes up by one and `DTSTAMP` is the time of the run, so subscribed
calendars take the update. A withdrawn entry that was published stays as
`STATUS:CANCELLED`, so calendars remove it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from icalendar import Calendar, Component, Event

from bulletin.config.model import Config
from bulletin.content.entries import Entry
from bulletin.render.feeds import tag_folder
from bulletin.render.notices import notices_for
from bulletin.render.renderer import entry_url

PRODID = "-//bulletin//bulletin calendars//EN"
#: the properties whose change makes an update that calendars must take (SEQUENCE + 1)
SIGNIFICANT = ("DTSTART", "DTEND", "SUMMARY", "LOCATION", "STATUS")
#: reads what public/ holds at a path relative to it, or None
Previous = Callable[[str], bytes | None]
#: whether a file (path relative to public/, the entries it carries) is to be built
Wanted = Callable[[str, Sequence[Entry]], bool]
END = b"END:VCALENDAR\r\n"


def event_path(entry: Entry) -> str:
    """The path of an entry's own calendar file, relative to public/: `event_url`'s file."""
    return f"entries/{entry.slug}/event.ics"


def uid(config: Config, entry: Entry) -> str:
    """The event's UID, the same in every calendar and every rebuild."""
    return f"{entry.slug}@{urlsplit(config.site.url).hostname}"


def description(config: Config, entry: Entry) -> str:
    """The event's DESCRIPTION: its summary, its link, the funding statement and disclaimer."""
    parts = [entry.summary] if entry.summary else []
    parts.append(entry_url(config, entry.slug))
    for notice in notices_for(config, [entry]):
        parts += [notice.statement, notice.disclaimer]
    return "\n\n".join(parts)


def calendar_files(
    config: Config,
    entries: Sequence[Entry],
    now: dt.datetime,
    previous: Previous,
    wanted: Wanted | None = None,
    reused: set[bytes] | None = None,
) -> dict[str, bytes]:
    """Every calendar file, by path relative to public/: one per event, the whole calendar,
    one per language and one per tag. `entries` are the published ones (withdrawn included);
    `previous` reads the files as they are now, for `SEQUENCE` and `DTSTAMP`. With `wanted`,
    only the files it asks for are built; an event whose own file is not wanted is taken
    from that file as it stands (it is what building it again would give), and its VEVENT
    is added to `reused`."""
    events = sorted((e for e in entries if e.is_event), key=lambda e: (e.date, e.slug))
    wanted = wanted or (lambda name, chosen: True)
    blocks: dict[str, bytes] = {}
    files: dict[str, bytes] = {}

    def block(entry: Entry) -> bytes:
        """The event's VEVENT: as its own file holds it when that file stays as it is."""
        if entry.slug not in blocks:
            before = previous(event_path(entry))
            kept = _vevent(before)
            if kept and reused is not None:
                reused.add(kept)
            blocks[entry.slug] = kept or _event(config, entry, now, before).to_ical()
        return blocks[entry.slug]

    for entry in events:
        path = event_path(entry)
        if wanted(path, [entry]):
            blocks[entry.slug] = _event(config, entry, now, previous(path)).to_ical()
            files[path] = _calendar(config, [entry], [blocks[entry.slug]], entry.title)
    groups: dict[str, tuple[str, list[Entry]]] = {"": ("", [])}
    for entry in events:
        groups[""][1].append(entry)
        groups.setdefault(f"{entry.language}/", (entry.language, []))[1].append(entry)
        for tag in entry.tags:
            groups.setdefault(tag_folder(tag), (tag, []))[1].append(entry)
    for folder, (name, chosen) in sorted(groups.items()):
        if wanted(folder + "calendar.ics", chosen):
            title = f"{config.site.title}: {name}" if name else config.site.title
            files[folder + "calendar.ics"] = _calendar(
                config, chosen, [block(e) for e in chosen], title
            )
    return files


def _calendar(
    config: Config, entries: Sequence[Entry], events: Sequence[bytes], title: str
) -> bytes:
    """A VCALENDAR of already serialised VEVENTs: what icalendar writes for a calendar
    holding them (properties, VTIMEZONE, events), put together without serialising each
    event again, so that a calendar of thousands of events costs a join."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", title)
    calendar.add("x-wr-timezone", config.site.timezone)
    head: bytes = calendar.to_ical()
    assert head.endswith(END)  # an empty calendar: its properties, then its end
    return head[: -len(END)] + _timezones(config, entries) + b"".join(events) + END


def _timezones(config: Config, entries: Sequence[Entry]) -> bytes:
    """The VTIMEZONE the timed events need: only the transitions of their years, the same
    at every build."""
    starts = [when for e in entries if isinstance(when := _when(config, e)[0], dt.datetime)]
    if not starts:
        return b""
    first = min(starts).date().replace(month=1, day=1)
    last = max(starts).date().replace(month=12, day=31)
    stub = Calendar()
    for start in {min(starts), max(starts)}:
        event = Event()
        event.add("dtstart", start)
        stub.add_component(event)
    stub.add_missing_timezones(first_date=first, last_date=last)
    return b"".join(c.to_ical() for c in stub.subcomponents if c.name == "VTIMEZONE")


def _vevent(ics: bytes | None) -> bytes | None:
    """The VEVENT of an event's own calendar file, as written (None if there is none)."""
    if not ics:
        return None
    start, end = ics.find(b"BEGIN:VEVENT\r\n"), ics.find(b"END:VEVENT\r\n")
    if start < 0 or end < start or ics.count(b"BEGIN:VEVENT\r\n") != 1:
        return None
    return ics[start : end + len(b"END:VEVENT\r\n")]


def _event(config: Config, entry: Entry, now: dt.datetime, before: bytes | None) -> Event:
    event = Event()
    event.add("uid", uid(config, entry))
    start, end = _when(config, entry)
    event.add("dtstart", start)
    if end is not None:
        event.add("dtend", end)
    event.add("summary", entry.title)
    if entry.location:
        event.add("location", entry.location)
    event.add("url", entry_url(config, entry.slug))
    event.add("description", description(config, entry))
    if entry.tags:
        event.add("categories", list(entry.tags))
    event.add("status", "CANCELLED" if entry.status == "withdrawn" else "CONFIRMED")
    event.add("transp", "OPAQUE" if isinstance(start, dt.datetime) else "TRANSPARENT")
    sequence, stamp = _revision(event, entry, now, before)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    return event


def _when(config: Config, entry: Entry) -> tuple[dt.date, dt.date | None]:
    last = entry.end_date or entry.date
    if entry.start_time is None:
        return entry.date, last + dt.timedelta(days=1)  # DTEND is exclusive
    tz = config.site.tz
    start = dt.datetime.combine(entry.date, entry.start_time, tzinfo=tz)
    if entry.end_time is None:
        return start, None  # an instant: RFC 5545 lets DTEND go (the event ends as it starts)
    return start, dt.datetime.combine(last, entry.end_time, tzinfo=tz)


def _revision(
    event: Event, entry: Entry, now: dt.datetime, before: bytes | None
) -> tuple[int, dt.datetime]:
    """SEQUENCE and DTSTAMP: kept when nothing significant changed since the last build."""
    first_stamp = entry.published.astimezone(dt.UTC)
    if not before:
        return 0, first_stamp
    try:
        old = next(iter(Calendar.from_ical(before).walk("VEVENT")))
    except (ValueError, StopIteration):  # a damaged file is rewritten from scratch
        return 0, first_stamp
    sequence = int(old.get("SEQUENCE", 0))
    stamp = old.decoded("DTSTAMP") if "DTSTAMP" in old else first_stamp
    if _significant(old) == _significant(event):
        return sequence, stamp
    return sequence + 1, now.astimezone(dt.UTC).replace(microsecond=0)


def _significant(event: Component) -> tuple[bytes, ...]:
    return tuple(_ical(event[name]) if name in event else b"" for name in SIGNIFICANT)


def _ical(value: object) -> bytes:
    ical = getattr(value, "to_ical")()  # noqa: B009 -- icalendar's property types share no base
    return ical if isinstance(ical, bytes) else str(ical).encode()
