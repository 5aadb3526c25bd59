"""`bulletin inbound`: process what came back (bounces, complaints, mailto unsubscribes) from
the IMAP mailbox, a Maildir or an mbox file; or say what given messages are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bulletin.commands import load_site_config, print_json, site_path
from bulletin.errors import EXIT_OK, ConfigError, SourceError


def register(commands: Any) -> None:
    inbound = commands.add_parser(
        "inbound", help="act on bounces, complaints and mailto unsubscribes"
    )
    actions = inbound.add_subparsers(dest="action", metavar="ACTION", required=True)
    process = actions.add_parser(
        "process", help="read the mailbox and act on the reports that prove they are ours"
    )
    where = process.add_mutually_exclusive_group()
    where.add_argument("--maildir", metavar="DIR", help="a Maildir instead of [inbound.imap]")
    where.add_argument("--mbox", metavar="FILE", help="an mbox file instead of [inbound.imap]")
    process.add_argument("--json", action="store_true")
    process.set_defaults(run=cmd_process)
    classify = actions.add_parser("classify", help="say what each message is; changes nothing")
    classify.add_argument("files", nargs="+", metavar="FILE")
    classify.add_argument("--json", action="store_true")
    classify.set_defaults(run=cmd_classify)


def cmd_process(root: Path, args: argparse.Namespace) -> int:
    from bulletin.inbound.processing import process
    from bulletin.inbound.sources import open_source
    from bulletin.store.database import connect

    config = load_site_config(root)
    maildir = site_path(root, args.maildir) if args.maildir else None
    mbox = site_path(root, args.mbox) if args.mbox else None
    engine = connect(config.database_url)
    try:
        with open_source(config, maildir, mbox) as source:
            report = process(engine, config, source)
    finally:
        engine.dispose()
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.json:
        print_json(report.as_json())
        return EXIT_OK
    print(
        f"{report.processed} message(s): {report.permanent} permanent and "
        f"{report.temporary} temporary bounce(s), {report.complaints} complaint(s), "
        f"{report.unsubscribes} unsubscribe(s), {report.auto_replies} auto-reply(ies), "
        f"{report.unmatched} unmatched, {report.errors} error(s)"
    )
    for address in report.suppressed:
        print(f"suppressed: {address}")
    for address in report.unsubscribed:
        print(f"unsubscribed: {address}")
    return EXIT_OK


def cmd_classify(root: Path, args: argparse.Namespace) -> int:
    from bulletin.inbound.classify import Classification, classify

    results: list[dict[str, Any]] = []
    for name in args.files:
        path = site_path(root, name)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigError(f"{name}: no such file") from exc
        except OSError as exc:
            raise SourceError(f"{name}: cannot be read ({exc.strerror})") from exc
        try:
            found = classify(data)
        except Exception as exc:  # a hostile message is reported, and the others still are
            found = Classification("other", detail=f"unreadable: {type(exc).__name__}")
        results.append(found.as_json(name))
    if args.json:
        print_json(results)
        return EXIT_OK
    for item in results:
        about = item["recipient"] or "unknown recipient"
        extra = ""
        if item["kind"] == "bounce":
            extent = {True: "permanent", False: "temporary", None: "unknown"}[item["permanent"]]
            extra = f" {item['status'] or 'no status code'} ({extent})"
        print(f"{item['file']}: {item['kind']}{extra} — {about}")
    return EXIT_OK
