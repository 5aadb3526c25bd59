"""`bulletin approve`, `bulletin approvals` and `bulletin approvers add`: signed approvals,
their audit trail, and the approvers' keys."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulletin.commands import load_site_config, print_json, site_path
from bulletin.errors import EXIT_OK, Problem

if TYPE_CHECKING:
    from bulletin.config.model import Config
    from bulletin.content.approval import Approval
    from bulletin.store.ledger import Recorded


def register(commands: Any) -> None:
    approve = commands.add_parser("approve", help="sign an approval into each entry")
    approve.add_argument("paths", nargs="+", metavar="PATH")
    approve.add_argument("--by", required=True, metavar="NAME", help="an approver's name or ID")
    approve.add_argument(
        "--key", type=Path, metavar="FILE", help="the approver's private key (default: their key "
        "in BULLETIN_APPROVER_KEYS or ~/.config/bulletin/approvers/)",
    )  # fmt: skip
    approve.set_defaults(run=cmd_approve)

    trail = commands.add_parser("approvals", help="the audit trail: who approved what, when")
    trail.add_argument("slug", nargs="?", metavar="SLUG", help="only this entry's approvals")
    trail.add_argument("--json", action="store_true")
    trail.set_defaults(run=cmd_approvals)

    approvers = commands.add_parser("approvers", help="approvers' signing keys")
    actions = approvers.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help="make an approver's key on this machine and list them in bulletin.toml"
    )
    add.add_argument("id", metavar="ID", help="a short name such as press-office")
    add.add_argument("--name", required=True, metavar="NAME", help='such as "Press Office"')
    approvers.set_defaults(run=cmd_approvers)


def cmd_approve(root: Path, args: argparse.Namespace) -> int:
    from bulletin.compliance import near_misses
    from bulletin.content.approval import approve
    from bulletin.content.approvers import signing_key
    from bulletin.content.entries import load_entry
    from bulletin.errors import ContentError
    from bulletin.store import ledger
    from bulletin.store.database import connect

    config = load_site_config(root)
    signer = signing_key(config, args.by, args.key)
    loaded = []
    problems: list[Problem] = []
    for name in args.paths:
        path = site_path(root, name)
        if not path.is_file():
            problems.append(Problem(name, "file-missing", "no such entry file"))
            continue
        entry, found = load_entry(config, path)
        problems += found
        if entry is not None:
            problems += near_misses(config, [entry])
            loaded.append(entry)
    if problems:
        raise ContentError("nothing was approved; fix the problems first", problems)
    engine = connect(config.database_url)  # a database that cannot open stops us here
    now = dt.datetime.now(config.site.tz).replace(microsecond=0)
    made = []
    try:
        with engine.begin() as db:
            for entry in loaded:
                approval = approve(entry, signer, now)
                ledger.record_approval(db, approval, now)
                made.append((entry, approval))
                print(f"approved {entry.display} by {signer.name}")
    finally:
        engine.dispose()
    if os.environ.get("PREFECT_API_URL"):
        _announce_approvals(config, made)
    return EXIT_OK


def _announce_approvals(config: Config, made: list[tuple[Any, Approval]]) -> None:
    """Prefect events for the approvals (a deployment may publish on them); the approvals
    stand whether or not the server hears of them."""
    from bulletin.orchestration import emit_approvals

    approvals = [(a.slug, e.title, a.approved_by, a.content_hash) for e, a in made]
    try:
        emit_approvals(config.site.title, approvals)
    except Exception as exc:  # the server is down or unreachable: say so, carry on
        print(
            f"warning: approved, but the Prefect server at {os.environ['PREFECT_API_URL']} "
            f"was not told ({type(exc).__name__}); a trigger waiting for the approval will "
            "not fire",
            file=sys.stderr,
        )


def cmd_approvals(root: Path, args: argparse.Namespace) -> int:
    from bulletin.store import ledger
    from bulletin.store.database import connect

    config = load_site_config(root)
    engine = connect(config.database_url)
    try:
        with engine.connect() as db:
            recorded = ledger.trail(db, args.slug)
    finally:
        engine.dispose()
    rows = [_trail_row(config, item) for item in recorded]
    if args.json:
        print_json({"approvals": rows})
        return EXIT_OK
    if not rows:
        print("No approvals recorded yet.")
    for item, row in zip(recorded, rows, strict=True):
        when = item.approval.approved_at.astimezone(config.site.tz)
        edition = f"edition {item.edition_id}" if item.edition_id else "not published yet"
        key = "" if row["verified"] else "  [signature does not verify with bulletin.toml]"
        print(
            f"{when:%Y-%m-%d %H:%M}  {row['slug']}  by {row['approved_by']} "
            f"({row['approver']})  {item.approval.content_hash[:19]}…  {edition}{key}"
        )
    return EXIT_OK


def _trail_row(config: Config, item: Recorded) -> dict[str, object]:
    from bulletin.content.approval import approval_message
    from bulletin.content.approvers import verifies

    a = item.approval
    approver = config.approvers.get(a.approver)
    message = approval_message(a.slug, a.content_hash, a.approver, a.approved_by, a.approved_at)
    verified = (
        approver is not None
        and approver.name == a.approved_by
        and verifies(approver, message, a.signature)
    )
    return {
        "slug": a.slug,
        "path": a.path,
        "approved_by": a.approved_by,
        "approver": a.approver,
        "approved_at": a.approved_at.isoformat(),
        "hash": a.content_hash,
        "edition": item.edition_id,
        "verified": verified,
    }


def cmd_approvers(root: Path, args: argparse.Namespace) -> int:
    from bulletin.content.approvers import create

    config = load_site_config(root)
    existing = config.approvers.get(args.id)
    name = args.name.strip()
    path, public_key = create(args.id)
    print(f"Private key written to {path} (keep it there, on this machine only; back it up).")
    table = f'[approvers.{args.id}]\nname = "{_toml_text(name)}"\npublic_key = "{public_key}"\n'
    toml = config.root / "bulletin.toml"
    if existing is None:
        with toml.open("a", encoding="utf-8") as handle:
            handle.write("\n" + table)
        print(f"Added to {toml}:\n\n{table}")
        print(f"Commit bulletin.toml; from now on: bulletin approve PATH --by {args.id}")
    else:
        print(
            f"bulletin.toml lists approvers.{args.id} already, with another key; to use this "
            f"new one, replace its public_key with\n\n{public_key}\n\n(approvals signed with "
            "the old key then need approving again)"
        )
    return EXIT_OK


def _toml_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
