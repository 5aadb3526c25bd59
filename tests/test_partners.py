"""Partner webhooks against a real HTTP server that checks Standard Webhooks signatures:
signing, the payload's schema, filters, retries, permanent failures, TLS, concurrency, resume.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.content.markup import html_to_text
from bulletin.delivery.configured import from_config
from bulletin.delivery.engine import RetryPolicy
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.delivery.webhooks import RETRY_AFTER_CAP_SECONDS, WebhookTransport, retry_after
from bulletin.errors import ConfigError, ContentError, TransportUnavailable, WebhookError
from bulletin.mail.message import Message
from bulletin.pipeline import Result
from bulletin.pipeline.report import Report
from bulletin.render.payloads import payload, ping, schema
from bulletin.store.database import connect, deliveries
from bulletin.store.subscribers import import_csv
from tests.conftest import REPO, approver_key, run_cli
from tests.smtp_server import make_tls_files, smtp_server
from tests.webhook_server import refused_url, webhook_server

WHSEC = "whsec_" + base64.b64encode(b"partner-test-secret-0123456789ab").decode()
FAST = RetryPolicy(attempts=3, backoff_seconds=0.05)
STATEMENT = "This project is funded by the European Union."
DISCLAIMER = (
    "This communication reflects only SELEC's view and the European Commission is not "
    "responsible for any use that may be made of the information it contains."
)
SOFIA, CURS = "2019-11-13-sofia-workshop", "2019-12-05-curs-regional"


def _configure(site: Path, partners: dict[str, dict], delivery: str = 'transport = "smtp"'):
    """Replace the fixture's partners with `partners`; webhooks go over HTTP."""
    text = (site / "bulletin.toml").read_text()
    text = text[: text.index("[partners.interpol]")]
    text += f"[delivery]\nretry_backoff_seconds = 0.05\n{delivery}\n\n"
    for key, fields in partners.items():
        text += f"[partners.{key}]\nname = {json.dumps(key.upper())}\n"
        if "webhook" in fields and "secret_env" not in fields:
            fields = {**fields, "secret_env": f"TEST_PARTNER_{key.upper()}_SECRET"}
        text += "".join(f"{name} = {json.dumps(value)}\n" for name, value in fields.items())
    (site / "bulletin.toml").write_text(text)


def _secrets(monkeypatch, *keys: str, secret: str = WHSEC) -> None:
    for key in keys:
        monkeypatch.setenv(f"TEST_PARTNER_{key.upper()}_SECRET", secret)


def _prepare(site: Path):
    """The site's configuration and database, with the subscribers of its list imported."""
    config = load_config(site)
    engine = connect(config.database_url)
    if "news" in config.lists:
        import_csv(engine, config, site / "subscribers.csv", "news")
    return config, engine


def _transports(config, emails: list[Message]) -> TransportFactory:
    """Emails to `emails`, partners through the configured transports."""
    return TransportFactory(lambda: MemoryTransport(emails.append), from_config(config).partner)


def _publish(site: Path, engine=None, retry: RetryPolicy = FAST) -> tuple[list[Message], Result]:
    """Publish the site's edition: emails to memory, partners through the configured
    transports; the emails and how the run ended."""
    config, prepared = _prepare(site) if engine is None else (load_config(site), engine)
    emails: list[Message] = []
    steps = core.Steps(_transports(config, emails), engine=prepared, retry=retry)
    return emails, core.publish(site, steps=steps)


def _status(result: Result, key: str) -> str:
    return result.report.partners[key]


def _failure(result: Result, key: str) -> str:
    return next(why for target, _, why in result.report.failures if target == key)


