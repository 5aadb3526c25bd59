"""The subscriber web service: sign-up with double opt-in, one-click unsubscribe, preferences,
data export and erasure, and the archive and feeds of public/, as one Starlette app.

    GET  /subscribe                 form: address, lists, language
    POST /subscribe                 pending + a confirmation email; the same answer for anyone
    GET  /confirm/<token>           page with a button (mail scanners follow links)
    POST /confirm/<token>           the address becomes active
    GET  /unsubscribe/<token>       page with a button
    POST /unsubscribe/<token>       body List-Unsubscribe=One-Click: done, 200 (RFC 8058)
    GET  /preferences               form: an address, to be sent a link to its preferences
    POST /preferences               the link goes by email; the same answer for anyone
    GET  /preferences/<token>       lists, language, export, erase
    POST /preferences/<token>       action=save | export | erase
    GET  /, /<edition>/, /feed.xml  public/, as `build` and `publish` wrote it

Tokens are HMAC-signed with the site's key (bulletin/tokens.py); forms carry a signed CSRF
token bound to a cookie, and cross-site posts are refused. Only the one-click POST needs
neither: its token is its authority, as RFC 8058 requires.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import hmac
import json
import logging
import mimetypes
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import sqlalchemy as sa
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bulletin import subscribers as subs
from bulletin.config import Config
from bulletin.messages import Message as Mail
from bulletin.render import DEFAULT_TEMPLATES
from bulletin.subscribers import normalise_address
from bulletin.tokens import Signer
from bulletin.web_labels import LANGUAGE_NAMES, web_labels

log = logging.getLogger("bulletin.web")

CONFIRM_DAYS = 3
PREFERENCES_DAYS = 7
CSRF_COOKIE = "bulletin_csrf"
MAX_FORM_BYTES = 16 * 1024
CACHED_FILE_BYTES = 512 * 1024  # public/ files up to this size are served from memory
CACHED_FILES = 4096
#: Paths whose last segment is a token: the access log shows [token] instead.
TOKEN_PATH = re.compile(r"/(unsubscribe|confirm|preferences)/[^/?#\s]+")

CSP = (
    "default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
FEED_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
}


class RateLimit:
    """At most `limit` events per key in a sliding `window` of seconds, in this process."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._events: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys:  # bound memory under a flood of keys
                    self._prune(now)
                events = self._events[key] = collections.deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]
        if len(self._events) >= self.max_keys:
            self._events.clear()


class SecurityHeaders:
    """Adds the security headers to every response, pages and files alike."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            # Token URLs must never leak to another site through Referer. Not no-referrer:
            # under it browsers send `Origin: null` with our own forms.
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RedactTokens(logging.Filter):
    """Keeps tokens out of uvicorn's access log: /unsubscribe/<token> becomes …/[token]."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = TOKEN_PATH.sub(r"/\1/[token]", str(args[2]).split("?", 1)[0])
            record.args = tuple(args)
        return True


