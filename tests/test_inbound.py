"""What comes back: bounces, complaints and mailto unsubscribes to the VERP addresses of a
real SMTP publish act on the right address, once; forged and foreign reports change nothing."""

from __future__ import annotations

import imaplib
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.delivery.engine import RetryPolicy
from bulletin.delivery.smtp import SmtpTransport
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.inbound.processing import process
from bulletin.inbound.sources import MaildirSource
from bulletin.store import ledger
from bulletin.store.database import connect, subscribers
from bulletin.store.subscribers import import_csv
from tests.conftest import run_cli
from tests.imap_server import dovecot
from tests.inbound_mail import arf, dsn, plain, sent_to, to_maildir, to_mbox
from tests.smtp_server import make_tls_files, smtp_server

READERS = ["ana@example.org", "john@example.com", "mara@example.org"]


def inbound_site(site: Path, port: int, extra: str = "") -> None:
    text = (site / "bulletin.toml").read_text()
    text = text.replace(
        "[lists.news]",
        f'[delivery]\ntransport = "smtp"\nretry_backoff_seconds = 0.05\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 5\n\n'
        f'[inbound]\nreturn_path = "bounces@example.org"\nmax_message_bytes = 200000\n'
        f"{extra}\n[lists.news]",
    )
    (site / "bulletin.toml").write_text(text)
    (site / "subscribers.csv").write_text("email\n" + "\n".join(READERS) + "\n")


def publish(site: Path):
    config = load_config(site)
    engine = connect(config.database_url)
    import_csv(engine, config, site / "subscribers.csv", "news")
    transports = TransportFactory(
        lambda: SmtpTransport(config.delivery.smtp), lambda key: MemoryTransport(lambda m: None)
    )
    steps = core.Steps(transports, engine=engine, retry=RetryPolicy(2, 0.05))
    core.publish(site, steps=steps)
    return config, engine


@pytest.fixture
def published(site: Path):
    """The fixture site published over SMTP with [inbound]: (config, engine, received)."""
    with smtp_server() as server:
        inbound_site(site, server.port)
        config, engine = publish(site)
        received = list(server.received)
    yield config, engine, received
    engine.dispose()


def statuses(engine) -> dict[str, str]:
    with engine.connect() as db:
        return dict(db.execute(sa.select(subscribers.c.email, subscribers.c.status)).all())


def test_each_message_has_its_own_signed_envelope_sender_and_mailto(published):
    _, _, received = published
    senders = {m.recipients[0]: m.sender for m in received if m.recipients[0] in READERS}
    assert len(set(senders.values())) == len(READERS)
    for address, sender in senders.items():
        assert re.fullmatch(r"bounces\+[a-z0-9.-]+\.[a-z2-7]{16}@example\.org", sender), sender
        assert address not in sender  # the token names the message, not the address
        head = sent_to(received, address).data.split(b"\r\n\r\n")[0].decode()
        assert re.search(
            r"<mailto:unsubscribe\+[a-z0-9.-]+@example\.org\?subject=unsubscribe>", head
        )


def test_without_inbound_the_envelope_sender_is_the_from_address(site):
    with smtp_server() as server:
        inbound_site(site, server.port)
        text = (site / "bulletin.toml").read_text()
        (site / "bulletin.toml").write_text(
            text.replace('[inbound]\nreturn_path = "bounces@example.org"\n', "[x]\n").replace(
                "[x]\nmax_message_bytes = 200000\n", ""
            )
        )
        _, engine = publish(site)
        engine.dispose()
        assert {m.sender for m in server.received} == {"news@example.org"}


