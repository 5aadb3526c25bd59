"""Publishing end to end: the flow under a Prefect server, the outbox, the ledger."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.content.markup import html_to_text
from bulletin.delivery.configured import from_config
from bulletin.delivery.transports import MemoryTransport, Rejected, TransportFactory
from bulletin.errors import ContentError
from bulletin.mail.message import Message
from bulletin.store.database import connect
from bulletin.store.subscribers import import_csv
from bulletin.tokens import Signer, secret_key
from tests.conftest import approver_key, run_cli

STATEMENT = "This project is funded by the European Union."
DISCLAIMER_START = "This communication reflects only SELEC's view"


def _import(site: Path):
    config = load_config(site)
    engine = connect(config.database_url)
    report = import_csv(engine, config, site / "subscribers.csv", "news")
    assert (report.added, report.problems) == (2, [])
    return config, engine


def _recorded(site: Path):
    """The fixture site with its subscribers and its first edition recorded, not sent."""
    config, engine = _import(site)
    edition = core.plan(config, engine)
    core.record(engine, config, edition)
    return config, engine, edition


def _emails(site: Path) -> list[email.message.EmailMessage]:
    files = sorted((site / "outbox" / "email").rglob("*.eml"))
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def test_publish_flow_writes_one_message_per_recipient_and_feeds(site, prefect_harness):
    from bulletin.flows.publish import publish

    config, _ = _import(site)
    report = publish(site=str(site))
    assert report.edition and report.edition.endswith("-1")
    assert sorted(report.entries) == ["2019-11-13-sofia-workshop", "2019-12-05-curs-regional"]
    assert report.email == {"sent": 3, "failed": 0, "skipped": 0}
    assert report.partners == {"interpol": "sent"}
    messages = _emails(site)
    assert sorted(str(m["To"]) for m in messages) == [
        "Ana Popescu <ana@example.org>", "John Carter <john@example.com>",
        "desk@lists.example.org",
    ]  # fmt: skip
    signer = Signer(secret_key(config.state_dir))
    for message in messages:
        address = message["To"].addresses[0].addr_spec
        external = address.startswith("desk")
        assert message.get_content_type() == "multipart/alternative"
        for header in ("From", "Subject", "Date", "Message-ID", "List-Id"):
            assert message[header], header
        assert message["Precedence"] == "bulk"
        assert message["Auto-Submitted"] == "auto-generated"
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        for part in (" ".join(html_to_text(html).split()), " ".join(text.split())):
            assert STATEMENT in part and DISCLAIMER_START in part
        if external:  # its list server keeps its members, and adds its own List-Unsubscribe
            assert message["List-Unsubscribe"] is None
            assert message["List-Unsubscribe-Post"] is None
            https = re.search(r"https://news\.example\.org/unsubscribe/\S+", text).group(0)
        else:
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            https, mailto = (u.strip(" <>") for u in str(message["List-Unsubscribe"]).split(","))
            assert https.startswith("https://news.example.org/unsubscribe/")
            assert mailto.startswith("mailto:press@example.org?subject=unsubscribe")
        token = https.rpartition("/")[2]
        assert signer.verify("unsubscribe", token) == [
            "desk" if external else "news",
            address,
        ]
        assert https in html and https in text
        assert any(p.get("Content-ID") == "<emblem-eu@bulletin>" for p in message.walk())
    partner = site / "outbox" / "partners" / "interpol" / f"{report.edition}.json"
    assert '"edition.published"' in partner.read_text()
    for name in ("index.html", "feed.xml", "atom.xml", f"{report.edition}/index.html"):
        assert (site / "public" / name).is_file(), name
    assert "Curs regional" in (site / "public" / "feed.xml").read_text()

    again = publish(site=str(site))
    assert again.edition is None
    assert len(_emails(site)) == 3


def test_publish_flow_refuses_entry_edited_after_approval_and_sends_nothing(site, prefect_harness):
    from bulletin.flows.publish import publish

    _import(site)
    entry = site / "content" / "2019-11-13-sofia-workshop.md"
    entry.write_text(entry.read_text().replace("two days", "three days"))
    state = publish(site=str(site), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ContentError)
    assert [p.code for p in error.problems] == ["approval-stale"]
    assert not (site / "outbox").exists()
    assert not (site / "public").exists()


def test_dry_run_renders_and_sends_nothing(site, prefect_harness):
    from bulletin.flows.publish import publish

    _import(site)
    report = publish(site=str(site), dry_run=True)
    assert report.dry_run and report.would_send == {"news": 2, "desk": 1, "interpol": 1}
    assert not (site / "outbox").exists()
    assert publish(site=str(site)).email["sent"] == 3


def test_entry_with_future_publish_at_waits(site):
    config, engine = _import(site)
    entry = site / "content" / "2019-12-05-curs-regional.md"
    entry.write_text(entry.read_text().replace("2019-12-06T10:00", "2099-12-06T10:00"))
    from bulletin.content.approval import approve
    from bulletin.content.entries import load_entry

    loaded, problems = load_entry(config, entry)
    assert problems == []
    approve(loaded, approver_key(config), loaded.approved_at)
    edition = core.plan(config, engine)
    assert [e.slug for e in edition.entries] == ["2019-11-13-sofia-workshop"]


def _memory(handler) -> TransportFactory:
    return TransportFactory(lambda: MemoryTransport(handler))


def test_interrupted_delivery_resumes_and_sends_everyone_exactly_once(site):
    config, engine, edition = _recorded(site)
    sent: list[Message] = []

    def crash_after_one(message: Message) -> None:
        if len(sent) == 1:
            raise KeyboardInterrupt  # the process dies mid-run
        sent.append(message)

    with pytest.raises(KeyboardInterrupt):
        core.deliver(engine, config, edition, _memory(crash_after_one))
    assert len(sent) == 1

    resumed = core.publish(site, steps=core.Steps(_memory(sent.append), engine=engine))
    report = resumed.report
    assert resumed.ended is core.Ended.COMPLETED and report.edition == edition.edition_id
    assert f"resuming edition {edition.edition_id}, interrupted before it finished" in report.notes
    recipients = sorted(m.recipient for m in sent)
    assert len(recipients) == len(set(recipients)) == 4  # 2 subscribers, desk, partner
    assert report.per_list == {"news": {"sent": 2}, "desk": {"sent": 1}}
    assert report.per_partner == {"interpol": {"sent": 1}}
    assert core.plan(config, engine).edition_id is None


def test_permanent_failure_is_recorded_and_others_still_get_it(site):
    _, engine = _import(site)
    delivered: list[str] = []

    def reject_ana(message: Message) -> Rejected | None:
        if message.recipient == "ana@example.org":
            return Rejected("550 mailbox unavailable")
        delivered.append(message.recipient)
        return None

    result = core.publish(site, steps=core.Steps(_memory(reject_ana), engine=engine))
    assert result.ended is core.Ended.FAILED
    assert result.message == "some deliveries failed for good"
    assert result.report.per_list["news"]["failed"] == 1
    assert result.report.failures == [("news", "ana@example.org", "550 mailbox unavailable")]
    assert "john@example.com" in delivered


def test_outbox_writes_are_stable_so_a_repeat_is_still_one_file(site):
    config, engine, edition = _recorded(site)
    outbox = from_config(config)
    core.deliver(engine, config, edition, outbox)
    first = sorted(p.name for p in (config.outbox_dir / "email").rglob("*.eml"))
    with engine.begin() as db:  # as if the ledger update had been lost in a crash
        from bulletin.store.database import deliveries

        db.execute(deliveries.update().values(status="pending"))
    core.deliver(engine, config, edition, outbox)
    assert sorted(p.name for p in (config.outbox_dir / "email").rglob("*.eml")) == first


def test_build_writes_an_email_preview_per_list_with_the_emblem_linked(site):
    done = run_cli("build", site=site)

    assert done.returncode == 0, done.stderr
    html = (site / "public/preview/news/email.html").read_text()
    assert "cid:" not in html
    assert 'src="../../static/eu-emblem.png"' in html
    text = (site / "public/preview/news/email.txt").read_text()
    assert "European Union" in text