class PublicFiles(StaticFiles):
    """public/ as the archive: feed content types, caching headers, no previews of the next
    edition (they are not published yet) and no temporary files of a writer.

    Pages and feeds are small and read far more often than `publish` rewrites them, so they
    are kept in memory, checked against one stat per request; larger files stream from disk.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self._cache: dict[str, tuple[tuple[int, int], bytes, dict[str, str]]] = {}

    async def check_config(self) -> None:
        """public/ may not exist yet (nothing built): that is a 404, not a crash."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        parts = Path(path).parts
        if parts and (parts[0] == "preview" or any(p.startswith(".") for p in parts)):
            return "", None
        return super().lookup_path(path)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] in ("GET", "HEAD"):
            cached = self._from_memory(path, scope)
            if cached is not None:
                return cached
        return await super().get_response(path, scope)

    def _from_memory(self, path: str, scope: Scope) -> Response | None:
        full, found = self.lookup_path(path)
        if found and stat.S_ISDIR(found.st_mode) and scope["path"].endswith("/"):
            full, found = self.lookup_path(os.path.join(path, "index.html"))
        if not found or not stat.S_ISREG(found.st_mode) or found.st_size > CACHED_FILE_BYTES:
            return None
        version = (found.st_mtime_ns, found.st_size)
        entry = self._cache.get(full)
        if entry is None or entry[0] != version:
            body = Path(full).read_bytes()
            headers = _file_headers(full, body, found)
            if len(self._cache) >= CACHED_FILES:
                self._cache.clear()
            entry = self._cache[full] = (version, body, headers)
        _, body, headers = entry
        if self.is_not_modified(Headers(headers), Headers(scope=scope)):
            return NotModifiedResponse(Headers(headers))
        if scope["method"] == "HEAD":
            return Response(b"", headers=headers)
        return Response(body, headers=headers)

    def file_response(
        self, full_path, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = os.path.basename(full_path)
        if name in FEED_TYPES:
            response.headers["content-type"] = FEED_TYPES[name]
        response.headers["cache-control"] = _cache_control(name)
        return response


def _cache_control(name: str) -> str:
    # Pages and feeds change at each publish; images hardly ever.
    fresh = 300 if name.endswith((".html", ".xml")) else 86400
    return f"public, max-age={fresh}"


def _file_headers(full: str, body: bytes, found: os.stat_result) -> dict[str, str]:
    name = os.path.basename(full)
    kind = FEED_TYPES.get(name)
    if kind is None:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/xml", "application/json"):
            kind += "; charset=utf-8"
    return {
        "content-type": kind,
        "content-length": str(len(body)),
        "etag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        "last-modified": formatdate(found.st_mtime, usegmt=True),
        "cache-control": _cache_control(name),
    }


class Service:
    """The app's state: the site, its database, its key, its transport and rate limits."""

    def __init__(
        self,
        config: Config,
        engine: sa.Engine,
        key: SecretStr,
        transport: Callable[[], Any],
        clock: Callable[[], dt.datetime],
        *,
        per_client: RateLimit | None = None,
        per_address: RateLimit | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.signer = Signer(key)
        self.transport = transport
        self.clock = clock
        self.per_client = per_client or RateLimit(10, 600)
        self.per_address = per_address or RateLimit(3, 3600)
        self.lists = subs.open_lists(config)
        self.languages = _site_languages(config)
        self.secure_cookie = config.site.url.startswith("https://")
        self.origin = _origin(config.site.url)
        search = [config.root / "templates", DEFAULT_TEMPLATES]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in search if p.is_dir()]),
            autoescape=jinja2.select_autoescape(["html", "html.j2"]),
            undefined=jinja2.StrictUndefined,
        )

    # --- pages --------------------------------------------------------------------------

    def language(self, request: Request, preferred: str = "") -> str:
        asked = request.query_params.get("lang", "")
        if asked in self.languages:
            return asked
        if preferred in self.languages:
            return preferred
        for part in request.headers.get("accept-language", "").split(","):
            code = part.split(";")[0].strip().lower()[:2]
            if code in self.languages:
                return code
        return self.config.site.language

    def page(
        self,
        request: Request,
        template: str,
        language: str,
        status: int = 200,
        depth: int = 1,
        **context: Any,
    ) -> HTMLResponse:
        nonce = request.cookies.get(CSRF_COOKIE, "")
        fresh = not re.fullmatch(r"[A-Za-z0-9_-]{22,64}", nonce)
        if fresh:
            nonce = secrets.token_urlsafe(18)
        root = "../" * depth
        html = self.env.get_template(f"web/{template}").render(
            site=self.config.site,
            language=language,
            t=web_labels(language),
            root=root,
            notices=_notices(self.config, language, root),
            csrf=self.signer.sign("csrf", nonce),
            languages={code: LANGUAGE_NAMES.get(code, code) for code in self.languages},
            lists=self.lists,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["cache-control"] = "no-store"
        if fresh:
            response.set_cookie(
                CSRF_COOKIE,
                nonce,
                httponly=True,
                samesite="lax",
                secure=self.secure_cookie,
                path="/",
            )
        return response

    def invalid(self, request: Request, status: int = 400) -> HTMLResponse:
        language = self.language(request)
        return self.page(request, "invalid.html.j2", language, status=status)

    # --- checks -------------------------------------------------------------------------

    def same_site(self, request: Request) -> bool:
        """False for a form posted from another site (browsers say so in these headers)."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return origin in (own, self.origin)

    def csrf_ok(self, request: Request, form: FormData) -> bool:
        nonce = request.cookies.get(CSRF_COOKIE, "")
        fields = self.signer.verify("csrf", str(form.get("csrf", ""))) or [""]
        bound = hmac.compare_digest(fields[0].encode(), nonce.encode())
        return bool(nonce) and len(fields) == 1 and bound and self.same_site(request)

    # --- the confirmation email -----------------------------------------------------------

    def send_confirmation(self, address: str, list_keys: list[str], language: str) -> None:
        """The double opt-in email: a signed link that makes the address active."""
        expires = self.clock() + dt.timedelta(days=CONFIRM_DAYS)
        token = self.signer.sign_expiring(
            "confirm", expires, address, ",".join(list_keys), language
        )
        t = web_labels(language)
        self._send(
            address, language, "confirmations",
            subject=t["confirm_email_subject"].format(site=self.config.site.title),
            intro=t["confirm_email_intro"].format(address=address),
            items=[self.lists[k] for k in list_keys],
            action=t["confirm_email_action"].format(days=CONFIRM_DAYS),
            link=f"{self.config.site.url}confirm/{token}",
            button=t["confirm_button"],
            ignore=t["confirm_email_ignore"],
        )  # fmt: skip

    def send_preferences_link(self, address: str, language: str) -> None:
        """A link to the preferences page, for an address that is on a list."""
        if not subs.subscriptions(self.engine, address):
            return  # nothing to manage; the page said the same as for a subscriber
        expires = self.clock() + dt.timedelta(days=PREFERENCES_DAYS)
        token = self.signer.sign_expiring("preferences", expires, address)
        t = web_labels(language)
        self._send(
            address, language, "preferences",
            subject=t["preferences_email_subject"].format(site=self.config.site.title),
            intro=t["preferences_email_intro"].format(address=address),
            items=[],
            action=t["preferences_email_action"].format(days=PREFERENCES_DAYS),
            link=f"{self.config.site.url}preferences/{token}",
            button=t["preferences_button"],
            ignore=t["preferences_email_ignore"],
        )  # fmt: skip

    def _send(self, address: str, language: str, kind: str, **context: Any) -> None:
        """One transactional email (text, HTML with the emblem) through the site's transport;
        it lands in outbox/email/<kind>/ with the outbox transport."""
        notices = _notices(self.config, language, "cid:")
        context.update(site=self.config.site, language=language, notices=notices)
        mail = EmailMessage(policy=SMTP)
        mail["From"] = self.config.sender.from_
        if self.config.sender.reply_to:
            mail["Reply-To"] = self.config.sender.reply_to
        mail["To"] = address
        mail["Subject"] = context["subject"]
        mail["Date"] = format_datetime(self.clock())
        mail["Message-ID"] = make_msgid(kind, domain=self.config.sender.domain)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(self.env.get_template("web/email.txt.j2").render(**context))
        html = self.env.get_template("web/email.html.j2").render(**context)
        mail.add_alternative(html, subtype="html")
        html_part = mail.get_payload()[1]
        for notice in notices:
            html_part.add_related(
                (self.config.root / notice["emblem"]).read_bytes(),
                "image",
                "png",
                cid=f"<{notice['cid']}>",
                filename=Path(notice["emblem"]).name,
            )
        data = mail.as_bytes()
        from bulletin.dkim import DkimSigner

        dkim = DkimSigner.for_config(self.config)
        if dkim is not None:
            data = dkim.sign(data)
        message = Mail(
            channel="email",
            edition=kind,
            target="web",
            recipient=address,
            data=data,
            name=f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}",
            sender=self.config.sender.address,
            message_id=str(mail["Message-ID"]),
        )
        try:
            with self.transport() as transport:
                transport.send(message)
        except Exception as exc:
            # The address stays out of the log; the reader can ask again.
            log.error("a %s email could not be sent: %s", kind, type(exc).__name__)

    def preferences_link(self, address: str) -> str:
        expires = self.clock() + dt.timedelta(days=PREFERENCES_DAYS)
        return "../preferences/" + self.signer.sign_expiring("preferences", expires, address)


# --- routes ---------------------------------------------------------------------------------


def _service(request: Request) -> Service:
    return request.app.state.service


async def _form(request: Request) -> FormData:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise HTTPException(413)
    try:
        return await request.form(max_files=0, max_fields=40, max_part_size=MAX_FORM_BYTES)
    except HTTPException:
        raise
    except Exception as exc:  # a body python-multipart cannot read
        raise HTTPException(400) from exc


async def subscribe_form(request: Request) -> Response:
    service = _service(request)
    language = service.language(request)
    return service.page(
        request, "subscribe.html.j2", language, depth=0, errors=[], chosen=[], email=""
    )


async def subscribe(request: Request) -> Response:
    service = _service(request)
    form = await _form(request)
    language = str(form.get("language", ""))
    shown = language if language in service.languages else service.language(request)
    email = str(form.get("email", "")).strip()[:320]
    chosen = list(dict.fromkeys(k for k in form.getlist("lists") if k in service.lists))

    def again(errors: list[str], status: int) -> Response:
        return service.page(
            request, "subscribe.html.j2", shown, status=status, depth=0,
            errors=errors, chosen=chosen, email=email,
        )  # fmt: skip

    words = web_labels(shown)
    if not service.csrf_ok(request, form):
        return again([words["error_form"]], 403)
    client = request.client.host if request.client else "unknown"
    if not service.per_client.allow(client):
        response = again([words["too_many"]], 429)
        response.headers["retry-after"] = str(int(service.per_client.window))
        return response
    errors = []
    try:
        address = normalise_address(email)
    except ValueError:
        address = ""
        errors.append(words["error_email"])
    if not chosen and len(service.lists) > 1:
        errors.append(words["error_lists"])
    if len(service.lists) == 1:
        chosen = list(service.lists)
    if language not in service.languages:
        errors.append(words["error_language"])
    if errors:
        return again(errors, 400)
    if not service.per_address.allow(address.lower()):
        response = again([words["too_many"]], 429)
        response.headers["retry-after"] = str(int(service.per_address.window))
        return response
    now = service.clock()

    def record() -> None:
        subs.purge_unconfirmed(service.engine, now - dt.timedelta(days=CONFIRM_DAYS))
        try:
            subs.request_subscription(service.engine, address, chosen, language, now)
        except sa.exc.IntegrityError:  # the same address signing up twice at once
            subs.request_subscription(service.engine, address, chosen, language, now)

    await run_in_threadpool(record)
    # The email goes after the answer: new, pending and subscribed addresses look alike.
    response = service.page(request, "check_inbox.html.j2", language, depth=0, days=CONFIRM_DAYS)
    response.background = BackgroundTask(service.send_confirmation, address, chosen, language)
    return response


def _confirmation(service: Service, token: str) -> tuple[str, list[str], str] | None:
    fields = service.signer.verify_expiring("confirm", token, service.clock())
    if not fields or len(fields) != 3:
        return None
    address, keys, language = fields
    chosen = [k for k in keys.split(",") if k in service.lists]
    return (address, chosen, language) if chosen else None


async def confirm_page(request: Request) -> Response:
    service = _service(request)
    found = _confirmation(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    address, chosen, language = found
    return service.page(
        request, "confirm.html.j2", service.language(request, language),
        address=address, chosen=chosen, done=False, preferences="",
    )  # fmt: skip


async def confirm(request: Request) -> Response:
    service = _service(request)
    found = _confirmation(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    address, chosen, language = found
    form = await _form(request)
    shown = service.language(request, language)
    if not service.csrf_ok(request, form):
        return service.page(
            request, "confirm.html.j2", shown, status=403, address=address, chosen=chosen,
            done=False, preferences="", errors=[web_labels(shown)["error_form"]],
        )  # fmt: skip
    now = service.clock()
    await run_in_threadpool(
        subs.confirm_subscription, service.engine, address, chosen, language, now
    )
    return service.page(
        request, "confirm.html.j2", shown, address=address, chosen=chosen, done=True,
        preferences=service.preferences_link(address),
    )  # fmt: skip


async def preferences_request_form(request: Request) -> Response:
    service = _service(request)
    return service.page(
        request, "preferences_request.html.j2", service.language(request), depth=0,
        sent=False, email="", days=PREFERENCES_DAYS,
    )  # fmt: skip


async def preferences_request(request: Request) -> Response:
    """Send a preferences link to an address: the same answer whether it is known or not."""
    service = _service(request)
    form = await _form(request)
    language = str(form.get("language", ""))
    language = language if language in service.languages else service.language(request)
    email = str(form.get("email", "")).strip()[:320]
    words = web_labels(language)

    def again(errors: list[str], status: int, retry: float | None = None) -> Response:
        response = service.page(
            request, "preferences_request.html.j2", language, status=status, depth=0,
            sent=False, email=email, days=PREFERENCES_DAYS, errors=errors,
        )  # fmt: skip
        if retry is not None:
            response.headers["retry-after"] = str(int(retry))
        return response

    if not service.csrf_ok(request, form):
        return again([words["error_form"]], 403)
    client = request.client.host if request.client else "unknown"
    if not service.per_client.allow(client):
        return again([words["too_many"]], 429, service.per_client.window)
    try:
        address = normalise_address(email)
    except ValueError:
        return again([words["error_email"]], 400)
    if not service.per_address.allow(address.lower()):
        return again([words["too_many"]], 429, service.per_address.window)
    response = service.page(
        request, "preferences_request.html.j2", language, depth=0, sent=True, email="",
        days=PREFERENCES_DAYS,
    )  # fmt: skip
    response.background = BackgroundTask(service.send_preferences_link, address, language)
    return response


def _unsubscription(service: Service, token: str) -> tuple[str, str] | None:
    fields = service.signer.verify("unsubscribe", token)
    if not fields or len(fields) != 2:
        return None
    return fields[0], fields[1]


async def unsubscribe_page(request: Request) -> Response:
    service = _service(request)
    found = _unsubscription(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    return _unsubscribe_answer(request, service, found, done=False)


async def unsubscribe(request: Request) -> Response:
    """RFC 8058 one-click: the token is the authority; no cookie, no CSRF token, no redirect."""
    service = _service(request)
    found = _unsubscription(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    form = await _form(request)
    if form.get("List-Unsubscribe") != "One-Click":
        return service.invalid(request)
    list_key, address = found
    await run_in_threadpool(subs.unsubscribe, service.engine, list_key, address, service.clock())
    return _unsubscribe_answer(request, service, found, done=True)


def _unsubscribe_answer(
    request: Request, service: Service, found: tuple[str, str], done: bool
) -> Response:
    list_key, address = found
    return service.page(
        request, "unsubscribe.html.j2", service.language(request), address=address,
        list_name=_list_name(service.config, list_key), done=done,
        preferences=service.preferences_link(address),
    )  # fmt: skip


def _preferences_address(service: Service, token: str) -> str | None:
    fields = service.signer.verify_expiring("preferences", token, service.clock())
    return fields[0] if fields and len(fields) == 1 else None


async def _preferences_page(
    request: Request, service: Service, address: str, status: int = 200, **context: Any
) -> Response:
    rows = await run_in_threadpool(subs.subscriptions, service.engine, address)
    active = {r.list_key for r in rows if r.status in (subs.ACTIVE, subs.PENDING)}
    languages = [r.language for r in rows if r.language in service.languages]
    current = languages[0] if languages else service.config.site.language
    shown = service.language(request, current)
    context = {"errors": [], "saved": False, **context}
    return service.page(
        request, "preferences.html.j2", shown, status=status, address=address,
        active=active, current_language=current, **context,
    )  # fmt: skip


async def preferences_page(request: Request) -> Response:
    service = _service(request)
    address = _preferences_address(service, request.path_params["token"])
    if address is None:
        return service.invalid(request)
    return await _preferences_page(request, service, address)


async def preferences(request: Request) -> Response:
    service = _service(request)
    address = _preferences_address(service, request.path_params["token"])
    if address is None:
        return service.invalid(request)
    form = await _form(request)
    words = web_labels(service.language(request))
    if not service.csrf_ok(request, form):
        return await _preferences_page(
            request, service, address, status=403, errors=[words["error_form"]]
        )
    action = form.get("action")
    now = service.clock()
    if action == "save":
        language = str(form.get("language", ""))
        if language not in service.languages:
            return await _preferences_page(
                request, service, address, status=400, errors=[words["error_language"]]
            )
        wanted = {k for k in form.getlist("lists") if k in service.lists}
        await run_in_threadpool(
            subs.set_preferences, service.engine, service.config, address, wanted, language, now
        )
        return await _preferences_page(request, service, address, saved=True)
    if action == "export":
        data = await run_in_threadpool(subs.personal_data, service.engine, service.config, address)
        body = json.dumps(data, ensure_ascii=False, indent=2).encode()
        return Response(
            body,
            media_type="application/json",
            headers={
                "content-disposition": 'attachment; filename="my-subscription-data.json"',
                "cache-control": "no-store",
            },
        )
    if action == "erase":
        if form.get("confirm") != "yes":
            return await _preferences_page(
                request, service, address, status=400, errors=[words["erase_unticked"]]
            )
        stand_in = "erased:" + service.signer.keyed_hash("erased", address.lower())
        await run_in_threadpool(subs.erase, service.engine, address, stand_in, now)
        return service.page(request, "erased.html.j2", service.language(request))
    return await _preferences_page(request, service, address, status=400)


def _list_name(config: Config, list_key: str) -> str:
    item = config.lists.get(list_key)
    return item.name if item else list_key


def _site_languages(config: Config) -> list[str]:
    """The languages the site publishes in: those of its default funding texts, its own first."""
    funding = config.funding.get(config.site.default_funding)
    codes = [config.site.language, *(funding.text if funding else {})]
    return list(dict.fromkeys(codes))


def _notices(config: Config, language: str, root: str) -> list[dict[str, str]]:
    """The funding notice (emblem, statement, disclaimer) in `language`, as the archive shows."""
    rule = config.site.default_funding
    funding = config.funding.get(rule)
    if funding is None:
        return []
    texts = funding.text.get(language) or funding.text.get(config.site.language)
    if texts is None:
        return []
    shown = language if language in funding.text else config.site.language
    cid = f"emblem-{rule}@bulletin"
    return [
        {
            "language": shown,
            "statement": texts.statement.strip(),
            "disclaimer": texts.disclaimer.strip(),
            "emblem": funding.emblem,
            "cid": cid,
            "emblem_src": f"cid:{cid}" if root == "cid:" else root + funding.emblem,
        }
    ]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def _not_found(request: Request, exc: Exception) -> Response:
    service = _service(request)
    status = getattr(exc, "status_code", 404)
    if status != 404:
        return Response(status_code=status, headers=getattr(exc, "headers", None))
    depth = max(request.url.path.count("/") - 1, 0)
    missing = request.url.path == "/" and not service.config.public_dir.is_dir()
    return service.page(
        request, "not_found.html.j2", service.language(request), status=404, depth=depth,
        missing_archive=missing,
    )  # fmt: skip


def create_app(
    config: Config,
    engine: sa.Engine,
    key: SecretStr,
    *,
    transport: Callable[[], Any] | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    dev: bool = False,
    per_client: RateLimit | None = None,
    per_address: RateLimit | None = None,
) -> ASGIApp:
    """The web service for one site. `transport` makes the transport confirmation emails go
    through (the site's configured one by default)."""
    if transport is None:
        from bulletin.transports import from_config

        def transport() -> Any:
            return from_config(config)

    service = Service(
        config, engine, key, transport, clock, per_client=per_client, per_address=per_address
    )

    def emblem(path: str) -> Callable[[Request], Any]:
        async def serve(request: Request) -> Response:
            response = FileResponse(config.root / path, media_type="image/png")
            response.headers["cache-control"] = "public, max-age=86400"
            return response

        return serve

    routes = [
        Route("/subscribe", subscribe_form, methods=["GET"]),
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/confirm/{token}", confirm_page, methods=["GET"]),
        Route("/confirm/{token}", confirm, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
        Route("/preferences", preferences_request_form, methods=["GET"]),
        Route("/preferences", preferences_request, methods=["POST"]),
        Route("/preferences/{token}", preferences_page, methods=["GET"]),
        Route("/preferences/{token}", preferences, methods=["POST"]),
        *(
            Route("/" + f.emblem, emblem(f.emblem), methods=["GET"])
            for f in config.funding.values()
        ),
        Mount("/", PublicFiles(config.public_dir)),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.service = service
    hsts = service.secure_cookie and not dev
    return SecurityHeaders(app, hsts=hsts)


def serve(config: Config, host: str, port: int, *, dev: bool = False) -> None:
    """Run the web service under uvicorn until interrupted."""
    import uvicorn

    from bulletin.database import connect
    from bulletin.errors import ConfigError
    from bulletin.tokens import configured_key, secret_key

    key = configured_key(config.state_dir)
    if key is None and not dev:
        raise ConfigError(
            "serve: no secret key for this site, so it could not check the links in the emails "
            "already sent. Set BULLETIN_SECRET_KEY (or BULLETIN_SECRET_KEY_BLOCK, a Prefect "
            "Secret block) to the key `publish` uses, or run serve where the site's "
            ".bulletin/secret_key is (the first publish creates it); to try serve out, use --dev"
        )
    if dev:
        key = key or secret_key(config.state_dir)
        print(
            "DEVELOPMENT MODE (--dev): not for production. The site's key was created if it "
            "was missing; use a reverse proxy with HTTPS in front of serve in production.",
            flush=True,
        )
    engine = connect(config.database_url)
    app = create_app(config, engine, key, dev=dev)
    settings = uvicorn.Config(
        app, host=host, port=port, server_header=False, proxy_headers=True, log_level="info"
    )
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    print(
        f"Serving {config.site.title} on http://{host}:{port}/ "
        f"(the links in emails point to {config.site.url})",
        flush=True,
    )
    uvicorn.Server(settings).run()
