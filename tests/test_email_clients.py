"""The built-in email against Can I Email's data (with @jsx-email/doiuse-email, from npm) for
Gmail (web and apps), Outlook (Windows, web), Apple Mail and Thunderbird: every feature a
client lacks has its fallback written down in tests/email_clients/fallbacks.toml."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.test_golden import GOLDEN

HERE = Path(__file__).parent / "email_clients"
PACKAGE = HERE.parent.parent / ".cache" / "npm" / "node_modules" / "@jsx-email" / "doiuse-email"
CLIENTS = [
    "gmail.*",  # web, iOS, Android, mobile webmail
    "outlook.windows",
    "outlook.windows-mail",
    "outlook.outlook-com",  # Outlook on the web
    "apple-mail.*",
    "thunderbird.*",
]
UNSUPPORTED = re.compile(r"`(.+)` is not supported by `(.+)`")


def _can_i_email(html: Path) -> dict:
    if shutil.which("node") is None or not PACKAGE.is_dir():
        reason = "Can I Email's data is missing; scripts/test installs it from npm"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        ["node", str(HERE / "doiuse.cjs"), str(html), *CLIENTS],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_every_feature_a_client_lacks_has_a_written_fallback() -> None:
    result = _can_i_email(GOLDEN / "email.html")
    lacking: dict[str, set[str]] = {}
    for error in result.get("errors", []):
        match = UNSUPPORTED.match(error)
        assert match, error
        lacking.setdefault(match.group(1), set()).add(match.group(2))
    assert lacking, "Can I Email reports nothing: is the data there?"
    fallbacks = tomllib.loads((HERE / "fallbacks.toml").read_text())["fallbacks"]
    missing = {f: sorted(c) for f, c in lacking.items() if f not in fallbacks}
    assert missing == {}, f"unsupported without a written fallback: {missing}"


def test_the_email_declares_its_colour_schemes_for_apple_mail_and_outlook() -> None:
    html = (GOLDEN / "email.html").read_text()
    assert '<meta name="color-scheme" content="light dark"' in html
    assert '<meta name="supported-color-schemes" content="light dark"' in html
    assert "@media (prefers-color-scheme: dark)" in html
