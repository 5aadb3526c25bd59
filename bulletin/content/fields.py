"""Reads an entry's front matter into typed fields and checks them against each other and the
config, keeping every problem with the line of its field."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bulletin.config.model import Config
from bulletin.content.frontmatter import CONTROL, control_name
from bulletin.errors import Problem

STATUSES = ("draft", "approved", "withdrawn")
APPROVAL_FIELDS = ("approved_by", "approved_at", "approval")
FIELDS = {
    "title", "date", "end_date", "location", "summary", "language", "tags", "funding",
    "status", "publish_at", "send_not_after", "translation_of", *APPROVAL_FIELDS,
    "kind", "start_time", "end_time",  # content.events reads these
}  # fmt: skip
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_MISSING_LINE = 2  # a missing field is reported on the front matter's first line
_SHOWN = 60  # characters of a bad value quoted in a message


def _shown(value: object) -> str:
    """A bad value as a message quotes it: its repr, cut short."""
    text = repr(value) if isinstance(value, str | int | float | dt.date) else type(value).__name__
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


@dataclass(frozen=True)
class Fields:
    """The front matter's values, typed; defaults filled in from the site."""

    title: str
    date: dt.date | None
    end_date: dt.date | None
    location: str
    summary: str
    language: str
    funding: str
    status: str
    publish_at: dt.datetime | None
    send_not_after: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None
    approval: str | None
    tags: tuple[str, ...]
    translation_of: str | None = None


class FrontMatter:
    """One entry's front matter: each reader returns a field's value, or records why it
    cannot and returns an empty one, so that every problem is found in one pass."""

    def __init__(
        self, shown: str, meta: Mapping[Any, Any], lines: Mapping[str, int], tz: dt.tzinfo
    ) -> None:
        self.shown = shown
        self.meta = meta
        self.lines = lines
        self.tz = tz
        self.problems: list[Problem] = []

    def problem(self, name: str | None, code: str, message: str, line: int | None = None) -> None:
        """Record a problem, on `line` or else on the line of field `name`."""
        line = line or (self.lines.get(name) if name else None)
        self.problems.append(Problem(self.shown, code, message, line))

    def unknown_fields(self) -> None:
        for key in self.meta:
            if str(key) not in FIELDS:
                self.problem(
                    str(key),
                    "field-unknown",
                    f"unknown field {_shown(key)}; known fields are {', '.join(sorted(FIELDS))}",
                )

    def _missing(self, name: str, required: bool) -> None:
        if required:
            message = f"required field {name!r} is missing; add it"
            self.problem(None, "field-missing", message, _MISSING_LINE)

    def text(self, name: str, required: bool = False) -> str:
        """A one-line text field, stripped; "" when absent or unusable."""
        value = self.meta.get(name)
        if value is None:
            self._missing(name, required)
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.problem(name, "field-type", f"{name} must be text, not {type(value).__name__}")
            return ""
        value = str(value)
        if "\n" in value.strip() or "\r" in value:
            self.problem(name, "field-line-break", f"{name} must be a single line; join its lines")
            return ""
        if not self._plain(name, value):
            return ""
        return value.strip()

    def _plain(self, name: str, value: str) -> bool:
        """Whether `value` is free of control characters (a YAML escape such as "\\v" makes
        them, where the file itself has none); if not, the problem is recorded."""
        found = CONTROL.search(value)
        if found:
            self.problem(
                name,
                "control-character",
                f"{name} holds {control_name(found.group())}, which emails and web pages "
                "cannot carry; remove it",
            )
        return found is None

    def date(self, name: str, required: bool = False) -> dt.date | None:
        value = self.meta.get(name)
        if value is None:
            self._missing(name, required)
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        message = f"{name} is {_shown(value)}, not a date; write it as YYYY-MM-DD"
        self.problem(name, "date-invalid", message)
        return None

    def time(self, name: str) -> dt.datetime | None:
        """A date and time; without a zone it is the site's, a bare date its midnight."""
        value = self.meta.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = dt.datetime.fromisoformat(value)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=self.tz)
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(), tzinfo=self.tz)
        self.problem(
            name,
            "datetime-invalid",
            f"{name} is {_shown(value)}, not a date and time; write it as "
            "2019-11-20T09:00:00+02:00",
        )
        return None

    def tags(self) -> tuple[str, ...]:
        tags = self.meta.get("tags", [])
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
            self.problem("tags", "field-type", "tags must be a list like [firearms, drugs]")
            return ()
        if not all(self._plain("tags", str(t)) for t in tags):
            return ()
        return tuple(str(t) for t in tags)


