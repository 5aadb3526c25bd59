"""`bulletin status` and `bulletin resend`: who got an edition and who did not, and sending
again what it did not deliver."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bulletin.commands import load_site_config, print_json
from bulletin.errors import EXIT_DELIVERY, EXIT_OK, ConfigError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from bulletin.config.model import Config
    from bulletin.store.ledger import EditionRecord, Failure

STATUSES = ("sent", "failed", "skipped", "pending")
LATEST = 20  # editions listed by `bulletin status`


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help="the latest editions; for one, who got it, who did not and why"
    )
    status.add_argument("edition", nargs="?", metavar="EDITION")
    status.add_argument("--failed", action="store_true", help="the failed recipients as CSV")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)

    resend = commands.add_parser(
        "resend", help="send again what an edition did not deliver (never to those who left)"
    )
    resend.add_argument("edition", metavar="EDITION")
    resend.add_argument("--list", action="append", default=[], metavar="NAME", dest="lists")
    resend.add_argument("--partner", action="append", default=[], metavar="NAME", dest="partners")
    resend.add_argument("--dry-run", action="store_true")
    resend.add_argument("--json", action="store_true")
    resend.set_defaults(run=cmd_resend)


def cmd_status(root: Path, args: argparse.Namespace) -> int:
    from bulletin.store.database import connect

    config = load_site_config(root)
    engine = connect(config.database_url)
    try:
        if args.edition is None:
            if args.failed:
                raise ConfigError("--failed needs an EDITION: bulletin status EDITION --failed")
            return _list_editions(engine, config, args.json)
        return _one_edition(engine, config, args.edition, args)
    finally:
        engine.dispose()


def _list_editions(engine: sa.Engine, config: Config, as_json: bool) -> int:
    from bulletin.store import ledger, locks

    with engine.connect() as db:
        records = ledger.all_editions(db)[:LATEST]
        tallies = [ledger.counts(db, record.id) for record in records]
    busy = any(r.status != "done" for r in records) and locks.run_under_way(engine, config)
    rows = [
        _summary(config, record, tally, busy)
        for record, tally in zip(records, tallies, strict=True)
    ]
    if as_json:
        print_json({"editions": rows})
        return EXIT_OK
    if not rows:
        print("No edition yet: `bulletin publish` sends the first.")
        return EXIT_OK
    table: list[list[str]] = [["edition", "date", "entries", "state", *STATUSES]]
    for record, tally, row in zip(records, tallies, rows, strict=True):
        email, _, _ = _counts(tally)
        date = record.created_at.astimezone(config.site.tz).strftime("%Y-%m-%d %H:%M")
        state = str(row["state"])
        table.append([record.id, date, str(len(record.slugs)), state,
                      *(str(email[s]) for s in STATUSES)])  # fmt: skip
    header = table[0]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for line in table:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )
    return EXIT_OK


def _summary(
    config: Config, record: EditionRecord, tally: Mapping[tuple[str, str, str], int], busy: bool
) -> dict[str, object]:
    email, lists, partners = _counts(tally)
    # Not done: a run holding the site's lock is sending it; else a run died or stopped.
    state = "done" if record.status == "done" else "sending" if busy else "interrupted"
    return {
        "edition": record.id,
        "published_at": record.created_at.astimezone(config.site.tz).isoformat(),
        "entries": list(record.slugs),
        "state": state,
        "email": email,
        "lists": lists,
        "partners": partners,
    }


def _counts(
    tally: Mapping[tuple[str, str, str], int],
) -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, str]]:
    """The email counts, per list, and each partner's status (the worst of its rows)."""
    email = dict.fromkeys(STATUSES, 0)
    lists: dict[str, dict[str, int]] = {}
    partners: dict[str, str] = {}
    rank = ("failed", "pending", "skipped", "sent")
    for (channel, target, status), count in sorted(tally.items()):
        status = "pending" if status == "sending" else status
        if channel == "email":
            email[status] += count
            lists.setdefault(target, dict.fromkeys(STATUSES, 0))[status] += count
        elif target not in partners or rank.index(status) < rank.index(partners[target]):
            partners[target] = status
    return email, lists, partners


