"""Renders an edition to its email (MJML → HTML, plain text, subject) and its web pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import jinja2

from bulletin.config.model import Config
from bulletin.content.entries import Entry
from bulletin.content.markup import html_to_text
from bulletin.errors import RenderError
from bulletin.render.notices import (
    Notice,
    email_values,
    notices_for,
    page_notices,
    page_values,
)
from bulletin.render.templates import PUBLISHED, environment, mjml_to_html
from bulletin.render.words import date_range, labels

#: Stands in the rendered email for each recipient's own unsubscribe link.
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/BULLETIN-RECIPIENT-TOKEN"


@dataclass(frozen=True)
class RenderedEmail:
    """One email edition for one audience, ready to personalise per recipient."""

    subject: str
    html: str
    text: str
    language: str
    slugs: tuple[str, ...]
    notices: tuple[Notice, ...]


@dataclass(frozen=True)
class EditionInfo:
    """What the archive shows of a published edition."""

    id: str
    published: dt.datetime
    entries: tuple[Entry, ...]


def edition_language(config: Config, entries: Sequence[Entry]) -> str:
    languages = {entry.language for entry in entries}
    return languages.pop() if len(languages) == 1 else config.site.language


def entry_url(config: Config, slug: str) -> str:
    return f"{config.site.url}entries/{slug}/"


def event_url(config: Config, slug: str) -> str:
    """An event's own iCalendar file ("Add to calendar"), written by `render.calendars`."""
    return f"{config.site.url}entries/{slug}/event.ics"


def webcal_url(config: Config, path: str) -> str:
    """A calendar's `webcal://` address (path relative to public/): calendar programs
    subscribe to it and keep it up to date."""
    return "webcal://" + config.site.url.split("://", 1)[1] + path


def edition_url(config: Config, edition_id: str) -> str:
    return f"{config.site.url}{edition_id}/"


