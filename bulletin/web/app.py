"""The subscriber web service: sign-up with double opt-in, one-click unsubscribe, preferences,
data export and erasure, and the archive and feeds of public/, as one Starlette app.

    GET  /subscribe                 form: address, lists, language
    POST /subscribe                 pending + a confirmation email; the same answer for anyone
    GET  /confirm/<token>           page with a button (mail scanners follow links)
    POST /confirm/<token>           the address becomes active
    GET  /unsubscribe/<token>       page with a button
    POST /unsubscribe/<token>       body List-Unsubscribe=One-Click: done, 200 (RFC 8058); the
                                    page offers to email a preferences link, and grants
                                    nothing else. External lists and partners: a page that
                                    says who can take the address off, 400, nothing changes
    GET  /preferences               form: an address, to be sent a link to its preferences
    POST /preferences               the link goes by email; the same answer for anyone
    GET  /preferences/<token>       lists, language, export, erase
    POST /preferences/<token>       action=save | export | erase
    GET  /preview/<path>?t=<token>  the next edition's previews, with a link that expires
                                    with its confirmation (pipeline.confirmation)
    GET  /, /<edition>/, /feed.xml  public/, as `build` and `publish` wrote it

Tokens are sealed with the site's key (bulletin/tokens.py: encrypted and authenticated, so
they carry no readable address); a confirmation link names a sign-up request kept in the
database and confirms it once. Forms carry a signed CSRF token bound to a cookie, and
cross-site posts are refused. Only the one-click POST needs neither: its token is its
authority, as RFC 8058 requires. Redirects point to [site] url, never to the Host header.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from bulletin.config.model import Config
from bulletin.delivery.configured import from_config
from bulletin.delivery.transports import TransportFactory
from bulletin.web.preview import preview_route
from bulletin.web.routes import (
    confirm,
    confirm_page,
    not_found,
    preferences,
    preferences_page,
    preferences_request,
    preferences_request_form,
    subscribe,
    subscribe_form,
    unsubscribe,
    unsubscribe_page,
)
from bulletin.web.security import RateLimit, RedactTokens, SecurityHeaders
from bulletin.web.service import Service
from bulletin.web.static import PublicFiles


def create_app(
    config: Config,
    engine: sa.Engine,
    key: SecretStr,
    *,
    transport: TransportFactory | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    dev: bool = False,
    per_client: RateLimit | None = None,
    per_address: RateLimit | None = None,
    per_address_links: RateLimit | None = None,
) -> ASGIApp:
    """The web service for one site. `transport` makes the transports confirmation emails go
    through (the site's configured ones by default). `per_address` limits sign-ups per
    address, `per_address_links` the preferences links sent to one address."""
    if transport is None:  # the configuration is read at each email, as it stands then
        transport = TransportFactory(lambda: from_config(config, partners=False).email())
    service = Service(
        config, engine, key, transport.email, clock, per_client=per_client,
        per_address=per_address, per_address_links=per_address_links,
    )  # fmt: skip

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
        preview_route(config, key, clock),
        *(
            Route("/" + f.emblem, emblem(f.emblem), methods=["GET"])
            for f in config.funding.values()
        ),
        Mount("/", PublicFiles(config.public_dir)),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.service = service
    hsts = service.secure_cookie and not dev
    return SecurityHeaders(app, hsts=hsts, site_url=config.site.url)


def serve(config: Config, host: str, port: int, *, dev: bool = False) -> None:
    """Run the web service under uvicorn until interrupted."""
    import uvicorn

    from bulletin.errors import ConfigError
    from bulletin.store.database import connect
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
    assert key is not None  # refused above, or made for --dev
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