def _validate(body: bytes, event: str = "edition.published") -> dict:
    data = json.loads(body)
    jsonschema.Draft202012Validator(
        schema(event), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(data)
    return data


@pytest.mark.parametrize(
    ("secret", "key"),
    [(WHSEC, WHSEC), ("a raw shared secret", b"a raw shared secret")],
    ids=["whsec-base64", "raw"],
)
def test_webhook_is_signed_so_that_standardwebhooks_verifies_it(site, monkeypatch, secret, key):
    with webhook_server(key) as server:
        _configure(site, {"interpol": {"webhook": server.url("/interpol")}})
        _secrets(monkeypatch, "interpol", secret=secret)
        emails, result = _publish(site)
    [request] = server.received
    assert request.verified, request.error
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert _status(result, "interpol") == "sent"
    assert len(emails) == 3  # the lists still got theirs
    data = _validate(request.body)
    assert data["type"] == "edition.published"
    assert data["data"]["edition"] == result.report.edition


def test_tampered_body_or_stale_timestamp_fails_verification(site, monkeypatch):
    with webhook_server(WHSEC) as server:
        transport = WebhookTransport("interpol", server.url("/in"), WHSEC, timeout=5)
        body = b'{"type": "ping", "data": {}}'
        transport.post(body, "msg_fresh")
        stale = WebhookTransport(
            "interpol", server.url("/in"), WHSEC, timeout=5, clock=lambda: time.time() - 600
        )
        with pytest.raises(WebhookError) as refused:
            stale.post(body, "msg_stale")
    fresh, old = server.received
    assert fresh.verified and not old.verified
    assert "too old" in (old.error or "")
    assert refused.value.status == 401 and refused.value.permanent
    assert "HTTP 401" in str(refused.value) and "invalid signature" in str(refused.value)
    verifier = Webhook(WHSEC)
    verifier.verify(fresh.body, fresh.headers)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(fresh.body.replace(b"ping", b"pong"), fresh.headers)


def test_payload_follows_the_shipped_schema_and_carries_each_funding_notice(config):
    from bulletin.content.entries import load_entries

    entries = load_entries(config).entries
    now = dt.datetime(2019, 12, 6, 9, tzinfo=dt.UTC)
    data = _validate(payload(config, "2019-12-06-1", entries, now, "interpol"))["data"]
    by_slug = {item["slug"]: item for item in data["entries"]}
    assert set(by_slug) == {SOFIA, CURS}
    sofia = by_slug[SOFIA]
    assert sofia["permalink"] == f"https://news.example.org/entries/{SOFIA}/"
    assert (sofia["date"], sofia["end_date"]) == ("2019-11-12", "2019-11-13")
    assert sofia["tags"] == ["firearms", "drugs"] and sofia["language"] == "en"
    assert "<strong>Sofia</strong>" in sofia["html"] and "Sofia" in sofia["text"]
    assert sofia["funding"]["statement"] == STATEMENT
    assert sofia["funding"]["disclaimer"] == DISCLAIMER
    assert sofia["funding"]["emblem_url"] == "https://news.example.org/static/eu-emblem.png"
    assert by_slug[CURS]["funding"]["statement"].startswith("Acest proiect")
    assert payload(config, "2019-12-06-1", entries, now, "interpol") == payload(
        config, "2019-12-06-1", entries, now, "interpol"
    )
    _validate(ping(config, "interpol", now), "ping")


def test_schema_ships_inside_the_installed_package():
    assert (REPO / "bulletin" / "schemas" / "edition.published.v1.json").is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "schemas/*.json" in pyproject["tool"]["setuptools"]["package-data"]["bulletin"]
    assert schema()["$id"] == "urn:bulletin:schema:edition.published.v1"


def test_partner_gets_only_matching_entries_and_nothing_when_none_match(site, monkeypatch):
    with webhook_server(WHSEC) as server:
        _configure(
            site,
            {
                "guns": {"webhook": server.url("/guns"), "tags": ["firearms"]},
                "romania": {"webhook": server.url("/romania"), "languages": ["ro"]},
                "cyber": {"webhook": server.url("/cyber"), "tags": ["cybercrime"]},
            },
        )
        _secrets(monkeypatch, "guns", "romania", "cyber")
        _, result = _publish(site)

    def slugs(path: str) -> list[list[str]]:
        return [[e["slug"] for e in _validate(b)["data"]["entries"]] for b in server.bodies(path)]

    assert slugs("/guns") == [[SOFIA]]
    assert slugs("/romania") == [[CURS]]
    assert server.bodies("/cyber") == []
    assert "cyber" not in result.report.partners


@pytest.mark.parametrize(
    ("fault", "waits"),
    [("500", 0), ("503:1", 1), ("503:date:2", 1), ("429:1", 1), ("408", 0), ("hang:3", 0),
     ("drop", 0)],
)  # fmt: skip
def test_temporary_failure_is_retried_with_the_same_webhook_id(site, monkeypatch, fault, waits):
    with webhook_server(WHSEC) as server:
        _configure(site, {"interpol": {"webhook": server.url("/in"), "timeout": 1}})
        _secrets(monkeypatch, "interpol")
        server.plan("/in", [fault, "ok"])
        _, result = _publish(site)
    first, second = server.received
    assert _status(result, "interpol") == "sent"
    assert first.verified and second.verified
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    if waits:  # Retry-After was honoured, not the 0.05 s backoff
        assert second.at - first.at >= waits - 0.1


def test_client_error_is_permanent_reported_with_the_reply_and_blocks_no_one(site, monkeypatch):
    with webhook_server(WHSEC) as server:
        _configure(
            site,
            {"broken": {"webhook": server.url("/broken")}, "fine": {"webhook": server.url("/ok")}},
        )
        _secrets(monkeypatch, "broken", "fine")
        server.plan("/broken", ["422"])
        emails, result = _publish(site)
    assert len(server.bodies("/broken")) == 1  # not retried
    assert _status(result, "broken") == "failed" and _status(result, "fine") == "sent"
    assert len(emails) == 3
    why = _failure(result, "broken")
    assert "partner broken" in why and server.url("/broken") in why
    assert "HTTP 422" in why and "planned 422" in why


def test_refused_connection_is_retried_then_fails_for_good(site, monkeypatch):
    _configure(site, {"down": {"webhook": refused_url()}})
    _secrets(monkeypatch, "down")
    _, engine = _prepare(site)
    _, result = _publish(site, engine)
    assert _status(result, "down") == "failed"
    why = _failure(result, "down")
    assert "gave up after 3 attempts" in why and "Connection refused" in why
    with engine.connect() as db:
        attempts = db.scalar(sa.select(deliveries.c.attempts).where(deliveries.c.target == "down"))
    assert attempts == 3


def test_self_signed_certificate_is_refused_naming_partner_and_url(site, monkeypatch, tmp_path):
    with webhook_server(WHSEC, tls=make_tls_files(tmp_path)) as server:
        _configure(site, {"secure": {"webhook": server.url("/in")}})
        _secrets(monkeypatch, "secure")
        _, result = _publish(site)
    assert server.received == []
    assert _status(result, "secure") == "failed"
    why = _failure(result, "secure")
    assert f"partner secure ({server.url('/in')})" in why
    assert "TLS certificate was refused" in why and "certificate verify failed" in why


def test_partners_are_sent_at_once_so_the_phase_lasts_as_long_as_the_slowest(site, monkeypatch):
    keys = [f"agency{i}" for i in range(4)]
    with webhook_server(WHSEC, default="slow:1") as server:
        _configure(site, {key: {"webhook": server.url(f"/{key}")} for key in keys})
        _secrets(monkeypatch, *keys)
        config, engine = _prepare(site)
        steps = core.Steps(_transports(config, []), engine=engine, retry=FAST)
        config, edition = steps.plan(str(site), [], True, list(core.CHANNELS), False)
        steps.record(config, edition)
        start = time.monotonic()
        steps.deliver(config, edition)  # the sending alone is timed
        elapsed = time.monotonic() - start
        result = core.Result(Report(edition.edition_id, []))
        result.report.add_tally(steps.tally(config, edition)[0])
    assert [_status(result, key) for key in keys] == ["sent"] * 4
    assert elapsed < 2.5, f"4 partners answering in 1 s each took {elapsed:.1f} s"


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bulletin import pipeline as core
    from bulletin.config import load_config
    from bulletin.delivery.transports import MemoryTransport, TransportFactory
    from bulletin.delivery.configured import from_config

    config = load_config(Path(sys.argv[1]))
    memory = lambda: MemoryTransport(lambda m: None)
    transports = TransportFactory(memory, from_config(config).partner)
    core.publish(sys.argv[1], steps=core.Steps(transports))
    """
)


def test_rerun_after_a_kill_sends_only_to_the_partner_that_had_not_acknowledged(
    site, monkeypatch, database_url
):
    with webhook_server(WHSEC) as server:
        _configure(
            site,
            {"quick": {"webhook": server.url("/quick")},
             "stuck": {"webhook": server.url("/stuck"), "timeout": 60}},
        )  # fmt: skip
        with (site / "bulletin.toml").open("a") as toml:
            toml.write(f"[database]\nurl = {json.dumps(database_url)}\n")
        _secrets(monkeypatch, "quick", "stuck")
        server.plan("/stuck", ["hang:30"])
        _, engine = _prepare(site)
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, str(site)], cwd=REPO, env=os.environ.copy()
        )
        try:
            deadline = time.monotonic() + 60
            while _statuses(engine).get("quick") != "sent" or not server.bodies("/stuck"):
                assert process.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline, "the partners were not reached"
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert _statuses(engine) == {"quick": "sent", "stuck": "sending"}

        _, result = _publish(site, engine)
        assert any(note.startswith("resuming edition") for note in result.report.notes)
    engine.dispose()
    assert len(server.bodies("/quick")) == 1
    first, second = [r for r in server.received if r.path == "/stuck"]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert _status(result, "quick") == _status(result, "stuck") == "sent"


def _statuses(engine) -> dict[str, str]:
    with engine.connect() as db:
        rows = db.execute(
            sa.select(deliveries.c.target, deliveries.c.status).where(
                deliveries.c.channel == "partner"
            )
        )
        return dict(rows.all())


def test_partner_email_carries_the_emblem_statement_and_disclaimer(site):
    _configure(site, {"rilo": {"email": "desk@rilo.example", "languages": ["en"]}},
               delivery='transport = "outbox"')  # fmt: skip
    _, result = _publish(site)
    assert _status(result, "rilo") == "sent"
    config = load_config(site)
    [path] = (config.outbox_dir / "email" / result.report.edition).glob("rilo-*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "desk@rilo.example"
    assert "RILO" in message["List-Id"]
    html = " ".join(html_to_text(message.get_body(("html",)).get_content()).split())
    text = " ".join(message.get_body(("plain",)).get_content().split())
    for part in (html, text):
        assert STATEMENT in part and DISCLAIMER in part
        assert "Workshop on firearms" in part and "Curs regional" not in part  # en only
    assert any(p.get("Content-ID") == "<emblem-eu@bulletin>" for p in message.walk())


def test_partner_email_waits_for_the_next_run_while_the_email_server_is_down(site):
    with smtp_server() as server:
        port = server.port
    smtp = f'transport = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 2'
    _configure(site, {"rilo": {"email": "desk@rilo.example"}}, delivery=smtp)
    _partners_only(site)
    _, engine = _prepare(site)
    _, stopped = _publish(site, engine)
    # The run stops, as for the lists' email; the partner is due again, not failed.
    assert stopped.ended is core.Ended.FAILED and isinstance(stopped.cause, TransportUnavailable)
    assert stopped.report.per_partner == {"rilo": {"pending": 1}}
    with smtp_server() as server:
        text = (site / "bulletin.toml").read_text()
        (site / "bulletin.toml").write_text(text.replace(f"port = {port}", f"port = {server.port}"))
        _, result = _publish(site, engine)
        assert result.report.edition == stopped.report.edition
        assert [r.recipients for r in server.received] == [("desk@rilo.example",)]
    assert result.report.per_partner == {"rilo": {"sent": 1}}


def test_partner_email_without_the_disclaimer_is_refused_before_anything_is_sent(site):
    _configure(site, {"rilo": {"email": "desk@rilo.example"}}, delivery='transport = "outbox"')
    _partners_only(site)
    templates = site / "templates"
    templates.mkdir()
    original = (REPO / "templates" / "email.txt.j2").read_text()
    disclaimer = "{{ notice.disclaimer | wordwrap(72) }}"
    assert disclaimer in original
    (templates / "email.txt.j2").write_text(original.replace(disclaimer, ""))
    config = load_config(site)
    with pytest.raises(ContentError) as refused:
        core.plan(config, connect(config.database_url))
    assert any(
        "the email to partner rilo (text part) lacks the disclaimer" in p.message
        for p in refused.value.problems
    )


def test_missing_partner_secret_is_a_configuration_error_naming_the_variable(site):
    _configure(site, {"interpol": {"webhook": "https://partner.example/hook"}})
    config = load_config(site)
    with pytest.raises(ConfigError, match="TEST_PARTNER_INTERPOL_SECRET is not set"):
        from_config(config)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0", 0.0), ("86400", RETRY_AFTER_CAP_SECONDS), ("soon", None), (None, None),
     ("Sat, 28 Nov 2026 10:00:30 GMT", 30.0), ("Sat, 28 Nov 2026 09:59:00 GMT", 0.0)],
)  # fmt: skip
def test_retry_after_reads_seconds_and_http_dates_and_is_capped(header, expected):
    now = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
    assert retry_after(header, now) == expected


# --- the command line -------------------------------------------------------------------


def test_partners_test_pings_with_a_signed_event_and_reports_status_and_latency(site):
    with webhook_server(WHSEC) as server:
        _configure(site, {"interpol": {"webhook": server.url("/ping")}})
        env = {"TEST_PARTNER_INTERPOL_SECRET": WHSEC}
        result = run_cli("partners", "test", "interpol", site=site, env=env)
        assert result.returncode == 0, result.stderr
        assert "answered HTTP 200 in" in result.stdout and " ms" in result.stdout
        server.plan("/ping", ["503"])
        failed = run_cli("partners", "test", "interpol", "--json", site=site, env=env)
    assert failed.returncode == 3
    report = json.loads(failed.stdout)
    assert report["status"] == 503 and report["ok"] is False and report["latency_ms"] > 0
    ping_request = server.received[0]
    assert ping_request.verified
    assert _validate(ping_request.body, "ping")["data"]["partner"] == "interpol"


def test_partners_test_of_an_unknown_partner_lists_the_known_ones(site):
    result = run_cli("partners", "test", "europol", site=site)
    assert result.returncode == 2
    assert "no partner 'europol'" in result.stderr and "known partners: interpol" in result.stderr


def _partners_only(site: Path) -> None:
    """No list takes email: the edition goes to the partners alone."""
    text = (site / "bulletin.toml").read_text()
    start, end = text.index("[lists.news]"), text.index("[delivery]")
    (site / "bulletin.toml").write_text(text[:start] + text[end:])


def test_publish_with_a_failing_partner_exits_3_and_names_it(site):
    with webhook_server(WHSEC) as server:
        _configure(
            site,
            {"good": {"webhook": server.url("/good")}, "bad": {"webhook": server.url("/bad")}},
        )
        _partners_only(site)
        server.plan("/bad", ["410"])
        env = {"TEST_PARTNER_GOOD_SECRET": WHSEC, "TEST_PARTNER_BAD_SECRET": WHSEC}
        result = run_cli("publish", "--json", site=site, env=env)
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["partners"] == {"bad": "failed", "good": "sent"}
    [failure] = report["failures"]
    assert failure["target"] == "bad" and "HTTP 410" in failure["reason"]


def test_the_verification_examples_in_docs_partners_md_accept_our_webhooks():
    docs = (REPO / "docs" / "partners.md").read_text()
    snippets = [block.split("```", 1)[0] for block in docs.split("```python\n")[1:]]
    with_library, by_hand = snippets
    with webhook_server(WHSEC) as server:
        WebhookTransport("interpol", server.url("/in"), WHSEC, timeout=5).post(b"{}", "msg_1")
    [request] = server.received
    library: dict = {}
    exec(with_library.replace('"whsec_..."', repr(WHSEC)), library)  # noqa: S102
    assert library["receive"](request.body, request.headers) == {}
    manual: dict = {}
    exec(by_hand, manual)  # noqa: S102
    manual["verify"](WHSEC, request.body, request.headers)
    with pytest.raises(ValueError, match="bad signature"):
        manual["verify"](WHSEC, request.body + b" ", request.headers)


def test_webhook_secret_can_come_from_a_prefect_secret_block(site, prefect_harness):
    from prefect.blocks.system import Secret

    Secret(value=WHSEC).save("bulletin-partner-interpol", overwrite=True)
    with webhook_server(WHSEC) as server:
        _configure(
            site,
            {"interpol": {"webhook": server.url("/in"),
                          "secret_block": "bulletin-partner-interpol"}},
        )  # fmt: skip
        text = (site / "bulletin.toml").read_text()
        (site / "bulletin.toml").write_text(text.replace('secret_env = "', '# "'))
        _, result = _publish(site)
    [request] = server.received
    assert request.verified and _status(result, "interpol") == "sent"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"webhook": "partner.example/hook", "secret_env": "X"}, "not an absolute http(s) URL"),
        ({"webhook": "https://p.example/", "email": "a@p.example", "secret_env": "X"},
         "has both webhook and email"),
        ({"webhook": "https://p.example/"}, "no secret_env"),
        ({"webhook": "https://p.example/", "secret_env": "X", "secret_block": "b"},
         "both secret_env and secret_block"),
        ({"email": "desk"}, "not an email address"),
        ({"email": "a@p.example", "timeout": 0}, "timeout"),
    ],
)  # fmt: skip
def test_partner_configuration_mistakes_are_reported_with_line_and_exit_2(site, fields, says):
    text = (site / "bulletin.toml").read_text()
    text = text[: text.index("[partners.interpol]")] + "[partners.bad]\nname = 'Bad'\n"
    text += "".join(f"{name} = {json.dumps(value)}\n" for name, value in fields.items())
    (site / "bulletin.toml").write_text(text)
    result = run_cli("check", site=site)
    assert result.returncode == 2
    assert says in result.stderr and "bulletin.toml:" in result.stderr
    assert "Traceback" not in result.stderr


def test_partner_is_skipped_once_send_not_after_has_passed(site, monkeypatch):
    from bulletin.content.approval import approve
    from bulletin.content.entries import load_entry

    path = site / "content" / f"{SOFIA}.md"
    path.write_text(
        path.read_text().replace(
            "status: approved", "send_not_after: 2019-12-20T00:00:00+02:00\nstatus: approved"
        )
    )
    with webhook_server(WHSEC) as server:
        _configure(site, {"interpol": {"webhook": server.url("/in"), "tags": ["firearms"]}})
        _secrets(monkeypatch, "interpol")
        config = load_config(site)
        entry, problems = load_entry(config, path)
        assert problems == []
        approve(entry, approver_key(config), entry.approved_at)
        _, result = _publish(site)
    assert server.received == []
    assert _status(result, "interpol") == "skipped"