def test_process_acts_on_proven_reports_only_and_once(published, tmp_path):
    config, engine, received = published
    ana, john, mara = (sent_to(received, a) for a in READERS)
    mailto = re.search(rb"<mailto:(unsubscribe\+[^?>]+)", mara.data).group(1).decode()
    forged_sender = re.sub(r"\.[a-z2-7]{16}@", ".aaaaaaaaaaaaaaaa@", john.sender)
    messages = [
        dsn(ana.sender, "ana@example.org", "5.1.1"),  # proven by its VERP address
        dsn(john.sender, "john@example.com", "4.2.2"),  # temporary: counted
        dsn(forged_sender, "john@example.com", "5.1.1"),  # forged token: unmatched
        dsn("bounces@example.org", "mara@example.org", "5.1.1"),  # no proof at all
        plain(mailto, "Mara <mara@example.org>", "unsubscribe"),
        plain(john.sender, "john@example.com", "Out of office", Auto_Submitted="auto-replied"),
    ]
    inbox = to_maildir(tmp_path / "Maildir", messages)
    done = run_cli("inbound", "process", "--maildir", str(inbox), "--json", site=config.root)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "processed": 6, "bounces": {"permanent": 1, "temporary": 1}, "complaints": 0,
        "unsubscribes": 1, "auto_replies": 1, "unmatched": 2, "errors": 0,
        "suppressed": ["ana@example.org"], "unsubscribed": ["mara@example.org"],
    }  # fmt: skip
    assert statuses(engine) == {
        "ana@example.org": "suppressed", "john@example.com": "active",
        "mara@example.org": "unsubscribed",
    }  # fmt: skip
    with engine.connect() as db:
        assert ledger.suppressed(db) == {"ana@example.org"}
    # Done messages are marked seen; the same message delivered again changes nothing.
    to_maildir(inbox, [messages[0], messages[1]])
    again = run_cli("inbound", "process", "--maildir", str(inbox), "--json", site=config.root)
    assert json.loads(again.stdout)["processed"] == 2
    assert json.loads(again.stdout)["bounces"] == {"permanent": 0, "temporary": 0}


def test_a_complaint_quoting_our_message_unsubscribes_from_every_list(published, tmp_path):
    config, engine, received = published
    john = sent_to(received, "john@example.com")
    inbox = to_maildir(tmp_path / "Maildir", [arf(john.data)])
    report = process(engine, config, MaildirSource(inbox, 2**20))
    assert (report.complaints, report.unsubscribed) == (1, ["john@example.com"])
    assert statuses(engine)["john@example.com"] == "unsubscribed"


def test_a_bounce_quoting_our_message_id_for_another_address_is_unmatched(published, tmp_path):
    config, engine, received = published
    ana = sent_to(received, "ana@example.org")
    quoting = dsn("bounces@example.org", "ana@example.org", "5.1.1", original=ana.data)
    foreign = dsn("bounces@example.org", "john@example.com", "5.1.1", original=ana.data)
    inbox = to_maildir(tmp_path / "Maildir", [foreign, quoting])
    report = process(engine, config, MaildirSource(inbox, 2**20))
    assert (report.unmatched, report.suppressed) == (1, ["ana@example.org"])
    assert statuses(engine)["john@example.com"] == "active"


def test_soft_bounces_suppress_at_the_limit(published, tmp_path):
    config, engine, received = published
    john = sent_to(received, "john@example.com")
    bounces = [dsn(john.sender, "john@example.com", f"4.2.{n}") for n in range(3)]
    first = process(engine, config, MaildirSource(to_maildir(tmp_path / "a", bounces[:2]), 2**20))
    assert (first.temporary, first.suppressed) == (2, [])
    assert statuses(engine)["john@example.com"] == "active"
    last = process(engine, config, MaildirSource(to_maildir(tmp_path / "b", bounces[2:]), 2**20))
    assert last.suppressed == ["john@example.com"]
    assert statuses(engine)["john@example.com"] == "suppressed"


