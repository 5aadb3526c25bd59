"""Approvals cannot be forged: `bulletin approve` signs them with the approver's key, `check`
and `publish` refuse any approval whose signature does not verify (naming the entry), and
`bulletin approvals` lists the audit trail, with the edition that carried each approval."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.content.approval import content_hash
from bulletin.content.entries import load_entry
from bulletin.errors import ContentError
from bulletin.store.database import connect
from tests.conftest import APPROVER_KEYS, run_cli

DRAFT = "content/2019-12-10-new-entry.md"
SOFIA = "content/2019-11-13-sofia-workshop.md"
BODY = "Experts from all member states met in Bucharest.\n"


def _write_draft(site: Path) -> Path:
    path = site / DRAFT
    path.write_text(
        "---\ntitle: Regional meeting\ndate: 2019-12-10\nlanguage: en\ntags: [firearms]\n"
        "status: draft\n---\n" + BODY,
        encoding="utf-8",
    )
    return path


def _forge(site: Path, approval: str) -> Path:
    """What anyone who can edit a file could do: approve a draft by hand, with the right
    content hash (the old, unkeyed approval) and whatever else they like."""
    path = _write_draft(site)
    entry, problems = load_entry(load_config(site), path)
    assert entry is not None and problems == []
    digest = content_hash(entry.meta, entry.body)
    text = path.read_text(encoding="utf-8").replace(
        "status: draft\n",
        'status: approved\napproved_by: "Press Office"\napproved_at: 2019-12-10T10:00:00+02:00\n'
        f"approval: {approval.format(hash=digest)}\n",
    )
    path.write_text(text, encoding="utf-8")
    return path


FORGERIES = {
    # The attack of the security review: the unkeyed hash written by hand.
    "bare-hash": ("{hash}", "approval-unsigned"),
    # The signed form, with a made-up signature.
    "made-up-signature": ("{hash} ed25519:press-office:" + "A" * 86, "approval-forged"),
    # A real approver's ID with a signature taken from another entry.
    "borrowed-signature": (None, "approval-forged"),
}


@pytest.mark.parametrize("case", FORGERIES)
def test_check_refuses_an_approval_written_by_hand(site: Path, case: str):
    approval, code = FORGERIES[case]
    if approval is None:
        sofia = load_entry(load_config(site), site / SOFIA)[0]
        assert sofia is not None and sofia.approval
        approval = "{hash} " + sofia.approval.split(" ")[1]
    _forge(site, approval)

    result = run_cli("check", "--json", site=site)

    assert result.returncode == 1, result.stdout
    problems = json.loads(result.stdout)["problems"]
    assert [(p["path"], p["code"]) for p in problems] == [(DRAFT, code)]
    assert f"bulletin approve {DRAFT} --by NAME" in problems[0]["message"]


def test_publish_refuses_an_approval_written_by_hand_and_sends_nothing(site: Path):
    _forge(site, "{hash}")

    result = run_cli("publish", site=site)

    assert result.returncode == 1, result.stdout + result.stderr
    assert DRAFT in result.stderr and "approval-unsigned" in result.stderr
    assert "re-approve" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (site / "outbox").exists()


def test_publish_core_refuses_a_made_up_signature(site: Path):
    _forge(site, FORGERIES["made-up-signature"][0])
    config = load_config(site)

    with pytest.raises(ContentError) as raised:
        core.plan(config, connect(config.database_url))

    assert [(p.path, p.code) for p in raised.value.problems] == [(DRAFT, "approval-forged")]


def test_a_signed_approval_passes_check(site: Path):
    _write_draft(site)

    approved = run_cli("approve", DRAFT, "--by", "Press Office", site=site)

    assert approved.returncode == 0, approved.stderr
    assert f"approved {DRAFT} by Press Office" in approved.stdout
    text = (site / DRAFT).read_text(encoding="utf-8")
    assert 'approval: "sha256:' in text and " ed25519:press-office:" in text
    checked = run_cli("check", site=site)
    assert checked.returncode == 0, checked.stderr


def test_editing_the_body_after_approval_is_refused(site: Path):
    path = _write_draft(site)
    assert run_cli("approve", DRAFT, "--by", "editor", site=site).returncode == 0
    path.write_text(path.read_text(encoding="utf-8").replace("Bucharest", "Sofia"), "utf-8")

    result = run_cli("check", "--json", site=site)

    assert result.returncode == 1
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["path"], problem["code"]) == (DRAFT, "approval-stale")
    assert "edited after it was approved by Editor" in problem["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("approved_by", '"Press Office"'), ("approved_at", "2019-12-01T09:00:00+02:00")],
)
def test_changing_who_or_when_by_hand_is_refused(site: Path, field: str, value: str):
    path = _write_draft(site)
    assert run_cli("approve", DRAFT, "--by", "Editor", site=site).returncode == 0
    lines = path.read_text(encoding="utf-8").split("\n")
    lines = [f"{field}: {value}" if line.startswith(f"{field}:") else line for line in lines]
    path.write_text("\n".join(lines), encoding="utf-8")

    result = run_cli("check", "--json", site=site)

    assert result.returncode == 1
    codes = [(p["path"], p["code"]) for p in json.loads(result.stdout)["problems"]]
    assert codes == [(DRAFT, "approval-forged")]


def test_an_approval_by_an_approver_removed_from_bulletin_toml_is_refused(site: Path):
    toml = site / "bulletin.toml"
    text = toml.read_text(encoding="utf-8")
    start = text.index("[approvers.press-office]")
    end = text.index("[approvers.editor]")
    toml.write_text(text[:start] + text[end:], encoding="utf-8")

    result = run_cli("check", "--json", site=site)

    assert result.returncode == 1
    codes = {(p["path"], p["code"]) for p in json.loads(result.stdout)["problems"]}
    assert (SOFIA, "approver-unknown") in codes


def test_approving_with_someone_elses_key_is_refused(site: Path):
    path = _write_draft(site)

    result = run_cli(
        "approve", DRAFT, "--by", "Press Office", "--key", str(APPROVER_KEYS / "editor.key"),
        site=site,
    )  # fmt: skip

    assert result.returncode == 2
    assert "is not the key bulletin.toml lists for approvers.press-office" in result.stderr
    assert "status: draft" in path.read_text(encoding="utf-8")


def test_approving_without_a_key_on_this_machine_says_how_to_get_one(site: Path, tmp_path):
    _write_draft(site)
    empty = tmp_path / "no-keys"

    result = run_cli(
        "approve", DRAFT, "--by", "Press Office", site=site,
        env={"BULLETIN_APPROVER_KEYS": str(empty)},
    )  # fmt: skip

    assert result.returncode == 2
    assert "no approver key here" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_approver_is_told_how_to_make_a_key(site: Path):
    _write_draft(site)

    result = run_cli("approve", DRAFT, "--by", "Director", site=site)

    assert result.returncode == 2
    assert 'bulletin approvers add director --name "Director"' in result.stderr


def test_a_new_approver_adds_a_key_and_approves(site: Path, tmp_path: Path):
    keys = {"BULLETIN_APPROVER_KEYS": str(tmp_path / "keys")}
    _write_draft(site)

    added = run_cli("approvers", "add", "director", "--name", "Ana Director", site=site, env=keys)

    assert added.returncode == 0, added.stderr
    key = tmp_path / "keys" / "director.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert load_config(site).approvers["director"].name == "Ana Director"
    approved = run_cli("approve", DRAFT, "--by", "director", site=site, env=keys)
    assert approved.returncode == 0, approved.stderr
    assert run_cli("check", site=site).returncode == 0


def test_approvals_lists_the_trail_with_the_edition_that_carried_each(site: Path):
    _write_draft(site)
    assert run_cli("approve", DRAFT, "--by", "Press Office", site=site).returncode == 0

    before = json.loads(run_cli("approvals", "--json", site=site).stdout)["approvals"]

    [draft] = before
    assert draft["slug"] == "2019-12-10-new-entry"
    assert (draft["approved_by"], draft["approver"]) == ("Press Office", "press-office")
    assert draft["hash"].startswith("sha256:") and draft["edition"] is None
    assert draft["verified"] is True

    result = core.publish(site)  # the fixture's entries were approved elsewhere: not here yet
    edition = result.report.edition
    after = json.loads(run_cli("approvals", "--json", site=site).stdout)["approvals"]

    assert edition
    by_slug = {row["slug"]: row for row in after}
    assert set(by_slug) == {
        "2019-12-10-new-entry",
        "2019-11-13-sofia-workshop",
        "2019-12-05-curs-regional",
    }
    assert {row["edition"] for row in after} == {edition}
    assert by_slug["2019-12-10-new-entry"]["approved_at"] == draft["approved_at"]
    assert len(after) == 3  # the approval made here is linked, not recorded twice
    listed = run_cli("approvals", site=site)
    assert listed.returncode == 0
    assert "2019-12-10-new-entry  by Press Office (press-office)" in listed.stdout
    assert f"edition {edition}" in listed.stdout


def test_the_trail_keeps_each_approval_once_and_its_edition_in_every_database(
    database_url, site: Path
):
    import datetime as dt

    from bulletin.content.approval import parsed
    from bulletin.store import ledger
    from tests.conftest import connected

    config = load_config(site)
    entry = load_entry(config, site / SOFIA)[0]
    assert entry is not None
    approval = parsed(entry)
    assert approval is not None
    engine = connected(database_url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as db:
        ledger.record_approval(db, approval, now)
        ledger.record_approval(db, approval, now)  # approving twice records once
        ledger.prepare(db, "2026-11-29-1", [entry], [], now)
        ledger.link_edition(db, "2026-11-29-1", [approval], now)
    with engine.connect() as db:
        [recorded] = ledger.trail(db)

    assert recorded.edition_id == "2026-11-29-1"
    assert recorded.approval.approved_at == entry.approved_at
    assert recorded.approval == approval
