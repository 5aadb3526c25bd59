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
# A CLI publish keeps a Prefect server running after it exits, unless told otherwise; tests
# leave nothing running: one temporary server per run (tests/test_local_server.py tests the
# background one, in a Prefect home of its own, and stops it).
os.environ.setdefault("BULLETIN_PREFECT_SERVER", "temporary")
#: The fixture site's approvers' private keys (test keys, public in this repository).
APPROVER_KEYS = Path(__file__).parent / "fixtures" / "approvers"
os.environ["BULLETIN_APPROVER_KEYS"] = str(APPROVER_KEYS)

FIXTURE_SITE = Path(__file__).parent / "fixtures" / "site"
REPO = Path(__file__).resolve().parent.parent


def approver_key(config, by: str = "Press Office"):
    """The fixture approver's signing key, for `bulletin.content.approval.approve`."""
    from bulletin.content.approvers import signing_key

    return signing_key(config, by)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures/site: two approved entries (en, ro)."""
    target = tmp_path / "site"
    # Without the state a test run may have left in the fixture (caches of its entries).
    shutil.copytree(FIXTURE_SITE, target, ignore=shutil.ignore_patterns(".bulletin"))
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


# --- Databases: every database bulletin supports (tests/test_database.py) -------------------
# The PostgreSQL server is scripts/postgres's (scripts/test starts it and exports its URL).

POSTGRES_URL_ENV = "BULLETIN_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path):
    """The URL of a new, empty database: a SQLite file, or a PostgreSQL database of its own
    (dropped after the test). PostgreSQL is skipped without BULLETIN_TEST_POSTGRES_URL,
    except in CI, where that fails."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'bulletin.db'}"
        return
    server = os.environ.get(POSTGRES_URL_ENV)
    if not server:
        reason = f"{POSTGRES_URL_ENV} is not set; scripts/test starts PostgreSQL and sets it"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI runs the PostgreSQL tests: {reason}")
        pytest.skip(reason)

    import uuid

    import psycopg
    import sqlalchemy as sa

    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_open_engines: list = []


def connected(url: str):
    """`bulletin.store.database.connect(url)`, disposed of when the test ends."""
    from bulletin.store.database import connect

    engine = connect(url)
    _open_engines.append(engine)
    return engine


@pytest.fixture(autouse=True)
def _dispose_open_engines():
    yield
    while _open_engines:
        _open_engines.pop().dispose()
