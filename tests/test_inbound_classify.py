"""Classification of real bounces, complaints and auto-replies (the sisimai corpus subset in
tests/fixtures/bounces/), and `bulletin inbound classify` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulletin.inbound.classify import classify
from tests.conftest import run_cli

CORPUS = Path(__file__).parent / "fixtures" / "bounces"
FILES = sorted(CORPUS.glob("*.eml"))


def _family(path: Path) -> str:
    return path.stem.rsplit("-", 1)[0]


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith("arf-")], ids=str)
def test_feedback_reports_are_complaints_never_bounces(path):
    found = classify(path.read_bytes())
    # arf-26 is Apple Mail's one-click unsubscribe, which sisimai files with the reports.
    assert found.kind == ("unsubscribe" if path.name == "arf-26.eml" else "complaint")


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith("rfc3834-")], ids=str)
def test_auto_replies_are_ignored_never_bounces(path):
    assert classify(path.read_bytes()).kind == "auto-reply"


BOUNCES = [p for p in FILES if p.name.startswith(("lhost-", "rhost-", "rfc3464-"))]


@pytest.mark.parametrize("path", BOUNCES, ids=str)
def test_bounces_name_the_recipient_and_how_bad(path):
    found = classify(path.read_bytes())
    if path.name == "rfc3464-28.eml":  # a report that the message was deliverable
        assert found.kind == "other"
        return
    assert found.kind == "bounce"
    assert found.recipient and "@" in found.recipient
    if found.status is not None:
        assert found.permanent is (found.status[0] == "5")


@pytest.mark.parametrize(
    ("name", "recipient", "status", "permanent"),
    [
        ("rfc3464-01.eml", "userunknown@bouncehammer.jp", "5.1.1", True),
        ("rfc3464-07.eml", "kijitora@example.net", "4.4.0", False),
        ("lhost-postfix-01.eml", "kijitora@example.org", "5.1.1", True),
        ("lhost-exim-02.eml", "kijitora@example.jp", "5.1.1", True),
        ("lhost-qmail-05.eml", "kijitora@example.net", "4.4.3", False),
        ("lhost-exchange2007-01.eml", "mikeneko@example.co.jp", "5.1.1", True),
        ("lhost-gmail-01.eml", "userunknown@example.jp", "5.1.1", True),
        ("lhost-dragonfly-01.eml", "pseudo-local-part@google.example.com", "5.7.26", True),
        ("rhost-google-02.eml", "neko-nyaan@example.org", "5.1.1", True),  # a broken boundary
    ],
)
def test_known_bounces(name, recipient, status, permanent):
    found = classify((CORPUS / name).read_bytes())
    assert (found.kind, found.recipient, found.status, found.permanent) == (
        "bounce", recipient, status, permanent,
    )  # fmt: skip


def test_ordinary_mail_is_other():
    for path in CORPUS.glob("is-not-bounce-*.eml"):
        assert classify(path.read_bytes()).kind == "other", path.name


def test_classify_command_prints_the_contract_and_changes_nothing(site):
    names = ["rfc3464-01.eml", "arf-01.eml", "rfc3834-01.eml"]
    done = run_cli("inbound", "classify", *(str(CORPUS / n) for n in names), "--json", site=site)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"file": str(CORPUS / "rfc3464-01.eml"), "kind": "bounce",
         "recipient": "userunknown@bouncehammer.jp", "status": "5.1.1", "permanent": True},
        {"file": str(CORPUS / "arf-01.eml"), "kind": "complaint",
         "recipient": "redacted@example.net", "status": None, "permanent": None},
        {"file": str(CORPUS / "rfc3834-01.eml"), "kind": "auto-reply",
         "recipient": "kijitora@example.net", "status": None, "permanent": None},
    ]  # fmt: skip
    assert not (site / ".bulletin" / "bulletin.db").exists()
    missing = run_cli("inbound", "classify", "nothing-here.eml", site=site)
    assert missing.returncode == 2 and "nothing-here.eml: no such file" in missing.stderr
