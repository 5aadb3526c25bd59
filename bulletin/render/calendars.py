"""Builds the iCalendar (RFC 5545) files of event entries.

`public/entries/<slug>/event.ics` for each event, and the subscribable calendars
`public/calendar.ics`, `public/<language>/calendar.ics` and `public/tags/<tag>/calendar.ics`.
All-day events are `VALUE=DATE` with an exclusive `DTEND` (the day after `end_date`); events
with times are in the site's time zone, whose `VTIMEZONE` the calendar carries. The `UID` is
`<slug>@<site host>`, stable across rebuilds and editions.

The content lines are written here, byte for byte as the `icalendar` library writes them
(property order, TEXT escaping, folding at 75 octets; tests/test_calendars.py holds the two
side by side), because an archive of thousands of events cannot wait for icalendar to build
and serialise each one; icalendar still makes the VTIMEZONE, and checks what is written.

`SEQUENCE` and `DTSTAMP` come from the event as it was last written to public/: unchanged,
they are kept (a rebuild is byte-identical); when the date, times, place, title or status
change, `SEQUENCE` goes up by one and `DTSTAMP` is the time of the run, so subscribed
calendars take the update. A withdrawn entry that was published stays as
`STATUS:CANCELLED`, so calendars remove it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from bulletin.config.model import Config
from bulletin.content.entries import Entry
from bulletin.render.feeds import tag_folder
from bulletin.render.notices import notices_for
from bulletin.render.renderer import entry_url
from bulletin.render.written import END, by_uid, events_with, properties, vevent

PRODID = "-//bulletin//bulletin calendars//EN"
#: the properties whose change makes an update that calendars must take (SEQUENCE + 1)
SIGNIFICANT = ("DTSTART", "DTEND", "SUMMARY", "LOCATION", "STATUS")
#: reads what public/ holds at a path relative to it, or None
Previous = Callable[[str], bytes | None]
#: whether a file (path relative to public/, the entries it carries) is to be built
Wanted = Callable[[str, Sequence[Entry]], bool]
#: `Wanted` for many files of one entry each (path → entry): the paths to build, in order
Each = Callable[[dict[str, Entry]], list[str]]
#: whether public/ holds a file (path relative to it) as built from exactly these entries
Was = Callable[[str, Sequence[Entry]], bool]
#: one property: its name, its parameters (";NAME=value..." or ""), its value as written
Line = tuple[str, str, str]


def event_path(entry: Entry) -> str:
    """The path of an entry's own calendar file, relative to public/: `event_url`'s file."""
    return f"entries/{entry.slug}/event.ics"


def uid(config: Config, entry: Entry) -> str:
    """The event's UID, the same in every calendar and every rebuild."""
    return f"{entry.slug}@{_host(config.site.url)}"