def test_bad_messages_are_counted_and_the_rest_go_on(published, tmp_path):
    config, _, received = published
    ana = sent_to(received, "ana@example.org")
    huge = plain("bounces@example.org", "x@example.net", "big") + b"x" * 300_000
    nested = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + (
        b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 20000
    )
    messages = [huge, nested, b"\x00\xff" * 1000, dsn(ana.sender, "ana@example.org", "5.1.1")]
    inbox = to_mbox(tmp_path / "inbox.mbox", messages)
    done = run_cli("inbound", "process", "--mbox", str(inbox), "--json", site=config.root)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["processed"] == 4 and report["suppressed"] == ["ana@example.org"]
    assert report["errors"] >= 1 and "max_message_bytes" in done.stderr
    assert "Traceback" not in done.stderr


def test_inbound_config_is_checked(site):
    text = (site / "bulletin.toml").read_text()
    (site / "bulletin.toml").write_text(
        text + '\n[inbound]\nreturn_path = "Bounces <bounces@example.org>"\n'
    )
    done = run_cli("inbound", "process", "--maildir", str(site), site=site)
    assert done.returncode == 2
    assert "return_path" in done.stderr and "bare address" in done.stderr


def test_process_without_a_mailbox_says_what_to_configure(site):
    done = run_cli("inbound", "process", site=site)
    assert done.returncode == 2 and "[inbound.imap]" in done.stderr


def test_an_unreadable_source_exits_3(site, tmp_path):
    done = run_cli("inbound", "process", "--maildir", str(tmp_path / "nowhere"), site=site)
    assert done.returncode == 3 and "not a Maildir" in done.stderr


# --- IMAP: Debian's Dovecot, started by the test ------------------------------------------


def _imap_site(site: Path, server, security: str = "none") -> dict[str, str]:
    text = (site / "bulletin.toml").read_text()
    text = text.replace(
        "max_message_bytes = 200000\n",
        "max_message_bytes = 200000\n[inbound.imap]\n"
        f'host = "{server.host}"\nport = {server.port}\nsecurity = "{security}"\n',
    )
    (site / "bulletin.toml").write_text(text)
    return {"BULLETIN_IMAP_USERNAME": server.user, "BULLETIN_IMAP_PASSWORD": server.password}


def _mailbox(server, security: str = "none", context=None):
    if security == "ssl":
        imap = imaplib.IMAP4_SSL(server.host, server.port, ssl_context=context)
    else:
        imap = imaplib.IMAP4(server.host, server.port)
        if security == "starttls":
            imap.starttls(context)
    imap.login(server.user, server.password)
    return imap


def _count(imap, folder: str) -> int:
    status, data = imap.select(f'"{folder}"', readonly=True)
    return int(data[0]) if status == "OK" else -1


def test_imap_messages_are_moved_to_the_done_folder_after_acting(published):
    config, engine, received = published
    ana = sent_to(received, "ana@example.org")
    with dovecot() as server:
        env = _imap_site(config.root, server)
        imap = _mailbox(server)
        for data in (
            dsn(ana.sender, "ana@example.org", "5.1.1"),
            dsn("bounces@example.org", "john@example.com", "5.1.1"),
            plain("bounces@example.org", "x@example.net", "Out of office"),
        ):
            imap.append("INBOX", None, None, data)
        done = run_cli("inbound", "process", "--json", site=config.root, env=env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["processed"], report["suppressed"], report["unmatched"]) == (
            3, ["ana@example.org"], 1,
        )  # fmt: skip
        assert (_count(imap, "INBOX"), _count(imap, "bulletin-done")) == (0, 3)
        again = run_cli("inbound", "process", "--json", site=config.root, env=env)
        assert json.loads(again.stdout)["processed"] == 0
        wrong = run_cli("inbound", "process", site=config.root,
                        env={**env, "BULLETIN_IMAP_PASSWORD": "wrong"})  # fmt: skip
        assert wrong.returncode == 3 and "login refused" in wrong.stderr
        assert "wrong" not in wrong.stderr
        imap.logout()
    assert statuses(engine)["ana@example.org"] == "suppressed"


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imap_over_tls_checks_the_certificate(published, tmp_path, security):
    config, _, received = published
    (tmp_path / "tls").mkdir()
    tls = make_tls_files(tmp_path / "tls")
    with dovecot(tls=(tls.certfile, tls.keyfile), implicit=security == "ssl") as server:
        env = _imap_site(config.root, server, security)
        imap = _mailbox(server, security, tls.client_context())
        ana = sent_to(received, "ana@example.org")
        imap.append("INBOX", None, None, dsn(ana.sender, "ana@example.org", "5.1.1"))
        untrusted = run_cli("inbound", "process", site=config.root, env=env)
        assert untrusted.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        trusted = run_cli("inbound", "process", "--json", site=config.root,
                          env={**env, "SSL_CERT_FILE": str(tls.cafile)})  # fmt: skip
        assert trusted.returncode == 0, trusted.stderr
        assert json.loads(trusted.stdout)["suppressed"] == ["ana@example.org"]
        imap.logout()


