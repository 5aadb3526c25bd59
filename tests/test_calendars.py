"""Events as iCalendar files: RFC 5545's rules, two independent parsers, the date edge
cases, SEQUENCE on a change, cancelled withdrawals, the compliance gate, and the event
fields of the front matter."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import re
from pathlib import Path

import icalendar
import pytest
import vobject

from bulletin import pipeline as core
from bulletin.compliance import calendar_outputs, check_outputs
from bulletin.config import load_config
from bulletin.content.entries import load_entries
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.render.calendars import calendar_files, event_path
from tests.conftest import run_cli

SOFIA, CURS = "2019-11-13-sofia-workshop", "2019-12-05-curs-regional"
NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
STATEMENT_EN = "This project is funded by the European Union."
DISCLAIMER_EN = "European Commission is not responsible"


def _entries(site: Path):
    config = load_config(site)
    return config, {e.slug: e for e in load_entries(config).entries}


def _files(config, entries, previous=None):
    files = calendar_files(config, list(entries), NOW, (previous or {}).get)
    return files


def _event(ics: bytes) -> icalendar.Event:
    events = list(icalendar.Calendar.from_ical(ics).walk("VEVENT"))
    assert len(events) == 1
    return events[0]


def _content_lines(ics: bytes) -> list[bytes]:
    assert ics.endswith(b"\r\n")
    return ics[:-2].split(b"\r\n")


def test_calendars_follow_rfc_5545_line_rules_and_required_properties(site):
    config, entries = _entries(site)
    files = _files(config, entries.values())
    assert set(files) >= {"calendar.ics", "en/calendar.ics", "ro/calendar.ics",
                          "tags/firearms/calendar.ics", event_path(entries[SOFIA])}  # fmt: skip
    for name, ics in files.items():
        lines = _content_lines(ics)
        for line in lines:
            assert b"\n" not in line and b"\r" not in line, (name, line)  # CRLF only
            assert len(line) <= 75, (name, line)  # folded at 75 octets
        calendar = icalendar.Calendar.from_ical(ics)
        assert {"PRODID", "VERSION"} <= set(calendar) and calendar["VERSION"] == "2.0"
        for event in calendar.walk("VEVENT"):
            assert {"UID", "DTSTAMP", "DTSTART", "SUMMARY", "URL", "DESCRIPTION"} <= set(event)
            assert event.decoded("DTSTAMP").tzinfo is not None  # DTSTAMP is in UTC


def test_a_second_independent_parser_reads_the_same_events(site):
    config, entries = _entries(site)
    ics = _files(config, entries.values())["calendar.ics"]
    theirs = vobject.readOne(ics.decode("utf-8"))
    seen = {str(e.uid.value): e for e in theirs.vevent_list}
    ours = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(ics).walk("VEVENT")}
    assert set(seen) == set(ours) == {f"{SOFIA}@news.example.org", f"{CURS}@news.example.org"}
    sofia = seen[f"{SOFIA}@news.example.org"]
    assert sofia.dtstart.value == dt.date(2019, 11, 12)
    assert sofia.dtend.value == dt.date(2019, 11, 14)  # DTEND is exclusive: the day after
    assert sofia.location.value == "Sofia, Bulgaria"
    assert STATEMENT_EN in sofia.description.value and DISCLAIMER_EN in sofia.description.value
    for uid, event in seen.items():
        assert event.summary.value == str(ours[uid]["SUMMARY"])


@pytest.mark.parametrize(
    ("start", "end", "dtend"),
    [
        (dt.date(2019, 11, 12), None, dt.date(2019, 11, 13)),  # one day
        (dt.date(2019, 11, 12), dt.date(2019, 11, 13), dt.date(2019, 11, 14)),  # two days
        (dt.date(2019, 12, 30), dt.date(2019, 12, 31), dt.date(2020, 1, 1)),  # into the new year
        (dt.date(2019, 12, 31), dt.date(2020, 1, 2), dt.date(2020, 1, 3)),  # across it
        (dt.date(2020, 2, 28), dt.date(2020, 2, 29), dt.date(2020, 3, 1)),  # a leap day
    ],
)
def test_all_day_events_have_value_date_and_an_exclusive_end(site, start, end, dtend):
    config, entries = _entries(site)
    entry = dataclasses.replace(entries[SOFIA], date=start, end_date=end)
    ics = _files(config, [entry])[event_path(entry)]
    assert f"DTSTART;VALUE=DATE:{start:%Y%m%d}".encode() in ics
    assert f"DTEND;VALUE=DATE:{dtend:%Y%m%d}".encode() in ics
    assert b"VTIMEZONE" not in ics  # floating dates need no time zone
    event = vobject.readOne(ics.decode()).vevent
    assert (event.dtstart.value, event.dtend.value) == (start, dtend)


def test_timed_events_carry_the_site_time_zone_across_a_dst_change(site):
    config, entries = _entries(site)
    # Europe/Bucharest left summer time at 04:00 on 27 October 2019: 02:00–05:00 local is
    # four hours, not three.
    entry = dataclasses.replace(
        entries[SOFIA], date=dt.date(2019, 10, 27), end_date=None,
        start_time=dt.time(2, 0), end_time=dt.time(5, 0),
    )  # fmt: skip
    ics = _files(config, [entry])[event_path(entry)]
    assert b"DTSTART;TZID=Europe/Bucharest:20191027T020000" in ics
    assert b"BEGIN:VTIMEZONE" in ics and b"TZID:Europe/Bucharest" in ics
    theirs = vobject.readOne(ics.decode()).vevent
    start, end = theirs.dtstart.value, theirs.dtend.value
    assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=4)
    assert start.astimezone(dt.UTC) == dt.datetime(2019, 10, 26, 23, 0, tzinfo=dt.UTC)


def test_an_unchanged_rebuild_is_byte_identical_and_a_moved_event_raises_sequence(site):
    config, entries = _entries(site)
    entry = entries[SOFIA]
    first = _files(config, [entry])
    again = calendar_files(config, [entry], NOW + dt.timedelta(days=3), first.get)
    assert again == first  # nothing changed: SEQUENCE and DTSTAMP kept
    assert _event(first[event_path(entry)])["SEQUENCE"] == 0
    assert _event(first[event_path(entry)]).decoded("DTSTAMP") == entry.published

    later = NOW + dt.timedelta(days=7)
    moved = dataclasses.replace(entry, date=dt.date(2019, 11, 19), end_date=dt.date(2019, 11, 20))
    after = calendar_files(config, [moved], later, first.get)
    event = _event(after[event_path(entry)])
    assert event["SEQUENCE"] == 1 and event.decoded("DTSTAMP") == later
    assert str(event["UID"]) == f"{SOFIA}@news.example.org"  # the same event, updated
    retitled = dataclasses.replace(moved, title="Workshop (moved)")
    third = calendar_files(config, [retitled], later + dt.timedelta(days=1), after.get)
    assert _event(third[event_path(entry)])["SEQUENCE"] == 2
    summary_only = dataclasses.replace(retitled, summary="A new summary.")
    fourth = calendar_files(config, [summary_only], later + dt.timedelta(days=2), third.get)
    assert _event(fourth[event_path(entry)])["SEQUENCE"] == 2  # not a change calendars need


def _icalendar_event(config, entry, sequence: int, stamp: dt.datetime) -> bytes:
    """The entry's VEVENT as the icalendar library writes it: what calendars.py writes by
    hand must be these bytes."""
    from bulletin.render.calendars import _when, description, uid
    from bulletin.render.renderer import entry_url

    event = icalendar.Event()
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
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    return event.to_ical()


AWKWARD = [
    "Comma, semicolon; colon: and a backslash \\ in the title",
    "A title that runs well past seventy-five octets so that it has to be folded twice over",
    "Întâlnire regională a rețelei de procurori și polițiști din Europa de Sud-Est în Sofia",
    "Среща на мрежата на прокурорите от Югоизточна Европа в София, България; второ издание",
    "Caret ^ and backslash \\ placed near the fold: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\,yy^^",
    "Emoji 🇪🇺 and a line\nbreak, with \\N written out and a tab\tinside",
    "x" * 73 + "é" + "\\",
]


@pytest.mark.parametrize("title", AWKWARD)
@pytest.mark.parametrize("timed", [False, True])
def test_events_are_written_byte_for_byte_as_icalendar_writes_them(site, title, timed):
    config, entries = _entries(site)
    changes: dict[str, object] = {"title": title, "location": title[::-1],
                                  "tags": ("a,b", title[:20]), "summary": title * 2}  # fmt: skip
    if timed:
        changes.update(date=dt.date(2019, 10, 27), end_date=dt.date(2019, 10, 28),
                       start_time=dt.time(2, 0), end_time=dt.time(5, 30))  # fmt: skip
    entry = dataclasses.replace(entries[SOFIA], **changes)
    for status in ("approved", "withdrawn"):
        entry = dataclasses.replace(entry, status=status)
        ics = _files(config, [entry])[event_path(entry)]
        start = ics.index(b"BEGIN:VEVENT")
        written = ics[start : ics.index(b"END:VEVENT") + len(b"END:VEVENT\r\n")]
        assert written == _icalendar_event(config, entry, 0, entry.published)
        calendar = icalendar.Calendar()
        for name, value in [("prodid", "-//bulletin//bulletin calendars//EN"), ("version", "2.0"),
                            ("calscale", "GREGORIAN"), ("method", "PUBLISH"),
                            ("x-wr-calname", entry.title),
                            ("x-wr-timezone", config.site.timezone)]:  # fmt: skip
            calendar.add(name, value)
        if "\n" not in title:  # icalendar cannot write an X-WR-CALNAME with a line break
            head = calendar.to_ical().removesuffix(b"END:VCALENDAR\r\n")
            assert ics.startswith(head)
        assert ics.endswith(written + b"END:VCALENDAR\r\n")
        moved = dataclasses.replace(entry, date=entry.date + dt.timedelta(days=1))
        again = calendar_files(config, [moved], NOW, {event_path(entry): ics}.get)
        assert _icalendar_event(config, moved, 1, NOW) in again[event_path(entry)]


def test_a_withdrawn_event_stays_as_cancelled(site):
    config, entries = _entries(site)
    first = _files(config, entries.values())
    withdrawn = dataclasses.replace(entries[SOFIA], status="withdrawn")
    after = calendar_files(config, [withdrawn, entries[CURS]], NOW, first.get)
    for name in (event_path(withdrawn), "calendar.ics", "tags/firearms/calendar.ics"):
        events = {
            str(e["UID"]): e for e in icalendar.Calendar.from_ical(after[name]).walk("VEVENT")
        }
        event = events[f"{SOFIA}@news.example.org"]
        assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 1, name


def test_news_entries_stay_out_of_calendars(site):
    config, entries = _entries(site)
    news = dataclasses.replace(entries[CURS], kind="news")
    files = _files(config, [entries[SOFIA], news])
    assert event_path(news) not in files and "ro/calendar.ics" not in files
    assert CURS.encode() not in files["calendar.ics"]


def test_the_compliance_gate_refuses_an_event_without_the_disclaimer(site):
    config, entries = _entries(site)
    entry = entries[SOFIA]
    ics = _files(config, [entry])[event_path(entry)]
    assert check_outputs(config, calendar_outputs("public/x.ics", ics, [entry])) == []
    calendar = icalendar.Calendar.from_ical(ics)
    event = next(iter(calendar.walk("VEVENT")))
    event["DESCRIPTION"] = icalendar.vText(str(event["DESCRIPTION"]).split("\n\n")[0])
    problems = check_outputs(config, calendar_outputs("public/x.ics", calendar.to_ical(), [entry]))
    codes = {p.code for p in problems}
    assert codes == {"funding-statement-missing", "funding-disclaimer-missing"}
    assert all("public/x.ics event 2019-11-13-sofia-workshop" in p.message for p in problems)


def test_publish_writes_the_calendars_and_links_them(site):
    transports = TransportFactory(lambda: MemoryTransport(lambda m: None))
    result = core.publish(site, steps=core.Steps(transports))
    assert result.ended is core.Ended.COMPLETED, result.message
    public = site / "public"
    for name in ("calendar.ics", "en/calendar.ics", "tags/firearms/calendar.ics",
                 f"entries/{SOFIA}/event.ics"):  # fmt: skip
        assert (public / name).is_file(), name
        assert f"public/{name}" in result.report.public
    page = (public / f"entries/{SOFIA}/index.html").read_text()
    assert 'href="../../entries/2019-11-13-sofia-workshop/event.ics"' in page
    index = (public / "index.html").read_text()
    assert 'href="webcal://news.example.org/calendar.ics"' in index
    assert 'href="webcal://news.example.org/ro/calendar.ics"' in index
    edition = (public / result.report.edition / "index.html").read_text()
    assert "Add to calendar" in edition


def test_the_email_offers_each_event_to_the_calendar(site):
    config, entries = _entries(site)
    from bulletin.render.renderer import Renderer

    email = Renderer(config).email([entries[SOFIA]], "2026-11-29-1", "Fixture News")
    url = f"https://news.example.org/entries/{SOFIA}/event.ics"
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>Add to calendar</a>', email.html)
    assert f"Add to calendar: {url}" in email.text


def _write_entry(site: Path, name: str, extra: str) -> Path:
    path = site / "content" / f"{name}.md"
    path.write_text(
        "---\ntitle: A meeting\ndate: 2019-11-12\nlanguage: en\nstatus: draft\n"
        f"{extra}---\nBody.\n",
        encoding="utf-8",
    )
    return path


def test_event_fields_are_read_and_checked_with_their_lines(site):
    _write_entry(site, "2019-11-12-meeting", "kind: event\nstart_time: 9:30\nend_time: '17:00'\n")
    _, entries = _entries(site)
    entry = entries["2019-11-12-meeting"]
    assert (entry.kind, entry.start_time, entry.end_time) == ("event", dt.time(9, 30), dt.time(17))

    _write_entry(site, "2019-11-13-bad", "kind: webinar\nstart_time: '25:00'\n")
    _write_entry(site, "2019-11-14-order", "start_time: '10:00'\nend_time: '09:00'\n")
    result = run_cli("check", "--json", site=site)
    assert result.returncode == 1
    found = json.loads(result.stdout)["problems"]
    problems = {(p["path"], p.get("line"), p["code"]) for p in found}
    assert ("content/2019-11-13-bad.md", 6, "kind-unknown") in problems
    assert ("content/2019-11-13-bad.md", 7, "time-invalid") in problems
    assert ("content/2019-11-14-order.md", 7, "time-order") in problems


def test_lines_are_folded_exactly_as_icalendar_folds_them():
    from icalendar.parser.string import _foldline

    from bulletin.render.calendars import _fold

    rng = random.Random(5)
    alphabet = "ab\\^,;é€🇪ы "  # one to four octets, and what escapes
    for _ in range(5_000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        assert _fold(line) == _foldline(line).encode(), line


def test_a_new_event_takes_the_others_from_the_whole_calendar_not_their_files(site):
    config, entries = _entries(site)
    old, new = entries[SOFIA], entries[CURS]
    moved = dataclasses.replace(old, date=dt.date(2019, 11, 19), end_date=None)
    before = calendar_files(config, [moved], NOW, {event_path(old): _files(config, [old])[
        event_path(old)]}.get)  # fmt: skip
    assert b"SEQUENCE:1" in before[event_path(old)]  # not what a file from scratch holds
    everything = calendar_files(config, [moved, new], NOW, before.get)  # a full build

    asked: list[str] = []

    def previous(name: str) -> bytes | None:
        asked.append(name)
        return before.get(name)

    def wanted(name: str, chosen) -> bool:
        return name.endswith("/calendar.ics") or name == "calendar.ics" or CURS in name

    reused: set[bytes] = set()
    files = calendar_files(config, [moved, new], NOW, previous, wanted, reused)
    assert files == {name: everything[name] for name in files}
    assert event_path(old) not in asked and "calendar.ics" in asked
    assert len(reused) == 1 and next(iter(reused)) in before[event_path(old)]
    # Without the whole calendar (or with the event twice in it), the event's own file.
    for whole in (None, before["calendar.ics"].replace(b"END:VCALENDAR", b"").replace(
            b"BEGIN:VTIMEZONE", b"") + next(iter(reused)) + b"END:VCALENDAR\r\n"):  # fmt: skip
        asked.clear()
        before["calendar.ics"] = whole  # type: ignore[assignment]
        assert calendar_files(config, [moved, new], NOW, previous, wanted) == files
        assert event_path(old) in asked


def test_new_events_are_put_into_the_calendars_public_holds(site):
    config, entries = _entries(site)
    sofia, curs = entries[SOFIA], entries[CURS]
    # Four events of one language, in date order: two there before, two new (one first,
    # one between them, with a tag of its own); then the calendars as a full build makes them.
    first = dataclasses.replace(curs, slug="2019-01-01-first", date=dt.date(2019, 1, 1))
    later = dataclasses.replace(sofia, slug="2020-01-01-later", date=dt.date(2020, 1, 1))
    between = dataclasses.replace(
        sofia, slug="2019-11-20-between", date=dt.date(2019, 11, 20), tags=("new-tag",)
    )
    old, new = [sofia, later], [first, between]
    before = _files(config, old)
    everything = calendar_files(config, old + new, NOW, before.get)
    built = {name for name in before if name.endswith("calendar.ics")} - {
        event_path(e) for e in old
    }

    def was(name: str, chosen) -> bool:  # public/ holds each calendar as built from `old`
        return name in built and {e.slug for e in chosen} == {e.slug for e in old if
            name == "calendar.ics" or e.language + "/" in name or
            any(t in name for t in e.tags)}  # fmt: skip

    def wanted(name: str, chosen) -> bool:  # the old events' own files are as they were
        return name not in before or (name in built and not was(name, chosen))

    fresh: dict[str, bytes] = {}
    files = calendar_files(config, old + new, NOW, before.get, wanted, None, None, was, fresh)
    assert files == {name: everything[name] for name in files}  # byte for byte
    assert {"calendar.ics", "en/calendar.ics", "tags/new-tag/calendar.ics"} <= set(files)
    # Put in, not built: the calendar of all, and that of its language; the new tag's is new.
    assert set(fresh) == {"calendar.ics", "en/calendar.ics"}
    for name, ics in fresh.items():
        uids = sorted(str(e["UID"]).partition("@")[0] for e in
                      icalendar.Calendar.from_ical(ics).walk("VEVENT"))  # fmt: skip
        assert uids == (sorted([first.slug, between.slug]) if name == "calendar.ics" else
                        [between.slug])  # fmt: skip
    # The gate reads the new events: it finds their funding texts, and misses one taken out.
    by_slug = {e.slug: e for e in old + new}
    assert (
        check_outputs(config, calendar_outputs("calendar.ics", fresh["calendar.ics"], by_slug))
        == []
    )
    cut = fresh["calendar.ics"].replace(b"\r\nDESCRIPTION:", b"\r\nX-NOTE:", 1)
    assert check_outputs(config, calendar_outputs("calendar.ics", cut, by_slug))

    # A calendar not as written (an event gone from it), or not from those entries: built whole.
    damaged = dict(before)
    whole = before["calendar.ics"]
    one = whole.index(b"BEGIN:VEVENT")
    damaged["calendar.ics"] = whole[:one] + whole[whole.index(b"END:VEVENT") + 12 :]
    for previous, was_it in ((damaged.get, was), (before.get, lambda name, chosen: False)):
        fresh.clear()
        files = calendar_files(config, old + new, NOW, previous, wanted, None, None, was_it, fresh)
        assert files == {name: everything[name] for name in files}
        assert "calendar.ics" not in fresh


def test_the_whole_calendar_is_read_by_uid_folded_or_not():
    from bulletin.render.calendars import _component
    from bulletin.render.written import by_uid as _by_uid

    long = "x" * 90 + "@example.org"  # folded over two lines
    events = [
        _component("VEVENT", [("SUMMARY", "", "A"), ("UID", "", uid), ("SEQUENCE", "", "0")])
        for uid in ("short@example.org", long, "twice@example.org", "twice@example.org")
    ]
    assert b"\r\n " in events[1]
    found = _by_uid(b"BEGIN:VCALENDAR\r\n" + b"".join(events) + b"END:VCALENDAR\r\n")
    assert found == {"short@example.org": events[0], long: events[1]}  # twice: left out
