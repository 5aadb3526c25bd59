"""deployments/prefect.yaml on a real Prefect server, deployed and run as scripts/serve-prefect
does it: a `prefect server start` of its own (SQLite in a temporary PREFECT_HOME), the
deployments, and a process worker that runs the flows in subprocesses."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import FIXTURE_SITE, REPO, run_cli

pytestmark = pytest.mark.slow

BUCHAREST = ZoneInfo("Europe/Bucharest")


class _RetryingWhileBusy(httpx.HTTPTransport):
    """Prefect's server answers 503 while its SQLite database is locked by another writer
    (the worker, the scheduler); Prefect's own client retries those, and so does this one."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(6):
            response = super().handle_request(request)
            if response.status_code != 503 or attempt == 5:
                return response
            response.close()
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


@dataclass
class Server:
    api: str
    sites: Path
    default_site: Path  # the site the deployments were made for
    env: dict[str, str]
    http: httpx.Client

    def site(self, name: str, subscribers: bool = True) -> Path:
        """A fresh copy of the fixture site, with its subscribers imported."""
        site = self.sites / name
        shutil.copytree(FIXTURE_SITE, site, ignore=shutil.ignore_patterns(".bulletin"))
        if subscribers:
            done = run_cli("subscribers", "import", "subscribers.csv", "--list", "news", site=site)
            assert done.returncode == 0, done.stderr
        return site

    def deployment(self, name: str) -> dict:
        flow = {"publish": "publish"}.get(name, name)
        response = self.http.get(f"/deployments/name/{flow}/{name}")
        response.raise_for_status()
        return response.json()

    def run(self, name: str, **parameters) -> str:
        deployment = self.deployment(name)
        response = self.http.post(
            f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters}
        )
        response.raise_for_status()
        return response.json()["id"]

    def state(self, run_id: str) -> dict:
        return self.http.get(f"/flow_runs/{run_id}").json()["state"]

    def wait(self, run_id: str, types: set[str], timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(run_id)
            if state and state["type"] in types:
                return state
            time.sleep(0.5)
        raise AssertionError(f"flow run {run_id} is still {state} after {timeout} s")

    def resume(self, run_id: str, answer: dict) -> None:
        """Answer a paused run, as the UI's form does; the run saves the form's schema just
        after it pauses, so the first answers may come too early."""
        deadline = time.monotonic() + 60
        while True:
            response = self.http.post(f"/flow_runs/{run_id}/resume", json={"run_input": answer})
            if response.is_success and response.json().get("status") == "ACCEPT":
                return
            assert time.monotonic() < deadline, response.text
            time.sleep(0.5)

    def artifact(self, run_id: str, key: str) -> str:
        response = self.http.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": [key]}}},
        )
        response.raise_for_status()
        found = response.json()
        assert found, f"no {key!r} artifact on run {run_id}"
        return str(found[0]["data"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    """scripts/serve-prefect on a free port, as a comms person would start it."""
    root = tmp_path_factory.mktemp("prefect")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
        "BULLETIN_VENV": str(Path(sys.executable).parent.parent),
        "PREFECT_HOME": str(root / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",  # no scheduled runs mid-test
    }
    default_site = root / "default-site"
    shutil.copytree(FIXTURE_SITE, default_site, ignore=shutil.ignore_patterns(".bulletin"))
    log = open(root / "serve.log", "w")  # noqa: SIM115 -- closed below
    process = subprocess.Popen(
        [str(REPO / "scripts" / "serve-prefect"), "--site", str(default_site), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    http = httpx.Client(base_url=api, timeout=30, transport=_RetryingWhileBusy())
    try:
        deadline = time.monotonic() + 300
        while "Worker 'bulletin-" not in (root / "serve.log").read_text():
            assert process.poll() is None, (root / "serve.log").read_text()
            assert time.monotonic() < deadline, (root / "serve.log").read_text()
            time.sleep(0.5)
        sites = root / "sites"
        sites.mkdir()
        yield Server(api, sites, default_site, {**env, "PREFECT_API_URL": api}, http)
    finally:
        http.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _emails(site: Path) -> list[Path]:
    return sorted((site / "outbox" / "email").glob("*/*.eml"))


def test_publish_deployment_is_run_by_the_worker_and_fills_the_outbox(server):
    site = server.site("on-demand")
    run = server.run("publish", site=str(site))
    state = server.wait(run, {"COMPLETED", "FAILED", "CRASHED"})
    assert state["type"] == "COMPLETED", state
    to = {message_from_bytes(p.read_bytes())["To"] for p in _emails(site)}
    assert to == {"Ana Popescu <ana@example.org>", "John Carter <john@example.com>",
                  "desk@lists.example.org"}  # fmt: skip
    report = server.artifact(run, "publish-report")
    assert "| news | 2 | 0 | 0 |" in report and "EU notice check" in report


def test_deployment_rejects_a_channel_it_does_not_know(server):
    response = server.http.post(
        f"/deployments/{server.deployment('publish')['id']}/create_flow_run",
        json={"parameters": {"channels": ["fax"]}},
    )
    assert response.status_code == 409, response.text
    assert "fax" in response.text


def test_publish_to_email_only_leaves_partners_out(server):
    site = server.site("email-only")
    run = server.run("publish", site=str(site), channels=["email"])
    assert server.wait(run, {"COMPLETED", "FAILED", "CRASHED"})["type"] == "COMPLETED"
    assert len(_emails(site)) == 3
    assert not (site / "outbox" / "partners").exists()


def test_confirmed_publish_waits_shows_a_preview_then_sends(server):
    site = server.site("confirmed")
    run = server.run("publish", site=str(site), require_confirmation=True)
    server.wait(run, {"PAUSED"})
    assert _emails(site) == []
    recipients = server.artifact(run, "recipients")
    assert '"recipients": 2' in recipients and "news" in recipients
    assert (site / "public" / "preview" / "news" / "email.html").is_file()

    # The confirmation page names every list's subject and links its signed preview,
    # which bulletin serve shows (and shows to no one without the link).
    from starlette.testclient import TestClient

    from bulletin import pipeline as core
    from bulletin.config import load_config
    from bulletin.store.database import connect
    from bulletin.tokens import secret_key
    from bulletin.web.app import create_app

    config = load_config(site)
    engine = connect(config.database_url)
    planned = core.plan(config, engine, record=False)
    page = server.artifact(run, "confirmation")
    for key, (email, _) in planned.emails.items():
        assert f"| list {key} | {email.subject} |" in page, key
    link = re.search(r"\((https://news\.example\.org/preview/news/email\.html\?t=[^)#]+)", page)
    assert link, page
    client = TestClient(create_app(config, engine, secret_key(config.state_dir)))
    path = link.group(1).removeprefix("https://news.example.org")
    assert client.get(path).status_code == 200
    assert "Workshop on firearms" in client.get(path).text
    assert client.get(path.split("?")[0]).status_code == 404

    # Unticking an entry sends the rest and leaves it for the next edition.
    server.resume(
        run, {"approve": True, "name": "Ana Popescu", "send_2019_12_05_curs_regional": False}
    )
    assert server.wait(run, {"COMPLETED", "FAILED", "CRASHED"})["type"] == "COMPLETED"
    sent = _emails(site)
    assert sent and not any(b"curs-regional" in p.read_bytes() for p in sent)
    report = server.artifact(run, "publish-report")
    assert "confirmed by Ana Popescu" in report
    assert "left for a later edition (unticked): 2019-12-05-curs-regional" in report
    later = run_cli("publish", "--dry-run", "--json", site=site)
    assert '"entries": [\n    "2019-12-05-curs-regional"\n  ]' in later.stdout, later.stdout


@pytest.mark.parametrize(
    ("answer", "timeout", "says"),
    [
        ({"approve": False, "name": "Ion"}, 3600, "rejected by Ion"),
        (None, 5, "not confirmed within 5 s"),
    ],
    ids=["rejected", "timed-out"],
)
def test_rejected_or_unanswered_publish_sends_nothing_and_says_so(server, answer, timeout, says):
    site = server.site(f"not-confirmed-{says.split()[0]}")
    run = server.run(
        "publish", site=str(site), require_confirmation=True, confirmation_timeout_seconds=timeout
    )
    server.wait(run, {"PAUSED"})
    if answer is not None:
        server.resume(run, answer)
    state = server.wait(run, {"COMPLETED", "CANCELLED", "FAILED", "CRASHED"})
    if answer is None and state["type"] == "FAILED":
        # Prefect's server fails an expired pause on its own schedule, which may come first;
        # the flow then ends the run Cancelled, with its reason, moments later.
        state = server.wait(run, {"CANCELLED"}, timeout=60)
    assert state["type"] == "CANCELLED", state
    assert says in state["message"] and "nothing was sent" in state["message"]
    assert says in server.artifact(run, "publish-report")
    assert _emails(site) == []
    # Nothing was recorded either: a later publish sends the same entries.
    done = run_cli("publish", "--dry-run", "--json", site=site)
    assert '"would_send"' in done.stdout and '"news": 2' in done.stdout


def test_weekly_digest_is_monday_nine_in_bucharest_on_both_sides_of_dst(server):
    from prefect.server.schemas.schedules import CronSchedule

    (schedule,) = server.deployment("weekly-digest")["schedules"]
    cron = CronSchedule(**{k: schedule["schedule"][k] for k in ("cron", "timezone")})
    for change in (dt.datetime(2026, 10, 25, tzinfo=BUCHAREST),
                   dt.datetime(2027, 3, 28, tzinfo=BUCHAREST)):  # fmt: skip
        before, after = asyncio.run(cron.get_dates(2, start=change - dt.timedelta(days=7)))
        for run in (before, after):
            local = run.astimezone(BUCHAREST)
            assert (local.weekday(), local.hour, local.minute) == (0, 9, 0), local
        # Same local hour, so a different hour in UTC: the schedule follows the clock change.
        assert before.astimezone(dt.UTC).hour != after.astimezone(dt.UTC).hour
        assert before < change < after


def test_timed_entries_runs_every_quarter_hour(server):
    from prefect.server.schemas.schedules import CronSchedule

    (schedule,) = server.deployment("timed-entries")["schedules"]
    cron = CronSchedule(**{k: schedule["schedule"][k] for k in ("cron", "timezone")})
    # Across the spring-forward hour in Bucharest (03:00 local, 01:00 UTC).
    runs = asyncio.run(cron.get_dates(5, start=dt.datetime(2027, 3, 28, 0, 20, tzinfo=dt.UTC)))
    gaps = {b.timestamp() - a.timestamp() for a, b in itertools.pairwise(runs)}
    assert gaps == {15 * 60}


def test_each_deployment_runs_one_at_a_time_and_resend_is_deployed(server):
    for name in ("publish", "weekly-digest", "timed-entries", "resend"):
        deployment = server.deployment(name)
        assert deployment["global_concurrency_limit"]["limit"] == 1, name
        assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE", name
    resend = server.deployment("resend")
    assert resend["entrypoint"] == "flows/resend.py:resend_edition"
    assert set(resend["parameter_openapi_schema"]["required"]) == {"edition"}


def test_approve_tells_prefect_and_the_trigger_is_there_to_enable(server):
    site = server.site("approving", subscribers=False)
    entry = site / "content" / "2019-11-13-sofia-workshop.md"
    entry.write_text(entry.read_text() + "\nOne more line.\n")
    done = run_cli("approve", str(entry), "--by", "Press Office", site=site, env=server.env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    deadline = time.monotonic() + 60
    events: list = []
    while not events and time.monotonic() < deadline:
        response = server.http.post(
            "/events/filter",
            json={"filter": {"event": {"name": ["bulletin.entry.approved"]}}, "limit": 10},
        )
        events = [
            e
            for e in response.json()["events"]
            if e["resource"]["prefect.resource.id"] == "bulletin.entry.2019-11-13-sofia-workshop"
        ]
        time.sleep(0.5)
    assert events, "no bulletin.entry.approved event reached the server"
    assert events[0]["payload"]["approved_by"] == "Press Office"
    automations = server.http.post("/automations/filter", json={}).json()
    (trigger,) = [a for a in automations if "bulletin.entry.approved" in str(a["trigger"])]
    assert trigger["enabled"] is False
    assert not (server.default_site / "outbox").exists()
    # Enabled, the next approval publishes the deployment's site.
    server.http.patch(f"/automations/{trigger['id']}", json={"enabled": True}).raise_for_status()
    entry.write_text(entry.read_text() + "\nAnd another.\n")
    done = run_cli("approve", str(entry), "--by", "Press Office", site=site, env=server.env)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 180
    while not _emails(server.default_site):
        assert time.monotonic() < deadline, "the trigger published nothing"
        time.sleep(1)


def test_approve_without_a_reachable_server_still_approves(site):
    entry = site / "content" / "2019-11-13-sofia-workshop.md"
    entry.write_text(entry.read_text() + "\nOne more line.\n")
    done = run_cli(
        "approve", str(entry), "--by", "Press Office", site=site,
        env={"PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api"},
    )  # fmt: skip
    assert done.returncode == 0
    assert "approved, but the Prefect server" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_cli("check", site=site).returncode == 0