# --- The process-inbound flow, against the session's Prefect server --------------------------


def test_process_inbound_flow_reports_as_an_artifact(published, tmp_path, prefect_harness):
    from bulletin.flows.inbound import process_inbound
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    config, engine, received = published
    ana = sent_to(received, "ana@example.org")
    inbox = to_maildir(tmp_path / "Maildir", [dsn(ana.sender, "ana@example.org", "5.1.1")])
    result = process_inbound(site=str(config.root), maildir=str(inbox))
    assert result["suppressed"] == ["ana@example.org"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["inbound-report"]))
        )
    assert any("ana@example.org" in str(a.data) for a in artifacts)
    assert statuses(engine)["ana@example.org"] == "suppressed"


# --- DKIM covers the tokenised mailto ------------------------------------------------------


def test_dkim_signature_covers_the_tokenised_mailto(site, monkeypatch):
    import base64
    import datetime as dt

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from pydantic import SecretStr

    from bulletin.content.entries import load_entries
    from bulletin.mail.compiled import CompiledEmail
    from bulletin.mail.dkim import DkimSigner
    from bulletin.mail.verp import Verp
    from bulletin.render.renderer import Renderer
    from bulletin.tokens import Signer

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.setenv("BULLETIN_TEST_DKIM_KEY", pem.decode())
    with (site / "bulletin.toml").open("a") as toml:
        toml.write(
            '\n[delivery.dkim]\ndomain = "example.org"\nselector = "s1"\n'
            'private_key_env = "BULLETIN_TEST_DKIM_KEY"\n'
            '\n[inbound]\nreturn_path = "bounces@example.org"\n'
        )
    config = load_config(site)
    rendered = Renderer(config).email(load_entries(config).entries, "2019-11-20-1", "News")
    verp = Verp.for_config(config, Signer(SecretStr("test-key")))
    compiled = CompiledEmail(config, rendered, "2019-11-20-1", "news", config.lists["news"],
                             dkim=DkimSigner.for_config(config), verp=verp)  # fmt: skip
    when = dt.datetime(2019, 11, 20, 9, 0, tzinfo=dt.UTC)
    message = compiled.personalise("ana@example.org", "tok-abc", when)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(query, timeout=5):
        return record if query == b"s1._domainkey.example.org." else None

    assert message.sender.startswith("bounces+") and b"mailto:unsubscribe+" in message.data
    assert dkim.verify(message.data, dnsfunc=dns)
    forged = re.sub(rb"mailto:unsubscribe\+[a-z0-9.-]+", b"mailto:unsubscribe+x.y.z", message.data)
    assert forged != message.data and not dkim.verify(forged, dnsfunc=dns)


def test_process_inbound_flow_without_a_mailbox_reads_nothing(site, prefect_harness):
    from bulletin.flows.inbound import process_inbound

    assert process_inbound(site=str(site))["processed"] == 0
