"""Shared fixtures: a fresh copy of the fixture site, and one Prefect server per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("BULLETIN_SECRET_KEY", "test-secret-key-not-for-production")

FIXTURE_SITE = Path(__file__).parent / "fixtures" / "site"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures/site: two approved entries (en, ro)."""
    target = tmp_path / "site"
    shutil.copytree(FIXTURE_SITE, target)
    return target


@pytest.fixture
def config(site: Path):
    from bulletin.config import load_config

    return load_config(site)


def run_cli(*args: str, site: Path | None = None, env: dict | None = None):
    """Run `bulletin` in a subprocess, as a user would; returns the CompletedProcess."""
    command = [sys.executable, "-m", "bulletin.cli"]
    if site is not None:
        command += ["--site", str(site)]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session; flows run against it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
