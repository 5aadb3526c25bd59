"""Hostile or careless input from entries and bulletin.toml is refused by `check`, with the
file, line and a stable code, before it can exhaust memory, escape the site, inject header
fields or crash a publish; secrets in URLs never appear in what bulletin prints or stores.

Each test reproduces one finding of the security review (the number in its docstring).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.content.entries import load_entries
from bulletin.delivery.configured import from_config
from bulletin.delivery.engine import RetryPolicy
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.errors import ConfigError
from bulletin.files import ReadRefused, read_capped
from bulletin.pipeline.write import write_public
from bulletin.store.database import connect, deliveries
from tests.conftest import run_cli
from tests.smtp_server import make_tls_files
from tests.webhook_server import webhook_server

FRONT = "title: An entry\ndate: 2019-11-12\nstatus: draft\n"


def write_entry(site: Path, name: str, front: str, body: str = "Some body text.\n") -> str:
    """Write content/NAME.md; its path as problems name it."""
    (site / "content" / f"{name}.md").write_text(f"---\n{front}---\n{body}", encoding="utf-8")
    return f"content/{name}.md"


def problems_of(site: Path, shown: str) -> list:
    return [p for p in load_entries(load_config(site)).problems if p.path == shown]


def check_json(site: Path) -> tuple[int, list[dict]]:
    result = run_cli("check", "--json", site=site)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)["problems"]


# --- 1. YAML anchors and aliases ("billion laughs") --------------------------------------


def laughs(levels: int) -> str:
    front = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, levels):
        front += f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n"
    return front + "title: Laughs\ndate: 2019-13-45\nstatus: draft\n"


def test_yaml_aliases_are_refused_before_anything_is_expanded(site):
    """1: a 500-byte entry grew to gigabytes when an error message quoted its value. Five
    levels here (59,049 strings once expanded) keep the test small; the loader refuses the
    first alias whatever the depth."""
    shown = write_entry(site, "laughs", laughs(5))
    status, problems = check_json(site)
    assert status == 1
    [problem] = [p for p in problems if p["path"] == shown]
    assert problem["code"] == "yaml-alias" and problem["line"] == 2
    assert "write the value out in full" in problem["message"]
    assert len(problem["message"]) < 300


def test_a_full_billion_laughs_is_refused_fast_and_small(site):
    """1: the review's nine-level entry, checked in a process allowed 1 GB of memory."""
    shown = write_entry(site, "laughs", laughs(9))
    assert (site / shown).stat().st_size < 1024

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "bulletin.cli", "--site", str(site), "check", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    codes = {(p["path"], p["code"]) for p in json.loads(result.stdout)["problems"]}
    assert (shown, "yaml-alias") in codes


@pytest.mark.parametrize(
    ("front", "code", "line"),
    [
        ("tags: [" * 40 + "x" + "]" * 40 + "\n" + FRONT, "yaml-too-deep", 2),
        ("tags: [" + ", ".join(["x"] * 6000) + "]\n" + FRONT, "yaml-too-large", 2),
    ],
    ids=["nested-40-deep", "6000-values"],
)
def test_front_matter_beyond_the_limits_is_refused(site, front, code, line):
    """1: nesting and the number of values are bounded too (a parser's recursion, a slow
    walk), not only aliases."""
    shown = write_entry(site, "bounded", front)
    [problem] = problems_of(site, shown)
    assert (problem.code, problem.line) == (code, line)


# --- 17. Duplicate keys, impossible offsets, old-Mac line endings -----------------------