@functools.lru_cache(maxsize=16)
def _host(url: str) -> str | None:
    return urlsplit(url).hostname


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
    each: Each | None = None,
    was: Was | None = None,
    fresh: dict[str, bytes] | None = None,
    built: set[bytes] | None = None,
) -> dict[str, bytes]:
    """Every calendar file, by path relative to public/: one per event, the whole calendar,
    one per language and one per tag. `entries` are the published ones (withdrawn included);
    `previous` reads the files as they are now, for `SEQUENCE` and `DTSTAMP`. With `wanted`,
    only the files it asks for are built; an event whose own file is not wanted is taken
    as it stands (it is what building it again would give), and its VEVENT is added to
    `reused`: from the whole calendar as it was last written, which holds every event's
    VEVENT as its own file does (both are written from it in the same run), so that a new
    event does not read thousands of files; from the event's own file when the whole
    calendar lacks it. `each` asks `wanted` of every event's own file at once.

    With `was`, a calendar that public/ holds as built from its entries but the new events
    of this run (the usual publish: one event more) is that file with the new VEVENTs put in
    their places, which is what building it again gives, and `fresh` gets, for the gate,
    the calendar of the new events alone: the others were checked when it was written.
    `built` gets the VEVENT of each event's own file built in this run."""
    events = sorted((e for e in entries if e.is_event), key=lambda e: (e.date, e.slug))
    wanted = wanted or (lambda name, chosen: True)
    blocks: dict[str, bytes] = {}
    files: dict[str, bytes] = {}

    written: dict[str, bytes] | None = None  # the whole calendar's VEVENTs, by UID
    # uid()'s end, the same for every event, as escaped in the file ("@" starts it, so
    # escaping the slug and it apart is escaping the whole UID)
    uid_end = _text(f"@{_host(config.site.url)}")

    def block(entry: Entry) -> bytes:
        """The event's VEVENT: as it was written when its own file stays as it is."""
        nonlocal written
        if entry.slug not in blocks:
            if written is None:
                written = by_uid(previous("calendar.ics"))
            kept = written.get(_text(entry.slug) + uid_end)
            before = None
            if kept is None:
                before = previous(event_path(entry))
                kept = vevent(before)
            if kept and reused is not None:
                reused.add(kept)
            blocks[entry.slug] = kept or _event(config, entry, now, before)
        return blocks[entry.slug]

    own = {event_path(entry): entry for entry in events}
    asked = each(own) if each else [path for path, entry in own.items() if wanted(path, [entry])]
    for path in asked:
        entry = own[path]
        blocks[entry.slug] = _event(config, entry, now, previous(path))
        files[path] = _calendar(config, [entry], [blocks[entry.slug]], entry.title)
        if built is not None:
            built.add(blocks[entry.slug])
    groups: dict[str, tuple[str, list[Entry]]] = {"": ("", [])}
    for entry in events:
        groups[""][1].append(entry)
        groups.setdefault(f"{entry.language}/", (entry.language, []))[1].append(entry)
        for tag in entry.tags:
            groups.setdefault(tag_folder(tag), (tag, []))[1].append(entry)
    made = {own[path].slug for path in asked}  # the events built again in this run

    def uid_line(entry: Entry) -> bytes:
        return f"\r\nUID:{_text(entry.slug)}{uid_end}\r\n".encode()

    for folder, (name, chosen) in sorted(groups.items()):
        path = folder + "calendar.ics"
        if wanted(path, chosen):
            title = f"{config.site.title}: {name}" if name else config.site.title
            if was is not None and made:
                new = [e for e in chosen if e.slug in made]
                old = [e for e in chosen if e.slug not in made]
                if new and was(path, old):
                    put = {e.slug: blocks[e.slug] for e in new}
                    spliced = events_with(previous(path), chosen, put, uid_line)
                    if spliced is not None:
                        head = _calendar(config, chosen, [], title)[: -len(END)]
                        files[path] = head + spliced + END
                        if fresh is not None:  # the new events alone, for the gate
                            fresh[path] = head + b"".join(put.values()) + END
                        continue
            known = blocks.get  # most events are in an earlier calendar of this run
            events_of = [known(e.slug) or block(e) for e in chosen]
            files[path] = _calendar(config, chosen, events_of, title)
    return files


def _calendar(
    config: Config, entries: Sequence[Entry], events: Sequence[bytes], title: str
) -> bytes:
    """A VCALENDAR of already serialised VEVENTs: its properties, the VTIMEZONE its timed
    events need, the events; a calendar of thousands of events costs a join."""
    head = _component(
        "VCALENDAR",
        [
            ("VERSION", "", "2.0"),
            ("PRODID", "", _text(PRODID)),
            ("CALSCALE", "", "GREGORIAN"),
            ("METHOD", "", "PUBLISH"),
            ("X-WR-CALNAME", "", _unknown(title)),
            ("X-WR-TIMEZONE", "", _unknown(config.site.timezone)),
        ],
    )
    assert head.endswith(END)
    return head[: -len(END)] + _timezones(config, entries) + b"".join(events) + END


def _timezones(config: Config, entries: Sequence[Entry]) -> bytes:
    """The VTIMEZONE the timed events need: only the transitions of their years, the same
    at every build."""
    timed = [e for e in entries if e.start_time is not None]  # the others are all-day
    starts = [when for e in timed if isinstance(when := _when(config, e)[0], dt.datetime)]
    if not starts:
        return b""
    return _vtimezone(min(starts), max(starts))


@functools.lru_cache(maxsize=64)
def _vtimezone(first: dt.datetime, last: dt.datetime) -> bytes:
    """icalendar's VTIMEZONE for events from `first` to `last` (both in the site's zone),
    with the transitions of the years between."""
    from icalendar import Calendar, Event

    stub = Calendar()
    for start in {first, last}:
        event = Event()
        event.add("dtstart", start)
        stub.add_component(event)
    stub.add_missing_timezones(
        first_date=first.date().replace(month=1, day=1),
        last_date=last.date().replace(month=12, day=31),
    )
    return b"".join(c.to_ical() for c in stub.subcomponents if c.name == "VTIMEZONE")


