"""Reads the events of an iCalendar file (RFC 5545) as a calendar program does: lines
unfolded, each property split at the first colon outside a quoted parameter, TEXT values
unescaped. Only what the EU-notice gate needs, and fast: a calendar of 10,000 events is
read in a fraction of a second, where a full parser takes many seconds."""

from __future__ import annotations

import re
from collections.abc import Collection

#: a line break that folds a content line
FOLDED = re.compile(rb"\r?\n[ \t]")
_ESCAPED = re.compile(r"\\([\\;,nN])")
_VALUE = r'(?:"[^"]*"|[^:;",]*)'  # a parameter's value: quoted, or up to : ; ,
#: a content line's name (group 1) and parameters (group 2), up to its value
PROPERTY = re.compile(rf"([A-Za-z0-9-]+)((?:;[^:;\"]+={_VALUE}(?:,{_VALUE})*)*):")


BEGIN_EVENT, END_EVENT = b"BEGIN:VEVENT\r\n", b"END:VEVENT\r\n"


def unchecked(ics: bytes, checked: Collection[bytes]) -> bytes:
    """The calendar without the VEVENTs in `checked` (compared byte for byte)."""
    head, *parts = ics.split(BEGIN_EVENT)
    kept = [head]
    for part in parts:
        end = part.find(END_EVENT) + len(END_EVENT)
        if end >= len(END_EVENT) and BEGIN_EVENT + part[:end] in checked:
            kept.append(part[end:])  # what follows the event (the calendar's end)
        else:
            kept.append(BEGIN_EVENT + part)
    return b"".join(kept)


def vevents(ics: bytes) -> list[dict[str, str]]:
    """Each VEVENT's properties (name → text value, unescaped), read as RFC 5545 says:
    lines unfolded, then split at the first colon outside a quoted parameter."""
    events: list[dict[str, str]] = []
    path: list[str] = []
    for line in FOLDED.sub(b"", ics).decode("utf-8", "replace").split("\n"):
        line = line.removesuffix("\r")
        match = PROPERTY.match(line)
        if match is None:
            continue
        name, value = match.group(1).upper(), line[match.end() :]
        if name == "BEGIN":
            path.append(value.upper())
            if path[-1] == "VEVENT":
                events.append({})
        elif name == "END":
            if path:
                path.pop()
        elif path and path[-1] == "VEVENT":
            events[-1].setdefault(name, _ESCAPED.sub(_unescape, value))
    return events


def _unescape(match: re.Match[str]) -> str:
    return "\n" if match.group(1) in "nN" else match.group(1)
