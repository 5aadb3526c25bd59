"""Finds a site's templates and compiles them: the one Jinja environment factory, and MJML.

Compiled templates are kept in the site's state folder (`.bulletin/templates/`), so that
the next command loads them instead of compiling every template again: Jinja reuses one
only while its source is unchanged, and the key names the environment's settings and the
Jinja and Python versions. Only bulletin writes the state folder, so its code is trusted.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket, FileSystemBytecodeCache
from mjml import mjml2html

from bulletin.config.model import Config
from bulletin.errors import RenderError

# Installed from a wheel, the built-in templates sit in the package; in a checkout they
# are the repository's templates/ folder, which is also the sample site's.
_HERE = Path(__file__).resolve().parent.parent  # the bulletin package
DEFAULT_TEMPLATES = next(
    (p for p in (_HERE / "defaults", _HERE.parent / "templates") if p.is_dir()), _HERE
)

# MJML hides the preview text in white; spam filters (SpamAssassin's HTML_FONT_LOW_CONTRAST)
# read white text on a light background as hidden text, so the hidden text gets a dark one.
_PREVIEW_COLOUR = re.compile(r'(<div style="display:none;[^"]*?color:)#ffffff;')

#: What the published outputs escape: web pages and the MJML of the email.
PUBLISHED = ("html", "mjml", "html.j2", "mjml.j2")
#: What the web service escapes: its pages and its emails' HTML.
SERVED = ("html", "html.j2")


def environment(
    config: Config, autoescape: Sequence[str], *, keep_trailing_newline: bool = False
) -> jinja2.Environment:
    """A Jinja environment over the site's own templates/ first, then the built-in ones;
    undefined names are errors. `autoescape` names the file endings escaped as HTML."""
    search = [config.root / "templates", DEFAULT_TEMPLATES]
    settings = f"{sorted(autoescape)}|{keep_trailing_newline}"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search if p.is_dir()]),
        autoescape=jinja2.select_autoescape(list(autoescape)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=keep_trailing_newline,
        bytecode_cache=_CompiledTemplates(config.state_dir / "templates", settings),
        # A run renders thousands of pages: templates are read once, not checked each time.
        auto_reload=False,
    )


class _CompiledTemplates(FileSystemBytecodeCache):
    """Jinja's bytecode cache in a folder of the site's state; a cache that cannot be read
    or written only means compiling again, never a failed render."""

    def __init__(self, folder: Path, settings: str) -> None:
        super().__init__(str(folder))
        self.folder = folder
        # What else decides a template's code: escaping and newlines are compiled in.
        self.settings = f"{settings}|{jinja2.__version__}|{sys.version_info[:2]}"

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        key = f"{self.settings}|{name}|{filename}"
        return hashlib.sha256(key.encode()).hexdigest()

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # damaged: compiled again and replaced
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass  # a read-only site still renders; it compiles each time


@functools.lru_cache(maxsize=64)
def mjml_to_html(mjml: str) -> str:
    """MJML → responsive HTML; MJML's complaints become RenderError."""
    try:
        html: str = mjml2html(mjml, disable_comments=True, fonts={})
    except ValueError as exc:
        raise RenderError(f"templates/email.mjml.j2: MJML error: {exc}") from exc
    return _PREVIEW_COLOUR.sub(r"\1#1f2933;", html, count=1)