def _event(config: Config, entry: Entry, now: dt.datetime, before: bytes | None) -> bytes:
    """The event's VEVENT, its properties in icalendar's order: SUMMARY, DTSTART, DTEND,
    DTSTAMP, UID, SEQUENCE, then the others by name."""
    start, end = _when(config, entry)
    when = [("DTSTART", *_date_value(start))]
    if end is not None:
        when.append(("DTEND", *_date_value(end)))
    others = [
        ("CATEGORIES", "", ",".join(_text(tag) for tag in entry.tags)) if entry.tags else None,
        ("DESCRIPTION", "", _text(description(config, entry))),
        ("LOCATION", "", _text(entry.location)) if entry.location else None,
        ("STATUS", "", "CANCELLED" if entry.status == "withdrawn" else "CONFIRMED"),
        ("TRANSP", "", "OPAQUE" if isinstance(start, dt.datetime) else "TRANSPARENT"),
        ("URL", "", entry_url(config, entry.slug)),
    ]
    summary = ("SUMMARY", "", _text(entry.title))
    significant = {name: value for name, _, value in [summary, *when, *filter(None, others)]}
    sequence, stamp = _revision(significant, entry, now, before)
    lines = [
        summary,
        *when,
        ("DTSTAMP", *_date_value(stamp)),
        ("UID", "", _text(uid(config, entry))),
        ("SEQUENCE", "", str(sequence)),
        *filter(None, others),
    ]
    return _component("VEVENT", lines)


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
    new: dict[str, str], entry: Entry, now: dt.datetime, before: bytes | None
) -> tuple[int, dt.datetime]:
    """SEQUENCE and DTSTAMP: kept when nothing significant changed since the last build."""
    first_stamp = entry.published.astimezone(dt.UTC)
    old = properties(vevent(before))
    if old is None:  # no file, or a damaged one: written from scratch
        return 0, first_stamp
    try:
        sequence = int(old.get("SEQUENCE", "0"))
        stamp = _utc(old["DTSTAMP"]) if "DTSTAMP" in old else first_stamp
    except ValueError:
        return 0, first_stamp
    if all(old.get(name, "") == new.get(name, "") for name in SIGNIFICANT):
        return sequence, stamp
    return sequence + 1, now.astimezone(dt.UTC).replace(microsecond=0)


def _utc(value: str) -> dt.datetime:
    """A DTSTAMP's value (UTC, `20250301T090000Z`)."""
    if not value.endswith("Z"):
        raise ValueError(f"not a UTC date-time: {value}")
    return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def _date_value(value: dt.date) -> tuple[str, str]:
    """A DATE or DATE-TIME property's parameters and value, as icalendar writes them."""
    if not isinstance(value, dt.datetime):
        return ";VALUE=DATE", value.strftime("%Y%m%d")
    if value.tzinfo is dt.UTC:
        return "", value.strftime("%Y%m%dT%H%M%SZ")
    return _zoned(value)


@functools.lru_cache(maxsize=4096)
def _zoned(value: dt.datetime) -> tuple[str, str]:
    """A date-time in a named zone: icalendar's TZID parameter and value."""
    from icalendar.prop import vDDDTypes

    prop = vDDDTypes(value)
    params = prop.params.to_ical().decode()
    return (f";{params}" if params else ""), prop.to_ical().decode()


def _text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 (and icalendar) writes it."""
    return (
        value.replace("\\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _unknown(value: str) -> str:
    """An X- property's value: as icalendar writes a property it has no type for, as it
    is (calendar programs read X-WR-CALNAME so), but on one line."""
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _component(name: str, lines: Sequence[Line]) -> bytes:
    written = [f"BEGIN:{name}", *(f"{n}{params}:{v}" for n, params, v in lines), f"END:{name}"]
    return b"".join(_fold(line) + b"\r\n" for line in written)


def _fold(line: str) -> bytes:
    """A content line folded as icalendar folds it: into the longest pieces of at most 74
    octets that cut no character, and that leave no backslash or caret apart from what it
    escapes (it starts the next piece)."""
    data = line.encode()
    if len(data) < 75:
        return data
    pieces: list[bytes] = []
    start = 0
    while len(data) - start > 74:
        cut = start + 74
        while data[cut] & 0xC0 == 0x80:  # inside a character: cut before it
            cut -= 1
        if data[cut - 1] in b"\\^":
            cut -= 1
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return b"\r\n ".join(pieces)