@pytest.mark.parametrize(
    ("front", "line", "field"),
    [
        (FRONT + "title: Another title\n", 5, "title"),
        (FRONT.replace("status: draft", "status: approved") + "status: draft\n", 5, "status"),
        ("title: {en: One, en: Two}\ndate: 2019-11-12\nstatus: draft\n", 2, "en"),
    ],
    ids=["title-twice", "status-twice", "nested-twice"],
)
def test_duplicate_keys_are_refused_with_their_line(site, front, line, field):
    """17: YAML kept the last of two keys silently; a second `status: draft` below an
    approved one would have gone unnoticed."""
    shown = write_entry(site, "twice", front)
    [problem] = problems_of(site, shown)
    assert problem.code == "yaml-duplicate-key" and problem.line == line
    assert f"field {field!r} is given twice" in problem.message


def test_an_offset_beyond_24_hours_is_a_clear_error(site):
    """17: `+25:00` gave Python's "offset must be a timedelta strictly between ..."."""
    shown = write_entry(site, "offset", FRONT + "publish_at: 2019-11-20T09:00:00+25:00\n")
    [problem] = problems_of(site, shown)
    assert problem.code == "datetime-invalid" and problem.line == 5
    assert "offset +25:00 is out of range" in problem.message
    assert "timedelta" not in problem.message


def test_old_mac_line_endings_are_read_like_any_others(site):
    """17: a file with CR alone between lines was "front matter missing"."""
    path = site / "content" / "old-mac.md"
    path.write_bytes(
        f"---\n{FRONT}---\nA body.\n\nSecond paragraph.\n".replace("\n", "\r").encode()
    )
    loaded = load_entries(load_config(site))
    assert [p for p in loaded.problems if p.path == "content/old-mac.md"] == []
    [entry] = [e for e in loaded.entries if e.slug == "old-mac"]
    assert entry.title == "An entry" and "Second paragraph." in entry.body


# --- 8. Control characters in titles and bodies -----------------------------------------


@pytest.mark.parametrize(
    ("char", "name"),
    [("\v", "vertical tab"), ("\f", "form feed"), ("\x1b", "escape"), ("\x00", "NUL")],
    ids=["vertical-tab", "form-feed", "escape", "nul"],
)
@pytest.mark.parametrize("where", ["title", "body"])
def test_control_characters_are_refused_with_file_and_line(site, char, name, where):
    """8: they made the MJML step fail, blaming the built-in template and naming no entry,
    while `check --json` said "problems": []."""
    front, body = FRONT, f"First line.\nSecond{char}line.\n"
    if where == "title":
        front, body = FRONT.replace("An entry", f"An{char}entry"), "Body.\n"
    shown = write_entry(site, "pasted", front, body)
    status, problems = check_json(site)
    assert status == 1
    [problem] = [p for p in problems if p["path"] == shown]
    assert problem["code"] == "control-character"
    assert problem["line"] == (2 if where == "title" else 7)
    assert name in problem["message"]


def test_control_characters_made_by_a_yaml_escape_are_refused(site):
    """8: a double-quoted "\\v" is no control character in the file but one in the title."""
    shown = write_entry(site, "escaped", FRONT.replace("An entry", '"An\\ventry"'))
    [problem] = problems_of(site, shown)
    assert problem.code == "control-character" and problem.line == 2
    assert "title holds a vertical tab" in problem.message


# --- 9. Slugs -------------------------------------------------------------------------------


def test_a_slug_ending_in_a_newline_is_refused(site):
    """9: `$` matched before a final newline: public/entries/<slug>\\n/ and a broken feed."""
    (site / "content" / "2019-11-14-trailing\n.md").write_text(
        f"---\n{FRONT}---\nBody.\n", encoding="utf-8"
    )
    problems = [p for p in load_entries(load_config(site)).problems if "trailing" in p.path]
    assert [p.code for p in problems] == ["slug-invalid"]


# --- 15. Reads bounded and kept inside the site ----------------------------------------


def test_an_entry_linked_to_dev_zero_is_refused_without_reading_it(site):
    """15: a symlink in content/ to /dev/zero exhausted memory in two seconds."""
    (site / "content" / "zero.md").symlink_to("/dev/zero")

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "bulletin.cli", "--site", str(site), "check", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    [problem] = [p for p in json.loads(result.stdout)["problems"] if p["path"] == "content/zero.md"]
    assert problem["code"] == "file-unreadable"


