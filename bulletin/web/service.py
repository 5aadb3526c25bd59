"""The web service's state and what its routes share: pages, languages, form checks, and
the confirmation and preferences emails.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import SecretStr
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bulletin.config.model import Config
from bulletin.delivery.transports import Sent, Transport
from bulletin.mail.builder import compose
from bulletin.render.notices import email_values, page_values, site_notices
from bulletin.render.templates import SERVED, environment
from bulletin.render.words import LANGUAGE_NAMES, labels
from bulletin.store import consent, memberships
from bulletin.store.subscribers import open_lists
from bulletin.tokens import Signer
from bulletin.web.security import RateLimit

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
        transport: Callable[[], Transport],
        clock: Callable[[], dt.datetime],
        *,
        per_client: RateLimit | None = None,
        per_address: RateLimit | None = None,
        per_address_links: RateLimit | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.signer = Signer(key)
        self.transport = transport
        self.clock = clock
        self.per_client = per_client or RateLimit(10, 600)
        # Sign-ups and preference links count apart: sign-ups for someone else's address
        # must not lock its owner out of their own preferences.
        self.per_address = per_address or RateLimit(3, 3600)
        self.per_address_links = per_address_links or RateLimit(3, 3600)
        self.lists = open_lists(config)
        self.languages = _site_languages(config)
        self.secure_cookie = config.site.url.startswith("https://")
        self.origin = _origin(config.site.url)
        self.env = environment(config, SERVED)
        self.consent_texts = {code: self._consent_text(code) for code in self.languages}
        self.consent_by_hash = {text.sha256: text for text in self.consent_texts.values()}

    def _consent_text(self, language: str) -> consent.ConsentText:
        """The consent text the forms show in `language`: templates/web/consent/<language>
        .txt.j2, else the site language's. Its SHA-256 is what a consent record keeps."""
        names = [f"web/consent/{code}.txt.j2" for code in (language, self.config.site.language)]
        template = self.env.select_template([*names, "web/consent/en.txt.j2"])
        text = " ".join(template.render(site=self.config.site, language=language).split())
        return consent.ConsentText(language, str(template.name), text)

    def consent_shown(self, form: FormData) -> consent.ConsentText | None:
        """The consent text a posted form showed (its hash rides in the form), if current."""
        return self.consent_by_hash.get(str(form.get("consent", "")))

    # --- pages --------------------------------------------------------------------------

    def language(self, request: Request, preferred: str = "") -> str:
        """?lang=, else the subscriber's own, else the browser's first the site has; codes
        compared case-insensitively (a subscriber's sr-latn is the site's sr-Latn)."""
        by_lower = {code.lower(): code for code in self.languages}
        candidates = [request.query_params.get("lang", ""), preferred]
        for part in request.headers.get("accept-language", "").split(","):
            subtags = part.split(";")[0].strip().split("-")
            # RFC 4647 lookup: sr-Latn-RS, then sr-Latn, then sr
            candidates += ["-".join(subtags[:n]) for n in range(len(subtags), 0, -1)]
        for candidate in candidates:
            if candidate.lower() in by_lower:
                return by_lower[candidate.lower()]
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
            t=labels(language, self.config.root),
            root=root,
            notices=page_values(site_notices(self.config, language), root),
            csrf=self.signer.sign("csrf", nonce),
            languages={code: LANGUAGE_NAMES.get(code, code) for code in self.languages},
            lists=self.lists,
            consent=self.consent_texts.get(language) or self.consent_texts[self.languages[0]],
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

    def send_confirmation(
        self, address: str, request_id: str, list_keys: list[str], language: str
    ) -> None:
        """The double opt-in email: a sealed link, naming the sign-up request, that makes the
        address active once."""
        expires = self.clock() + dt.timedelta(days=CONFIRM_DAYS)
        token = self.signer.sign_expiring("confirm", expires, request_id)
        t = labels(language, self.config.root)
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
        if not memberships.subscriptions(self.engine, address):
            return  # nothing to manage; the page said the same as for a subscriber
        expires = self.clock() + dt.timedelta(days=PREFERENCES_DAYS)
        token = self.signer.sign_expiring("preferences", expires, address)
        t = labels(language, self.config.root)
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
        notices = site_notices(self.config, language)
        context.update(site=self.config.site, language=language, notices=email_values(notices))
        message = compose(
            self.config,
            to=address,
            subject=context["subject"],
            text=self.env.get_template("web/email.txt.j2").render(**context),
            html=self.env.get_template("web/email.html.j2").render(**context),
            notices=notices,
            when=self.clock(),
            edition=kind,
            target="web",
            id_left=kind,
        )
        # The address stays out of the log; the reader can ask again.
        try:
            with self.transport() as transport:
                sent = transport.send(message)
        except Exception as exc:  # the server is down or refuses us
            log.error("a %s email could not be sent: %s", kind, type(exc).__name__)
            return
        if not isinstance(sent, Sent):
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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