def read_fields(front: FrontMatter, config: Config) -> Fields:
    """Every field of the front matter read and checked; the problems stay in `front`."""
    front.unknown_fields()
    title = front.text("title", required=True)
    date = front.date("date", required=True)
    end_date = front.date("end_date")
    location = front.text("location")
    summary = front.text("summary")
    language = front.text("language") or config.site.language
    funding = front.text("funding") or config.site.default_funding
    status = front.text("status", required=True)
    publish_at = front.time("publish_at")
    send_not_after = front.time("send_not_after")
    approved_by = front.text("approved_by") or None
    approved_at = front.time("approved_at")
    approval = front.text("approval") or None
    _check_title(front, title)
    _check_status(front, status)
    _check_order(front, date, end_date, publish_at, send_not_after)
    _check_language(front, language)
    _check_funding(front, config, funding, language)
    translation_of = front.text("translation_of") or None
    if translation_of and not _SLUG.fullmatch(translation_of):
        message = (
            f"translation_of {translation_of!r} is not a slug; write the original's file "
            "name without .md, like 2019-11-13-firearms-workshop"
        )
        front.problem("translation_of", "translation-invalid", message)
    return Fields(
        title=title,
        date=date,
        end_date=end_date,
        location=location,
        summary=summary,
        language=language,
        funding=funding,
        status=status,
        publish_at=publish_at,
        send_not_after=send_not_after,
        approved_by=approved_by,
        approved_at=approved_at,
        approval=approval,
        tags=front.tags(),
        translation_of=translation_of,
    )


def _check_title(front: FrontMatter, title: str) -> None:
    # An empty title is named only when no other field problem already explains it.
    explained = any(
        p.code.startswith("field-") or p.code == "control-character" for p in front.problems
    )
    if "title" in front.meta and not title and not explained:
        front.problem("title", "field-empty", "title is empty; give the entry a title")


def _check_status(front: FrontMatter, status: str) -> None:
    if status and status not in STATUSES:
        message = f"status {_shown(status)} is not one of {', '.join(STATUSES)}"
        front.problem("status", "status-unknown", message)


def _check_order(
    front: FrontMatter,
    date: dt.date | None,
    end_date: dt.date | None,
    publish_at: dt.datetime | None,
    send_not_after: dt.datetime | None,
) -> None:
    if date and end_date and end_date < date:
        front.problem("end_date", "date-order", f"end_date {end_date} is before date {date}")
    if publish_at and send_not_after and send_not_after <= publish_at:
        message = "send_not_after must be later than publish_at"
        front.problem("send_not_after", "date-order", message)


def _check_language(front: FrontMatter, language: str) -> None:
    if not _LANGUAGE.fullmatch(language):
        message = f"language {_shown(language)} is not a code like en, ro or bg"
        front.problem("language", "language-invalid", message)


def _check_funding(front: FrontMatter, config: Config, funding: str, language: str) -> None:
    if funding not in config.funding:
        known = ", ".join(sorted(config.funding)) or "none"
        front.problem(
            "funding",
            "funding-unknown",
            f"funding rule {_shown(funding)} is not in bulletin.toml (known: {known}); "
            f"add [funding.{funding}] or fix the name",
        )
    elif config.funding_text(funding, language) is None:
        front.problem(
            "language",
            "funding-text-missing",
            f"no {funding.upper()} funding statement and disclaimer in language {language!r}; "
            f"add [funding.{funding}.text.{language}] to bulletin.toml",
        )
