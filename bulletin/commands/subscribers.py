"""`bulletin subscribers import|export`: bulk subscriber management, and the proof of
consent of a list (`export --consent`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from bulletin.commands import load_site_config, site_path
from bulletin.errors import EXIT_CONTENT, EXIT_OK


def register(commands: Any) -> None:
    """Add `subscribers import CSV --list NAME [--by NAME]` and `subscribers export --list
    NAME [--consent]`."""
    subs = commands.add_parser("subscribers", help="import or export a list's subscribers")
    actions = subs.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser("import", help="add or update subscribers from a CSV file")
    imp.add_argument("csv", metavar="CSV")
    imp.add_argument("--list", required=True, metavar="NAME")
    imp.add_argument(
        "--by",
        metavar="NAME",
        help="who imports, kept in each new subscriber's consent record (default: your login name)",
    )
    exp = actions.add_parser("export", help="write a list's subscribers as CSV to stdout")
    exp.add_argument("--list", required=True, metavar="NAME")
    exp.add_argument(
        "--consent",
        action="store_true",
        help="the list's consent records instead: how, when and under which text each "
        "address consented, and when it withdrew",
    )
    subs.set_defaults(run=cmd_subscribers)


def cmd_subscribers(root: Path, args: argparse.Namespace) -> int:
    from bulletin.store import consent
    from bulletin.store.database import connect
    from bulletin.store.subscribers import export_csv, import_csv, subscriber_list

    config = load_site_config(root)
    engine = connect(config.database_url)
    if args.action == "export":
        if args.consent:
            subscriber_list(config, args.list)
            sys.stdout.write(consent.export_csv(engine, args.list))
        else:
            sys.stdout.write(export_csv(engine, config, args.list))
        return EXIT_OK
    path = site_path(root, args.csv)
    if not path.is_file():
        from bulletin.errors import ConfigError

        raise ConfigError(f"{args.csv}: no such file")
    by = args.by or _login()
    report = import_csv(engine, config, path, args.list, by=by)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    print(
        f"{args.list}: {report.added} added, {report.updated} updated, "
        f"{len(report.problems)} bad row(s) skipped"
    )
    return EXIT_CONTENT if report.problems else EXIT_OK


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"
