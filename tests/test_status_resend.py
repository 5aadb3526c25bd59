"""`bulletin status` and `bulletin resend` against a real SMTP server and a real webhook
server that play faults: who did not get an edition, sending exactly them again (never a
second copy to anyone else, never to an address that left), kills mid-resend, and one run
of a site at a time."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.errors import RunInProgress
from bulletin.store import ledger, locks
from bulletin.store.database import connect
from bulletin.store.memberships import unsubscribe
from bulletin.store.subscribers import import_csv
from tests.conftest import REPO, run_cli
from tests.smtp_server import smtp_server
from tests.webhook_server import webhook_server

WHSEC = "whsec_" + base64.b64encode(b"partner-test-secret-0123456789ab").decode()
SECRET_ENV = {"TEST_PARTNER_INTERPOL_SECRET": WHSEC}
NOT_YET = ["452", "452"]  # past the retries (2 attempts): a temporary failure, for good


def _site(site: Path, smtp_port: int, hook: str, readers: int = 6, rate: int = 0) -> None:
    """Email over SMTP (2 attempts each), the partner by webhook; `readers` more subscribers."""
    text = (site / "bulletin.toml").read_text()
    text = text[: text.index("[partners.interpol]")]
    text += (
        f'[delivery]\ntransport = "smtp"\nretry_attempts = 2\nretry_backoff_seconds = 0.05\n'
        f"rate_per_second = {rate}\n"
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\ntimeout = 5\n\n'
        f'[partners.interpol]\nname = "INTERPOL"\nwebhook = "{hook}"\n'
        'secret_env = "TEST_PARTNER_INTERPOL_SECRET"\n'
    )
    (site / "bulletin.toml").write_text(text)
    rows = ["email,name", "ana@example.org,Ana", "john@example.com,John"]
    rows += [f"reader{i}@example.org,Reader {i}" for i in range(readers)]
    (site / "subscribers.csv").write_text("\n".join(rows) + "\n")
    config = load_config(site)
    engine = connect(config.database_url)
    import_csv(engine, config, site / "subscribers.csv", "news")
    engine.dispose()


def _publish(site: Path, monkeypatch) -> core.Result:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    return core.publish(site)


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, site=site, env=SECRET_ENV)


def _received(server) -> Counter[str]:
    return Counter(r for m in server.received for r in m.recipients)


def _text_for(server, address: str) -> str:
    """The text part of the message `address` received, its own fields taken out."""
    (data,) = [m.data for m in server.received if address in m.recipients]
    message = email.message_from_bytes(data, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    text = re.sub(r"https://news\.example\.org/unsubscribe/\S+", "UNSUBSCRIBE", text)
    return text.replace(address, "ADDRESS")


def test_status_lists_exactly_what_failed_and_resend_delivers_exactly_that(site, monkeypatch):
    with smtp_server() as server, webhook_server(WHSEC) as hook:
        _site(site, server.port, hook.url("/hook"))
        for address in ("reader1@example.org", "reader3@example.org"):
            server.plan(address, NOT_YET)
        server.plan("reader5@example.org", ["550 5.1.1 No such mailbox"])
        hook.plan("/hook", ["500", "500"])
        published = _publish(site, monkeypatch)
        edition = published.report.edition
        assert published.ended is core.Ended.FAILED
        first = _received(server)

        status = _cli(site, "status", edition, "--json")
        assert status.returncode == 0, status.stderr
        found = json.loads(status.stdout)
        assert found["edition"] == edition
        assert found["entries"] == published.report.entries
        assert found["email"] == {"sent": 6, "failed": 3, "skipped": 0, "pending": 0}
        assert found["lists"]["news"] == {"sent": 5, "failed": 3, "skipped": 0, "pending": 0}
        assert found["lists"]["desk"] == {"sent": 1, "failed": 0, "skipped": 0, "pending": 0}
        assert found["partners"] == {"interpol": "failed"}
        failures = {(f["channel"], f["list"], f["partner"], f["recipient"]): f
                    for f in found["failures"]}  # fmt: skip
        assert set(failures) == {
            ("email", "news", None, "reader1@example.org"),
            ("email", "news", None, "reader3@example.org"),
            ("email", "news", None, "reader5@example.org"),
            ("partner", None, "interpol", hook.url("/hook")),
        }
        assert failures[("email", "news", None, "reader1@example.org")]["retryable"] is True
        assert "452" in failures[("email", "news", None, "reader1@example.org")]["reason"]
        assert failures[("email", "news", None, "reader5@example.org")]["retryable"] is False
        assert (
            "550 5.1.1 No such mailbox"
            in (failures[("email", "news", None, "reader5@example.org")]["reason"])
        )
        partner = failures[("partner", None, "interpol", hook.url("/hook"))]
        assert partner["retryable"] is True and "500" in partner["reason"]
        assert partner["attempts"] == 2  # both attempts are kept, not only the last

        csv_out = _cli(site, "status", edition, "--failed")
        assert csv_out.stdout.splitlines()[0] == ("channel,list,partner,recipient,reason,retryable")
        assert sorted(line.split(",")[3] for line in csv_out.stdout.splitlines()[1:]) == [
            hook.url("/hook"), "reader1@example.org", "reader3@example.org",
            "reader5@example.org",
        ]  # fmt: skip
        text = _cli(site, "status", edition)
        assert "retryable: temporary failures" in text.stdout
        assert "final: the server refused the address for good" in text.stdout
        assert f"bulletin resend {edition}" in text.stdout

        # The faults are over: the resend sends exactly what did not go, and nobody else
        # gets a second copy; the bounced address stays suppressed.
        resent = _cli(site, "resend", edition, "--json")
        assert resent.returncode == 0, resent.stderr
        assert json.loads(resent.stdout) | {"lists": None, "left_out": None} == {
            "edition": edition,
            "email": {"sent": 2, "failed": 0, "skipped": 1},
            "partners": {"interpol": "sent"},
            "lists": None,
            "left_out": None,
        }
        second = _received(server) - first
        assert second == {"reader1@example.org": 1, "reader3@example.org": 1}
        assert max(_received(server).values()) == 1
        assert [r.verified for r in hook.received] == [True, True, True]
        assert hook.received[0].body == hook.received[2].body  # the same edition, again
        assert hook.received[0].headers["webhook-id"] == hook.received[2].headers["webhook-id"]
        # The same content, apart from each reader's own fields.
        assert _text_for(server, "reader1@example.org") == _text_for(server, "reader0@example.org")

        after = json.loads(_cli(site, "status", edition, "--json").stdout)
        assert after["email"] == {"sent": 8, "failed": 0, "skipped": 1, "pending": 0}
        assert after["partners"] == {"interpol": "sent"}
        assert after["failures"] == []
        again = _cli(site, "resend", edition, "--json")
        assert json.loads(again.stdout)["email"] == {"sent": 0, "failed": 0, "skipped": 0}
        assert _received(server) - first == second


def test_resend_after_an_unsubscribe_skips_that_address(site, monkeypatch):
    with smtp_server() as server, webhook_server(WHSEC) as hook:
        _site(site, server.port, hook.url("/hook"))
        for address in ("reader1@example.org", "reader3@example.org"):
            server.plan(address, NOT_YET)
        edition = _publish(site, monkeypatch).report.edition
        config = load_config(site)
        engine = connect(config.database_url)
        unsubscribe(engine, "news", "reader1@example.org", dt.datetime.now(dt.UTC))
        engine.dispose()
        before = _received(server)
        dry = _cli(site, "resend", edition, "--dry-run", "--json")
        assert json.loads(dry.stdout)["would_send"] == {"news": 1}
        assert _received(server) == before
        resent = _cli(site, "resend", edition, "--json")
        assert resent.returncode == 0, resent.stderr
        report = json.loads(resent.stdout)
        assert report["email"] == {"sent": 1, "failed": 0, "skipped": 1}
        assert report["left_out"] == [
            {"channel": "email", "list": "news", "partner": None,
             "recipient": "reader1@example.org", "reason": "unsubscribed since"}
        ]  # fmt: skip
        assert _received(server) - before == {"reader3@example.org": 1}


def test_resend_with_a_list_named_leaves_the_partner_alone(site, monkeypatch):
    with smtp_server() as server, webhook_server(WHSEC) as hook:
        _site(site, server.port, hook.url("/hook"))
        server.plan("reader2@example.org", NOT_YET)
        hook.plan("/hook", ["500", "500"])
        edition = _publish(site, monkeypatch).report.edition
        resent = _cli(site, "resend", edition, "--list", "news", "--json")
        assert json.loads(resent.stdout)["partners"] == {}
        assert len(hook.received) == 2  # the two failed attempts of the publish, no more
        assert _received(server)["reader2@example.org"] == 1
        unknown = _cli(site, "resend", edition, "--partner", "europol")
        assert unknown.returncode == 2
        assert "--partner europol: no such partner in bulletin.toml" in unknown.stderr


def test_resend_refuses_an_edition_whose_entry_changed_since(site, monkeypatch):
    with smtp_server() as server, webhook_server(WHSEC) as hook:
        _site(site, server.port, hook.url("/hook"))
        server.plan("reader2@example.org", NOT_YET)
        edition = _publish(site, monkeypatch).report.edition
        before = _received(server)
        entry = site / "content" / "2019-11-13-sofia-workshop.md"
        entry.write_text(entry.read_text().replace("Sofia", "Varna"))
        resent = _cli(site, "resend", edition)
        assert resent.returncode == 1
        assert "2019-11-13-sofia-workshop.md: changed since edition" in resent.stderr
        assert _received(server) == before
        missing = _cli(site, "resend", "2001-01-01-1")
        assert missing.returncode == 2 and "no edition '2001-01-01-1'" in missing.stderr


_RESEND_KILLED = 5  # ... after this many messages of the resend have arrived


def test_resend_killed_mid_way_then_run_again_sends_each_missing_message_once(site, monkeypatch):
    readers = 120
    with smtp_server() as server, webhook_server(WHSEC) as hook:
        # 40 messages a second: the resend is still sending when it is killed.
        _site(site, server.port, hook.url("/hook"), readers=readers, rate=40)
        missing = {f"reader{i}@example.org" for i in range(0, readers, 2)}
        for address in missing:
            server.plan(address, NOT_YET)
        edition = _publish(site, monkeypatch).report.edition
        first = _received(server)
        assert not set(first) & missing
        env = {**os.environ, **SECRET_ENV, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "bulletin.cli", "--site", str(site), "resend", edition]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while sum((_received(server) - first).values()) < _RESEND_KILLED:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the resend stalled"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.stderr:
            process.stderr.close()
        status = json.loads(_cli(site, "status", edition, "--json").stdout)
        assert status["state"] == "interrupted"
        assert status["email"]["pending"] > 0
        rerun = _cli(site, "resend", edition, "--json")
        assert rerun.returncode == 0, rerun.stderr
        resent = _received(server) - first
    assert set(resent) == missing, "someone missing got nothing"
    # The allowance of a kill: the one message in flight on its one connection.
    assert sum(resent.values()) - len(missing) <= 1
    assert not set(resent) - missing, "someone who had it got a second copy"
    final = json.loads(_cli(site, "status", edition, "--json").stdout)
    assert final["state"] == "done" and final["email"]["failed"] == 0


def test_a_second_run_of_the_site_says_another_is_under_way_and_exits_4(site, monkeypatch):
    with smtp_server() as server, webhook_server(WHSEC) as hook:
        _site(site, server.port, hook.url("/hook"))
        server.plan("reader2@example.org", NOT_YET)
        edition = _publish(site, monkeypatch).report.edition
        config = load_config(site)
        engine = connect(config.database_url)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(site)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            for command in (("resend", edition), ("publish",)):
                busy = _cli(site, *command)
                assert busy.returncode == 4, busy.stderr
                assert "a publish run (process" in busy.stderr
                assert "of this site is planning or sending right now; this run did nothing" in (
                    busy.stderr
                )
                assert "resuming edition" not in busy.stdout + busy.stderr
            with engine.connect() as db:  # the resend changed nothing
                assert ledger.counts(db, edition)[("email", "news", "failed")] == 1
            assert _received(server)["reader2@example.org"] == 0
            assert locks.run_under_way(engine, config)
        finally:
            holder.kill()
            holder.wait()
            holder.stdout.close()  # type: ignore[union-attr]
            engine.dispose()
        resent = _cli(site, "resend", edition)
        assert resent.returncode == 0, resent.stderr
        assert _received(server)["reader2@example.org"] == 1


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from bulletin.config import load_config
from bulletin.errors import RunInProgress
from bulletin.store import locks
from bulletin.store.database import connect

config = load_config(Path(sys.argv[1]))
with locks.site_run(connect(config.database_url), config, "publish", wait=False):
    print("held", flush=True)
    time.sleep(300)
"""


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_run_lock_on_postgresql_stops_a_second_run(site, database_url):
    text = (site / "bulletin.toml").read_text()
    (site / "bulletin.toml").write_text(text + f'\n[database]\nurl = "{database_url}"\n')
    config = load_config(site)
    engine = connect(config.database_url)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(site)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = "of this site is planning or sending right now"
        with (
            pytest.raises(RunInProgress, match=busy),
            locks.site_run(engine, config, "resend", wait=False),
        ):
            pass
        assert locks.run_under_way(engine, config)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    with locks.site_run(engine, config, "resend", wait=False):
        pass  # the holder's session ended with it: the lock is free
    engine.dispose()