class Renderer:
    """Renders a site's templates: the site's own templates/ first, then the built-in ones."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = environment(config, PUBLISHED, keep_trailing_newline=True)
        self._labels: dict[str, dict[str, str]] = {}
        #: each entry's view per root, made once: an entry shows on several pages (its
        #: own, its edition's, its language's, its year's); templates only read it. The
        #: entry is kept, so that its id stays its own
        self._views: dict[tuple[int, str, str | None], tuple[Entry, _EntryView]] = {}

    def labels(self, language: str) -> dict[str, str]:
        """The fixed words in `language`, looked up once per renderer."""
        if language not in self._labels:
            self._labels[language] = labels(language, self.config.root)
        return self._labels[language]

    def _render(self, name: str, **context: Any) -> str:
        try:
            template = self.env.get_template(name)
            return template.render(site=self.config.site, **context)
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise RenderError(f"template {exc.name} not found in templates/") from exc
        except jinja2.UndefinedError as exc:
            raise RenderError(f"templates/{name}: {exc.message}") from exc

    def _entry_view(self, entry: Entry, root: str | None = None) -> dict[str, Any]:
        key = (id(entry), entry.status, root)  # the status: the only field ever changed
        known = self._views.get(key)
        if known is not None and known[0] is entry:
            return known[1]
        if len(self._views) > 50_000:
            self._views.clear()
        view = self._new_view(entry, root)
        self._views[key] = (entry, view)
        return view

    def _new_view(self, entry: Entry, root: str | None) -> _EntryView:
        return _EntryView(
            entry,
            {
                "slug": entry.slug,
                "title": entry.title,
                "language": entry.language,
                "location": entry.location,
                "summary": entry.summary,
                "tags": entry.tags,
                "when": date_range(entry.date, entry.end_date, entry.language),
                "url": entry_url(self.config, entry.slug),
                "href": f"{root}entries/{entry.slug}/index.html" if root is not None else "",
                # "Add to calendar": the event's .ics, absolute in emails, relative on pages
                "calendar_url": (
                    ""
                    if not entry.is_event or entry.status == "withdrawn"
                    else event_url(self.config, entry.slug)
                    if root is None
                    else f"{root}entries/{entry.slug}/event.ics"
                ),
            },
        )

    def email(
        self,
        entries: Sequence[Entry],
        edition_id: str,
        list_name: str,
        language: str | None = None,
        web_url: str | None = None,
    ) -> RenderedEmail:
        """The email for `entries`, with UNSUBSCRIBE_PLACEHOLDER where each link goes; its
        fixed words in `language` (by default the entries' one, or the site's)."""
        language = language or edition_language(self.config, entries)
        notices = notices_for(self.config, entries)
        views = [self._entry_view(e) for e in entries]
        words = self.labels(language)
        context = {
            "entries": views,
            "language": language,
            "t": words,
            "web_url": web_url or edition_url(self.config, edition_id),
            "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
            "unsubscribe_note": words["unsubscribe_text"].format(list=list_name),
            "sender_name": parseaddr(self.config.sender.from_)[0] or self.config.sender.address,
        }
        # The subject leads with an item in the reader's language, where the variant has one.
        lead = sorted(views, key=lambda view: view["language"].lower() != language.lower())
        subject = " ".join(self._render("subject.txt.j2", **{**context, "entries": lead}).split())
        context["notices"] = email_values(notices)
        mjml = self._render(
            "email.mjml.j2",
            subject=subject,
            preview=entries[0].summary or entries[0].title,
            **context,
        )
        html = mjml_to_html(mjml)
        text = self._render("email.txt.j2", **context)
        return RenderedEmail(
            subject=subject,
            html=html,
            text=text,
            language=language,
            slugs=tuple(e.slug for e in entries),
            notices=tuple(notices),
        )

    def _page(
        self,
        template: str,
        entries: Sequence[Entry],
        depth: int,
        language: str | None = None,
        **context: Any,
    ) -> str:
        root = "../" * depth
        notices = page_notices(self.config, entries)
        if language is None:
            language = (
                edition_language(self.config, entries) if entries else self.config.site.language
            )
        return self._render(
            template,
            root=root,
            language=language,
            t=self.labels(language),
            notices=page_values(notices, root),
            entries=[self._entry_view(e, root) for e in entries],
            calendar_webcal=webcal_url(self.config, "calendar.ics"),
            **context,
        )

    def edition_page(self, edition: EditionInfo, language: str | None = None) -> str:
        """public/<edition>/index.html: the web version of an email edition; with
        `language`, public/<edition>/<language>/index.html, one language's variant."""
        return self._page(
            "edition.html.j2",
            edition.entries,
            depth=1 if language is None else 2,
            language=language,
            edition={"id": edition.id, "date": self._local_date(edition.published, language)},
        )

    def entry_page(self, entry: Entry) -> str:
        """public/entries/<slug>/index.html: an entry's permalink."""
        return self._page("entry.html.j2", [entry], depth=2)

    def archive(
        self,
        editions: Sequence[EditionInfo],
        *,
        years: Sequence[str] = (),
        year: str | None = None,
        calendars: Sequence[str] | None = None,
    ) -> str:
        """public/index.html: the editions given, newest first; with `years`, links to each
        year's page; with `year`, public/archive/<year>/index.html, that year's page.
        `calendars`: the languages with a calendar (by default those of these editions)."""
        everything = [e for edition in editions for e in edition.entries]
        depth = 0 if year is None else 2
        root = "../" * depth
        views = [
            {
                "id": edition.id,
                "date": self._local_date(edition.published),
                "entries": [self._entry_view(e, root) for e in edition.entries],
            }
            for edition in editions
        ]
        if calendars is None:
            calendars = sorted({e.language for e in everything if e.is_event})
        feeds = [
            {"language": lang, "webcal": webcal_url(self.config, f"{lang}/calendar.ics")}
            for lang in calendars
        ]
        return self._page(
            "index.html.j2",
            everything,
            depth=depth,
            editions=views,
            calendars=feeds,
            years=list(years),
            year=year,
        )

    def year(self, when: dt.datetime) -> str:
        """The year an edition is filed under in the archive: that of its local date."""
        return str(when.astimezone(self.config.site.tz).year)

    def _local_date(self, when: dt.datetime, language: str | None = None) -> str:
        day = when.astimezone(self.config.site.tz).date()
        return day.isoformat() if language is None else date_range(day, None, language)


class _EntryView(dict[str, Any]):
    """An entry as templates see it. Its `html` and its plain text (`text`, which only the
    email's text part shows) are taken when a template first asks for them: an archive
    page lists hundreds of entries by title, and an entry from the entry cache reads its
    body from the cache's file only when it is used."""

    def __init__(self, entry: Entry, values: dict[str, Any]) -> None:
        super().__init__(values)
        self._entry = entry

    def __missing__(self, key: str) -> Any:
        if key == "html":
            self[key] = html = self._entry.html
            return html
        if key != "text":
            raise KeyError(key)
        self[key] = text = html_to_text(self["html"]).strip()
        return text
