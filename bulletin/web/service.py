"""The web service's state and what its routes share: pages, languages, form checks, and
the confirmation and preferences emails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import sqlalchemy as sa
from pydantic import SecretStr
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bulletin.config import Config
from bulletin.delivery.transports import Sent
from bulletin.mail.message import Message as Mail
from bulletin.render.renderer import DEFAULT_TEMPLATES
from bulletin.store import subscribers as subs
from bulletin.tokens import Signer
from bulletin.web.security import RateLimit
from bulletin.web.words import LANGUAGE_NAMES, web_labels

log = logging.getLogger("bulletin.web")


CONFIRM_DAYS = 3
PREFERENCES_DAYS = 7
CSRF_COOKIE = "bulletin_csrf"


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
        from bulletin.mail.dkim import DkimSigner

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
                sent = transport.send(message)
        except Exception as exc:
            sent = exc
        if not isinstance(sent, Sent):
            # The address stays out of the log; the reader can ask again.
            log.error("a %s email could not be sent: %s", kind, type(sent).__name__)

    def preferences_link(self, address: str) -> str:
        expires = self.clock() + dt.timedelta(days=PREFERENCES_DAYS)
        return "../preferences/" + self.signer.sign_expiring("preferences", expires, address)


def list_title(config: Config, list_key: str) -> str:
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
