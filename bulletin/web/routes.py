"""The routes of the subscriber web service: sign-up, confirmation, one-click unsubscribe,
preferences, data export and erasure, and the not-found page.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import sqlalchemy as sa
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bulletin.render.words import labels
from bulletin.store import consent, memberships
from bulletin.store.subscribers import normalise_address
from bulletin.web.service import CONFIRM_DAYS, PREFERENCES_DAYS, Service, list_title

MAX_FORM_BYTES = 16 * 1024


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


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

    words = labels(shown, service.config.root)
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
    shown_text = service.consent_shown(form)
    if shown_text is None:  # the form predates a change of the consent text: show the new one
        errors.append(words["error_form"])
    if errors:
        return again(errors, 400)
    assert shown_text is not None
    if not service.per_address.allow(address.lower()):
        response = again([words["too_many"]], 429)
        response.headers["retry-after"] = str(int(service.per_address.window))
        return response
    now = service.clock()
    request_id = secrets.token_urlsafe(18)
    given = consent.Given(consent.Method.WEB_FORM, "/subscribe", language, text=shown_text)

    def record() -> None:
        memberships.purge_unconfirmed(service.engine, now - dt.timedelta(days=CONFIRM_DAYS))
        try:
            memberships.request_subscription(
                service.engine, address, chosen, given, request_id, now
            )
        except sa.exc.IntegrityError:  # the same address signing up twice at once
            memberships.request_subscription(
                service.engine, address, chosen, given, request_id, now
            )

    await run_in_threadpool(record)
    # The email goes after the answer: new, pending and subscribed addresses look alike.
    response = service.page(request, "check_inbox.html.j2", language, depth=0, days=CONFIRM_DAYS)
    response.background = BackgroundTask(
        service.send_confirmation, address, request_id, chosen, language
    )
    return response


async def _confirmation(service: Service, token: str) -> tuple[str, str, list[str], str] | None:
    """The request a confirmation link names, while it can be confirmed: (request id,
    address, lists, language). A link used once, or whose address left those lists or was
    erased since, confirms nothing."""
    fields = service.signer.verify_expiring("confirm", token, service.clock())
    if not fields or len(fields) != 1:
        return None
    found = await run_in_threadpool(memberships.open_request, service.engine, fields[0])
    if found is None:
        return None
    chosen = [k for k in found.lists if k in service.lists]
    return (fields[0], found.email, chosen, found.language) if chosen else None


async def confirm_page(request: Request) -> Response:
    service = _service(request)
    found = await _confirmation(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    _, address, chosen, language = found
    return service.page(
        request, "confirm.html.j2", service.language(request, language),
        address=address, chosen=chosen, done=False, preferences="",
    )  # fmt: skip


async def confirm(request: Request) -> Response:
    service = _service(request)
    found = await _confirmation(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    request_id, address, chosen, language = found
    form = await _form(request)
    shown = service.language(request, language)
    if not service.csrf_ok(request, form):
        return service.page(
            request, "confirm.html.j2", shown, status=403, address=address, chosen=chosen,
            done=False, preferences="", errors=[labels(shown, service.config.root)["error_form"]],
        )  # fmt: skip
    now = service.clock()
    chosen = await run_in_threadpool(memberships.confirm_request, service.engine, request_id, now)
    if not chosen:  # confirmed by another click meanwhile
        return service.invalid(request)
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
    words = labels(language, service.config.root)

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
    if not service.per_address_links.allow(address.lower()):
        return again([words["too_many"]], 429, service.per_address_links.window)
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


def _elsewhere(request: Request, service: Service, list_key: str, status: int) -> Response | None:
    """The answer for a link to a list bulletin cannot take anyone off: an external list
    (its own list server keeps its members) or a partner's desk. None for our own lists."""
    config = service.config
    external = config.lists.get(list_key)
    partner = config.partners.get(list_key)
    if not (external and external.external) and partner is None:
        return None
    words = labels(service.language(request), service.config.root)
    if external is not None and external.external:
        text = words["unsubscribe_external"].format(
            list=external.name, address=external.address, site=config.site.title
        )
    else:
        assert partner is not None
        contact = config.sender.reply_to or config.sender.address
        text = words["unsubscribe_partner"].format(
            list=partner.name, site=config.site.title, contact=contact
        )
    return service.page(request, "unsubscribe_elsewhere.html.j2", service.language(request),
                        status=status, text=text)  # fmt: skip


async def unsubscribe_page(request: Request) -> Response:
    service = _service(request)
    found = _unsubscription(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    elsewhere = _elsewhere(request, service, found[0], 200)
    return elsewhere or _unsubscribe_answer(request, service, found, done=False)


async def unsubscribe(request: Request) -> Response:
    """RFC 8058 one-click: the token is the authority; no cookie, no CSRF token, no redirect.
    It unsubscribes and grants nothing else (no link to the address's preferences)."""
    service = _service(request)
    found = _unsubscription(service, request.path_params["token"])
    if found is None:
        return service.invalid(request)
    form = await _form(request)
    if form.get("List-Unsubscribe") != "One-Click":
        return service.invalid(request)
    # Nobody is taken off an external list or a partner's desk here: say so, change nothing.
    elsewhere = _elsewhere(request, service, found[0], 400)
    if elsewhere is not None:
        return elsewhere
    list_key, address = found
    await run_in_threadpool(
        memberships.unsubscribe, service.engine, list_key, address, service.clock()
    )
    return _unsubscribe_answer(request, service, found, done=True)


def _unsubscribe_answer(
    request: Request, service: Service, found: tuple[str, str], done: bool
) -> Response:
    list_key, address = found
    language = service.language(request)
    return service.page(
        request, "unsubscribe.html.j2", language, address=address,
        list_name=list_title(service.config, list_key), done=done,
    )  # fmt: skip


def _preferences_address(service: Service, token: str) -> str | None:
    fields = service.signer.verify_expiring("preferences", token, service.clock())
    return fields[0] if fields and len(fields) == 1 else None


async def _preferences_page(
    request: Request, service: Service, address: str, status: int = 200, **context: Any
) -> Response:
    rows = await run_in_threadpool(memberships.subscriptions, service.engine, address)
    active = {r.list_key for r in rows if r.status in (memberships.ACTIVE, memberships.PENDING)}
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
    words = labels(service.language(request), service.config.root)
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
        shown_text = service.consent_shown(form)
        if shown_text is None:
            return await _preferences_page(
                request, service, address, status=400, errors=[words["error_form"]]
            )
        wanted = {k for k in form.getlist("lists") if k in service.lists}
        given = consent.Given(consent.Method.PREFERENCES, "/preferences", language,
                              text=shown_text)  # fmt: skip
        await run_in_threadpool(
            memberships.set_preferences, service.engine, service.config, address, wanted,
            given, now,
        )  # fmt: skip
        return await _preferences_page(request, service, address, saved=True)
    if action == "export":
        data = await run_in_threadpool(
            memberships.personal_data, service.engine, service.config, address
        )
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
        await run_in_threadpool(memberships.erase, service.engine, address, stand_in, now)
        return service.page(request, "erased.html.j2", service.language(request))
    return await _preferences_page(request, service, address, status=400)


async def not_found(request: Request, exc: Exception) -> Response:
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