def test_a_named_pipe_in_content_is_refused_without_waiting_for_a_writer(site):
    """15: reads open only regular files; a pipe would have blocked check for ever."""
    os.mkfifo(site / "content" / "pipe.md")
    result = subprocess.run(
        [sys.executable, "-m", "bulletin.cli", "--site", str(site), "check", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    [problem] = [p for p in json.loads(result.stdout)["problems"] if p["path"] == "content/pipe.md"]
    assert problem["code"] == "file-unreadable" and "not a regular file" in problem["message"]


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_reads_stop_at_the_limit_where_stat_gives_no_size():
    """15: files of /proc say they hold 0 bytes; the cap holds for them too."""
    with pytest.raises(ReadRefused, match="more than the 100 bytes allowed"):
        read_capped(Path("/proc/self/status"), 100)
    assert b"Name:" in read_capped(Path("/proc/self/status"), 1024 * 1024)


def test_an_entry_linked_outside_the_site_is_not_read(site, tmp_path):
    """15: a link may not lead outside the site (a file of another site, ~/.ssh/...)."""
    outside = tmp_path / "elsewhere.md"
    outside.write_text(f"---\n{FRONT}---\nNot this site's.\n", encoding="utf-8")
    (site / "content" / "elsewhere.md").symlink_to(outside)
    loaded = load_entries(load_config(site))
    assert "elsewhere" not in {e.slug for e in loaded.entries}
    [problem] = [p for p in loaded.problems if p.path == "content/elsewhere.md"]
    assert problem.code == "file-unreadable" and "outside the site" in problem.message


def test_a_folder_linked_outside_the_site_is_not_walked(site, tmp_path):
    """15: a link to / would have made check walk the whole machine."""
    outside = tmp_path / "other-content"
    outside.mkdir()
    (outside / "other.md").write_text(f"---\n{FRONT}---\nBody.\n", encoding="utf-8")
    (site / "content" / "linked").symlink_to(outside, target_is_directory=True)
    loaded = load_entries(load_config(site))
    assert "other" not in {e.slug for e in loaded.entries}
    assert not [p for p in loaded.problems if "other" in p.path]


def test_a_link_in_static_leading_outside_the_site_is_not_published(site, tmp_path):
    """15: static/ is copied into public/; a link committed to the site's repository must
    not publish a file of the machine (a key, a password file)."""
    outside = tmp_path / "id_rsa"
    outside.write_text("PRIVATE KEY of the machine\n")
    (site / "static" / "key.txt").symlink_to(outside)
    (site / "static" / "note.txt").write_text("a file of the site\n")
    written = write_public(load_config(site), {})
    assert "public/static/note.txt" in written
    assert "public/static/key.txt" not in written
    assert not (site / "public" / "static" / "key.txt").exists()


# --- 5 and 6. Configuration that would fail a publish -----------------------------------


def edit_config(site: Path, old: str, new: str) -> None:
    path = site / "bulletin.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


URL = 'url = "https://news.example.org/"'
FROM = 'from = "Fixture Communications <news@example.org>"'
REPLY = 'reply_to = "press@example.org"'
LIST = '[lists.news]\nname = "Fixture News"'
EMBLEM = 'emblem = "static/eu-emblem.png"'
WEBHOOK = 'webhook = "https://partner.example/hooks/bulletin"'
BCC = "\\r\\nBcc: all@evil.example"  # a line break, as TOML escapes write it
SMTP = "[delivery.smtp]\n"
DATABASE = '[database]\nurl = "postgresql://u:p@ss@127.0.0.1/b"\n'
# Lines of tests/fixtures/site/bulletin.toml as these edits leave it.
CONFIG_CASES = [
    ("url-crlf", URL, URL.replace('/"', f'/{BCC}"'), "site.url", 3),
    ("url-idn", URL, URL.replace("news", "nëws"), "xn--nws-jma.example.org", 3),
    ("url-query", URL, URL.replace('/"', '/?a=1"'), "site.url", 3),
    ("from-newline", FROM, FROM.replace("Fixture", f"Fixture{BCC}"), "sender.from", 9),
    ("reply-crlf", REPLY, REPLY.replace('org"', f'org{BCC}"'), "reply_to", 10),
    ("list-name-newline", LIST, LIST.replace("Fixture", "Fixture\\n"), "lists.news.name", 34),
    ("timeout-zero", LIST, f"{SMTP}timeout = 0\n{LIST}", "smtp.timeout", 34),
    ("timeout-negative", LIST, f"{SMTP}timeout = -5\n{LIST}", "smtp.timeout", 34),
    ("port-70000", LIST, f"{SMTP}port = 70000\n{LIST}", "smtp.port", 34),
    ("list-key-path", "[lists.news]", '[lists."../../../escaped"]', "letters, digits", 33),
    ("partner-key-path", "[partners.interpol]", '[partners."../x"]', "letters, digits", 40),
    ("emblem-absolute", EMBLEM, 'emblem = "/etc/hostname"', "inside the site folder", 13),
    ("emblem-parent", EMBLEM, 'emblem = "../../x.png"', "inside the site folder", 13),
    ("webhook-http-password", WEBHOOK, WEBHOOK.replace("https://", "http://u:pw@"), "clear", 42),
    ("webhook-space", WEBHOOK, WEBHOOK.replace("hooks/", "ho oks/"), "space", 42),
    ("database-at-in-password", LIST, DATABASE + LIST, "%40", 34),
]


@pytest.mark.parametrize(
    ("old", "new", "says", "line"),
    [case[1:] for case in CONFIG_CASES],
    ids=[case[0] for case in CONFIG_CASES],
)
def test_configuration_that_would_fail_a_publish_is_refused_with_key_and_line(
    site, old, new, says, line
):
    """5, 6: these passed check, then injected header fields, wrote outside outbox/ and
    the site, or crashed publish with a traceback and exit 3."""
    edit_config(site, old, new)
    with pytest.raises(ConfigError) as caught:
        load_config(site)
    [problem] = caught.value.problems
    assert says in problem.message and problem.line == line, problem


def test_check_reports_configuration_mistakes_with_exit_2_and_lines(site):
    """5: `check` is the place to find them, all at once, exit 2."""
    edit_config(site, URL, URL.replace('/"', f'/{BCC}"'))
    edit_config(site, LIST, "[delivery.smtp]\ntimeout = 0\nport = 70000\n" + LIST)
    status, problems = check_json(site)
    assert status == 2
    assert {(p["message"].split(":")[0], p["line"]) for p in problems} == {
        ("site.url", 3),
        ("delivery.smtp.timeout", 34),
        ("delivery.smtp.port", 35),
    }


def test_an_emblem_linked_outside_the_site_is_refused(site, tmp_path):
    """6: the emblem is copied into public/; a link must not bring in a file from outside."""
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not for the web")
    (site / "static" / "linked.png").symlink_to(outside)
    edit_config(site, EMBLEM, 'emblem = "static/linked.png"')
    with pytest.raises(ConfigError) as caught:
        load_config(site)
    [problem] = caught.value.problems
    assert problem.code == "emblem-outside" and problem.line == 13


# --- 7. Credentials in a webhook URL ---------------------------------------------------------

WHSEC = "whsec_cGFydG5lci10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI="
PASSWORD = "hunter2-partner-pw"


def test_webhook_credentials_never_appear_in_reports_json_logs_or_the_ledger(
    site, tmp_path, caplog, monkeypatch
):
    """7: `https://user:pass@host/` was printed by the publish summary and `--json`, and
    stored in the ledger. The partner's self-signed certificate makes the delivery fail, so
    that the URL is quoted in a failure reason too."""
    monkeypatch.setenv("BULLETIN_PARTNER_INTERPOL_SECRET", WHSEC)
    with webhook_server(WHSEC, tls=make_tls_files(tmp_path)) as server:
        url = server.url("/in").replace("https://", f"https://desk:{PASSWORD}@")
        redacted = server.url("/in").replace("https://", "https://***@")
        edit_config(site, WEBHOOK, f'webhook = "{url}"')
        edit_config(site, "[lists.news]", '[delivery]\ntransport = "smtp"\n\n[lists.news]')
        config = load_config(site)
        engine = connect(config.database_url)
        emails: list = []
        steps = core.Steps(
            TransportFactory(lambda: MemoryTransport(emails.append), from_config(config).partner),
            engine=engine,
            retry=RetryPolicy(attempts=1, backoff_seconds=0.01),
        )
        result = core.publish(site, steps=steps)
    try:
        assert result.report.partners == {"interpol": "failed"}
        shown = "\n".join(
            [json.dumps(result.report.as_json()), *result.report.lines(), result.report.markdown()]
        )
        assert "desk:***" not in shown and PASSWORD not in shown
        assert redacted in shown
        with engine.connect() as db:
            rows = db.execute(sa.select(deliveries.c.recipient, deliveries.c.detail)).all()
        assert rows and not any(PASSWORD in f"{r.recipient} {r.detail}" for r in rows)
        assert PASSWORD not in caplog.text
        assert not any(PASSWORD in p.read_text(errors="replace") for p in _files(site / "outbox"))
    finally:
        engine.dispose()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


def test_partners_test_hides_webhook_credentials(site, tmp_path):
    """7: `partners test` printed the URL with its password, in text and in --json."""
    with webhook_server(WHSEC, tls=make_tls_files(tmp_path)) as server:
        url = server.url("/ping").replace("https://", f"https://desk:{PASSWORD}@")
        edit_config(site, WEBHOOK, f'webhook = "{url}"')
        env = {"BULLETIN_PARTNER_INTERPOL_SECRET": WHSEC}
        text = run_cli("partners", "test", "interpol", site=site, env=env)
        as_json = run_cli("partners", "test", "interpol", "--json", site=site, env=env)
    assert text.returncode == as_json.returncode == 3
    assert "TLS certificate was refused" in text.stderr
    for output in (text.stdout, text.stderr, as_json.stdout, as_json.stderr):
        assert PASSWORD not in output
    assert json.loads(as_json.stdout)["url"].startswith("https://***@127.0.0.1:")


# --- 16. Database passwords -----------------------------------------------------------------


def test_a_database_password_never_appears_in_a_connection_error():
    """16: a password holding "@" was split by the URL parser, and the rest of it shown as
    a host name: failed to resolve host 'Pw@127.0.0.1'."""
    url = "postgresql://bulletin:s3cret@LongPw@127.0.0.1:1/bulletin"
    with pytest.raises(ConfigError) as caught:
        connect(url)
    message = str(caught.value)
    assert "database.url: cannot open the database" in message
    for piece in ("s3cret", "LongPw"):
        assert piece not in message


@pytest.mark.skipif(
    not os.environ.get("BULLETIN_TEST_POSTGRES_URL"), reason="needs the test PostgreSQL server"
)
def test_a_refused_database_login_does_not_show_the_password():
    """16: the real server's refusal, for a password it does not accept."""
    server = sa.make_url(os.environ["BULLETIN_TEST_POSTGRES_URL"])
    url = server.set(password="wrong-Pw-0451").render_as_string(hide_password=False)
    with pytest.raises(ConfigError) as caught:
        connect(url)
    assert "password authentication failed" in str(caught.value)
    assert "wrong-Pw-0451" not in str(caught.value)