def test_the_resend_flow_leaves_a_report_and_runs_in_the_sites_slot(
    site, monkeypatch, prefect_harness
):
    from bulletin.flows.resend import resend_edition
    from bulletin.flows.sites import limit_name
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with smtp_server() as server, webhook_server(WHSEC) as hook:
        _site(site, server.port, hook.url("/hook"))
        server.plan("reader2@example.org", NOT_YET)
        edition = _publish(site, monkeypatch).report.edition
        state = resend_edition(edition=edition, site=str(site), return_state=True)
        assert _received(server)["reader2@example.org"] == 1
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        (report,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
        slot = client.read_global_concurrency_limit_by_name(limit_name(str(site)))
    assert report.key == "resend-report"
    assert f"# Resend of edition {edition}" in str(report.data)
    assert f"`bulletin status {edition}`" in str(report.data)
    assert (slot.limit, slot.active_slots) == (1, 0)  # held for the run, free after it


def test_erasing_an_address_erases_it_from_the_attempt_history_too(site, monkeypatch):
    from bulletin.store.memberships import erase

    with smtp_server() as server, webhook_server(WHSEC) as hook:
        _site(site, server.port, hook.url("/hook"))
        server.plan("reader2@example.org", ["452 4.2.2 <reader2@example.org> is over quota"] * 2)
        edition = _publish(site, monkeypatch).report.edition
    config = load_config(site)
    engine = connect(config.database_url)
    with engine.connect() as db:
        (failure,) = ledger.failed_deliveries(db, edition)
    assert "reader2@example.org" in failure.reason and failure.attempts == 2
    erase(engine, "reader2@example.org", "erased:abc", dt.datetime.now(dt.UTC))
    with engine.connect() as db:
        (failure,) = ledger.failed_deliveries(db, edition)
        kept = db.execute(sa.text("SELECT detail FROM delivery_attempts")).scalars().all()
    engine.dispose()
    assert failure.recipient == "erased:abc"
    assert not [detail for detail in kept if detail and "reader2@example.org" in detail]
    assert sum("erased:abc" in (detail or "") for detail in kept) == 2