def _one_edition(engine: sa.Engine, config: Config, edition: str, args: argparse.Namespace) -> int:
    from bulletin.store import ledger, locks

    with engine.connect() as db:
        record = next((r for r in ledger.all_editions(db) if r.id == edition), None)
        if record is None:
            raise ConfigError(
                f"no edition {edition!r} in this site's ledger; `bulletin status` lists them"
            )
        tally = ledger.counts(db, edition)
        failures = ledger.failed_deliveries(db, edition)
    busy = record.status != "done" and locks.run_under_way(engine, config)
    summary = _summary(config, record, tally, busy)
    if args.failed:
        _failures_csv(failures)
        return EXIT_OK
    if args.json:
        print_json({**summary, "failures": [f.as_json() for f in failures]})
        return EXIT_OK
    _print_edition(summary, failures)
    return EXIT_OK


def _print_edition(summary: dict[str, object], failures: list[Failure]) -> None:
    email = summary["email"]
    lists = summary["lists"]
    partners = summary["partners"]
    assert isinstance(email, dict) and isinstance(lists, dict) and isinstance(partners, dict)
    entries = summary["entries"]
    assert isinstance(entries, list)
    print(
        f"Edition {summary['edition']}, published "
        f"{str(summary['published_at'])[:16].replace('T', ' ')} "
        f"({summary['state']}): {len(entries)} entries"
    )
    print("  email: " + ", ".join(f"{email[s]} {s}" for s in STATUSES))
    for name, counts in lists.items():
        print(f"    {name}: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES))
    if partners:
        print("  partners: " + ", ".join(f"{k} {v}" for k, v in partners.items()))
    if summary["state"] == "sending":
        print("  a run is sending it now: run this again to follow it")
    elif summary["state"] == "interrupted":
        print(f"  interrupted: `bulletin resend {summary['edition']}` sends what is left")
    if not failures:
        return
    print(f"Failed ({len(failures)}), by reason:")
    by_reason: dict[tuple[str, bool, str], list[Failure]] = {}
    for failure in failures:
        by_reason.setdefault((failure.reason, failure.retryable, failure.why), []).append(failure)
    for (reason, _, why), group in by_reason.items():
        print(f"  {reason}")
        print(f"    {why}")
        for failure in group[:10]:
            print(f"    {failure.target} → {failure.recipient}")
        if len(group) > 10:
            print(f"    ... and {len(group) - 10} more (--failed lists them all as CSV)")
    if any(f.retryable or f.channel == "partner" for f in failures):
        print(f"Send again what can go: bulletin resend {summary['edition']} (--dry-run first)")


def _failures_csv(failures: list[Failure]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["channel", "list", "partner", "recipient", "reason", "retryable"])
    for failure in failures:
        row = failure.as_json()
        writer.writerow(
            [row["channel"], row["list"] or "", row["partner"] or "", row["recipient"],
             row["reason"], "true" if failure.retryable else "false"]
        )  # fmt: skip


def cmd_resend(root: Path, args: argparse.Namespace) -> int:
    from bulletin.pipeline.resending import resend
    from bulletin.store.database import connect

    config = load_site_config(root)
    engine = connect(config.database_url)
    try:
        started = dt.datetime.now(dt.UTC)
        report = resend(
            config, engine, args.edition, args.lists, args.partners, dry_run=args.dry_run
        )
    finally:
        engine.dispose()
    if args.json:
        print_json(report.as_json())
    else:
        for line in report.lines():
            print(line)
        if not args.dry_run:
            took = (dt.datetime.now(dt.UTC) - started).total_seconds()
            print(f"  took {took:.1f} s")
    return EXIT_DELIVERY if report.failed else EXIT_OK
