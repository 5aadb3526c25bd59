"""The scheduled flows (weekly digest, timed entries) and the failure report, run in-process
against the session's Prefect server."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest

from bulletin.config import load_config
from bulletin.content.approval import approve
from bulletin.content.entries import load_entry
from bulletin.store.database import connect
from bulletin.store.subscribers import import_csv
from tests.conftest import approver_key
from tests.smtp_server import smtp_server

TIMED = "2019-12-05-curs-regional"  # the fixture's entry with a publish_at (in 2019)
UNTIMED = "2019-11-13-sofia-workshop"


@pytest.fixture
def subscribed(site: Path) -> Path:
    config = load_config(site)
    engine = connect(config.database_url)
    import_csv(engine, config, site / "subscribers.csv", "news")
    engine.dispose()
    return site


def _reapproved(site: Path, slug: str, **fields: str) -> None:
    """Change front-matter fields of an entry and approve it again."""
    path = site / "content" / f"{slug}.md"
    text = path.read_text()
    for name, value in fields.items():
        head, sep, body = text.partition("\n---\n")
        lines = [line for line in head.split("\n") if not line.startswith(f"{name}:")]
        text = "\n".join([*lines, f"{name}: {value}"]) + sep + body
    path.write_text(text)
    config = load_config(site)
    entry, problems = load_entry(config, path)
    assert problems == []
    approve(entry, approver_key(config), dt.datetime.now(dt.UTC))


def _outbox(site: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((site / "outbox" / "email").rglob("*.eml"))
    ]


def test_timed_entries_sends_only_the_entries_that_are_due_then_nothing(
    subscribed, prefect_harness
):
    from bulletin.flows.timed import timed_entries

    report = timed_entries(site=str(subscribed))
    assert report.entries == [TIMED]
    assert report.email["sent"] == 3
    again = timed_entries(site=str(subscribed))
    assert again.edition is None and again.email["sent"] == 0
    assert len(_outbox(subscribed)) == 3


def test_timed_entry_past_its_send_not_after_is_not_sent_and_says_why(subscribed, prefect_harness):
    from bulletin.flows.timed import timed_entries

    _reapproved(subscribed, TIMED, send_not_after="2020-01-01T00:00:00+02:00")
    report = timed_entries(site=str(subscribed))
    assert report.edition is None
    assert any("send_not_after" in note and TIMED in note for note in report.notes)
    assert not (subscribed / "outbox").exists()


def test_timed_entry_waits_for_its_publish_at(subscribed, prefect_harness):
    from bulletin.flows.timed import timed_entries

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(timespec="seconds")
    _reapproved(subscribed, TIMED, publish_at=soon)
    assert timed_entries(site=str(subscribed)).edition is None
    _reapproved(subscribed, UNTIMED, publish_at="2020-01-01T09:00:00+02:00")
    assert timed_entries(site=str(subscribed)).entries == [UNTIMED]


def test_weekly_digest_sends_what_is_new_and_never_an_empty_edition(subscribed, prefect_harness):
    from bulletin.flows.digest import weekly_digest

    first = weekly_digest(site=str(subscribed))
    assert sorted(first.entries) == sorted([TIMED, UNTIMED])
    second = weekly_digest(site=str(subscribed))
    assert second.edition is None and second.email["sent"] == 0
    assert {p.name for p in (subscribed / "outbox" / "email").iterdir()} == {first.edition}


def test_failed_deliveries_fail_the_run_and_notify_the_comms_address(subscribed, prefect_harness):
    from bulletin.flows.publish import publish
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with smtp_server() as server:
        toml = subscribed / "bulletin.toml"
        # Over "smtp" webhooks are POSTed; the fixture's partner is not reachable from here
        # (tests/test_partners.py covers partners).
        text = toml.read_text()
        toml.write_text(text[: text.index("[partners.interpol]")])
        toml.write_text(
            toml.read_text().replace(
                "[lists.news]",
                '[delivery]\ntransport = "smtp"\nretry_backoff_seconds = 0.05\n'
                'notify = "comms@example.org"\n[delivery.smtp]\nhost = "127.0.0.1"\n'
                f"port = {server.port}\n\n[lists.news]",
            )
        )
        server.plan("ana@example.org", ["550 5.1.1 No such mailbox"])
        state = publish(site=str(subscribed), return_state=True)
        received = server.received
    assert state.is_failed() and "failed for good" in state.message
    (notice,) = [m for m in received if m.recipients == ("comms@example.org",)]
    text = email.message_from_bytes(notice.data, policy=email.policy.default)
    assert "publish failed" in text["Subject"]
    body = text.get_content()
    assert "ana@example.org" in body and "550 5.1.1 No such mailbox" in body
    with get_client(sync_client=True) as client:
        (report,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    assert report.key == "publish-report" and "550 5.1.1 No such mailbox" in str(report.data)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ('notify = "comms at example"', "delivery.notify"),
        ('task_runner = "kubernetes"', "delivery.task_runner"),
        ('dask_address = "tcp://10.0.0.1:8786"', 'task_runner = "dask"'),
        ("batch_size = 0", "delivery.batch_size"),
    ],
    ids=["notify", "task-runner", "dask-address-alone", "batch-size"],
)
def test_orchestration_settings_mistakes_name_the_key_and_line(site, settings, says):
    from tests.conftest import run_cli

    toml = site / "bulletin.toml"
    toml.write_text(
        toml.read_text().replace("[lists.news]", f"[delivery]\n{settings}\n\n[lists.news]")
    )
    line = toml.read_text().splitlines().index(settings) + 1
    done = run_cli("check", site=site)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and f"bulletin.toml:{line}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
