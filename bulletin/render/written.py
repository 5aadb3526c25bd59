"""The calendar files of public/ read as bulletin wrote them: an event's own file's VEVENT,
a whole calendar's VEVENTs by UID, the properties of a VEVENT, and a whole calendar's
VEVENTs with new ones put in their places. A search through bytes, not a parse: a calendar
of ten thousand events is read at every publish that adds one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bulletin.content.entries import Entry
from bulletin.vevents import BEGIN_EVENT, END_EVENT, FOLDED, PROPERTY

END = b"END:VCALENDAR\r\n"


def vevent(ics: bytes | None) -> bytes | None:
    """The VEVENT of an event's own calendar file, as written (None if there is none)."""
    if not ics:
        return None
    start, end = ics.find(BEGIN_EVENT), ics.find(END_EVENT)
    if start < 0 or end < start or ics.count(BEGIN_EVENT) != 1:
        return None
    return ics[start : end + len(END_EVENT)]


def by_uid(ics: bytes | None) -> dict[str, bytes]:
    """The VEVENTs of a calendar file as written, by their UID's value (still escaped);
    a UID found twice is left out."""
    found: dict[str, bytes] = {}
    twice: set[str] = set()
    folds = (b" ", b"\t")
    for part in (ics or b"").split(BEGIN_EVENT)[1:]:
        end = part.find(END_EVENT)
        start = part.find(b"\r\nUID:") + 2
        if end < 0 or not 1 < start < end:
            continue
        stop = part.find(b"\r\n", start)
        while part[stop + 2 : stop + 3] in folds:  # a folded line goes on
            stop = part.find(b"\r\n", stop + 2)
        value = part[start + 4 : stop]
        if b"\n" in value:  # most UIDs are short: no line break to take out
            value = FOLDED.sub(b"", value)
        key = value.decode("utf-8", "replace")
        if key in found:
            twice.add(key)
        found[key] = BEGIN_EVENT + part[: end + len(END_EVENT)]
    for key in twice:
        del found[key]
    return found


def properties(vevent: bytes | None) -> dict[str, str] | None:
    """Each property of a VEVENT as written (name -> value, still escaped), or None."""
    if vevent is None:
        return None
    try:
        text = FOLDED.sub(b"", vevent).decode("utf-8")
    except UnicodeDecodeError:
        return None
    found: dict[str, str] = {}
    for line in text.split("\r\n")[1:-2]:  # BEGIN:VEVENT ... END:VEVENT, then ""
        match = PROPERTY.match(line)
        if match is None:
            return None
        found.setdefault(match.group(1).upper(), line[match.end() :])
    return found


def events_with(
    before: bytes | None,
    chosen: Sequence[Entry],
    new: dict[str, bytes],
    uid_line: Callable[[Entry], bytes],
) -> bytes | None:
    """The VEVENTs of `before`, a calendar as written of the events of `chosen` but the
    `new` ones (slug → VEVENT), with each new VEVENT put before that of the event that
    follows it in `chosen`; `uid_line` is an event's UID line as written. None when
    `before` is not as written (then the calendar is to be built whole)."""
    mark = b"\r\n" + BEGIN_EVENT  # a VEVENT begins a line (TEXT values hold no line break)
    if not before or not before.endswith(END) or before.count(mark) != len(chosen) - len(new):
        return None
    first = before.find(mark)
    at = first + 2 if first >= 0 else len(before) - len(END)
    pieces: list[bytes] = []
    waiting: list[bytes] = []  # new events, until the old one they come before
    for entry in chosen:
        block = new.get(entry.slug)
        if block is not None:
            waiting.append(block)
            continue
        if not waiting:
            continue
        found = before.find(uid_line(entry), at)
        place = before.rfind(mark, at - 2, found) if found >= 0 else -1
        if place < 0:
            return None  # not as written (or its UID folded): built whole
        pieces += [before[at : place + 2], *waiting]
        waiting, at = [], place + 2
    pieces += [before[at : -len(END)], *waiting]
    return b"".join(pieces)
