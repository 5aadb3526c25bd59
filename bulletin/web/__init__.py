"""The subscriber web service: one Starlette app under uvicorn.

app        the app for one site, and `serve`
routes     sign-up, confirmation, unsubscribe, preferences, not found
service    the state and helpers the routes share: pages, form checks, emails
security   security headers, rate limits, tokens kept out of the access log
static     public/ served as the archive
"""

from bulletin.web.app import create_app, serve
from bulletin.web.security import RateLimit

__all__ = ["RateLimit", "create_app", "serve"]
