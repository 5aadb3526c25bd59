"""The next edition's previews, for the person asked to confirm it and no one else.

`/preview/<path>?t=<token>` serves `public/preview/<path>` when the token was signed with
the site key for the edition whose previews are there, and has not expired (it expires with
the confirmation's pause). Anything else is the service's 404, as for every unknown page:
a preview is never public, so no static host or crawler sees an edition before it is
approved. Answers are never cached and never indexed.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulletin.config.model import Config
from bulletin.tokens import Signer

PURPOSE = "preview"  # bulletin.pipeline.confirmation signs with it
MARKER = "edition.txt"  # in public/preview/: the edition whose previews are there
HEADERS = {
    "cache-control": "private, no-store",
    "x-robots-tag": "noindex, nofollow",
    "referrer-policy": "no-referrer",
}


def preview_route(config: Config, key: SecretStr, clock: Callable[[], dt.datetime]) -> Route:
    """The route of the previews, for `web.app.create_app`."""
    signer = Signer(key)
    folder = config.public_dir / "preview"

    async def show(request: Request) -> Response:
        fields = signer.verify_expiring(PURPOSE, request.query_params.get("t", ""), clock())
        if not fields or fields[0] != _current_edition(folder):
            raise HTTPException(404)
        path = (folder / request.path_params["path"]).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            raise HTTPException(404)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        return Response(path.read_bytes(), media_type=kind, headers=HEADERS)

    return Route("/preview/{path:path}", show, methods=["GET"])


def _current_edition(folder: Path) -> str | None:
    marker = folder / MARKER
    try:
        return marker.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
