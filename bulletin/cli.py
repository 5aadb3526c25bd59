"""The `bulletin` command line: parses arguments, runs one command, maps errors to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bulletin.commands import load_site_config, print_json, site_path
from bulletin.errors import (
    EXIT_CONTENT,
    EXIT_DELIVERY,
    EXIT_OK,
    EXIT_USAGE,
    BulletinError,
    Problem,
    in_order,
)

#: The commands defined here; each module of `bulletin.commands` registers others.
CORE_COMMANDS = ("check", "build", "publish", "serve", "partners")
#: The module of `bulletin.commands` that registers each of the other commands.
FAMILIES = {
    "approve": "approvals",
    "approvals": "approvals",
    "approvers": "approvals",
    "inbound": "inbound",
    "status": "status",
    "resend": "status",
    "server": "server",
    "subscribers": "subscribers",
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser(_command_of(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    root = Path(args.site)
    try:
        status: int = args.run(root, args)
        return status
    except BulletinError as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"error: {type(exc).__name__}: {exc} (run with --verbose for details)", file=sys.stderr
        )
        return EXIT_DELIVERY if args.command in ("publish", "resend") else EXIT_CONTENT
    finally:
        gc.unfreeze()  # what `_importing` froze


def _fail(args: argparse.Namespace, exc: BulletinError) -> int:
    if args.verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if getattr(args, "json", False):
        print_json(
            {"ok": False, "error": str(exc), "problems": [p.as_json() for p in exc.problems]}
        )
    else:
        _print_problems(exc.problems, str(exc))
    return exc.exit_status


def _print_problems(problems: list[Problem], headline: str) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems or headline not in {str(p) for p in problems}:
        print(("error: " if not problems else "") + headline, file=sys.stderr)


@contextlib.contextmanager
def _importing() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a command imports what it needs, and
    what was imported then moved out of its reach (gc.freeze): importing makes objects by
    the ten thousand (modules, classes, functions), which live as long as the command, and
    each collection would walk them again, for nothing. Collections find the command's own
    garbage as before; `main` gives the collector everything back when the command ends
    (for a caller that goes on in the same process)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def cmd_check(root: Path, args: argparse.Namespace) -> int:
    with _importing():
        from bulletin.compliance import unsourced_texts
        from bulletin.errors import ConfigError
        from bulletin.pipeline.planning import check_entries

    try:
        config = load_site_config(root)
    except ConfigError as exc:
        if args.json:
            print_json(
                {
                    "ok": False,
                    "problems": [p.as_json() for p in exc.problems]
                    or [{"path": "bulletin.toml", "code": "config", "message": str(exc)}],
                }
            )
            return exc.exit_status
        raise
    paths = [site_path(root, p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"{missing[0]}: no such file or folder")
    warnings: list[str] = []
    rendered: dict[str, bytes] = {}
    entries, problems = check_entries(config, paths, warnings, rendered)
    if args.browser:
        from bulletin.accessibility.browser import axe_check, axe_problems, html_names, staged

        with staged(config, rendered) as public:
            problems += axe_problems(axe_check(public, html_names(rendered)))
    problems = in_order(problems)
    warnings += [str(w) for w in unsourced_texts(config)]
    if args.json:
        print_json(
            {
                "ok": not problems,
                "problems": [p.as_json() for p in problems],
                "warnings": warnings,
            }
        )
    else:
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        files = len({e.slug for e in entries})
        verdict = f"{len(problems)} problem(s)" if problems else "no problems"
        print(f"Checked {files} entries: {verdict}.", file=sys.stderr if problems else sys.stdout)
    return EXIT_CONTENT if problems else EXIT_OK


def cmd_build(root: Path, args: argparse.Namespace) -> int:
    from bulletin.pipeline.planning import plan, preview_files
    from bulletin.pipeline.report import Report
    from bulletin.pipeline.write import clear_previews, write_public
    from bulletin.store.database import connect

    config = load_site_config(root)
    # A site without public/ has it written while it is rendered (see pipeline.staging).
    edition = plan(config, connect(config.database_url), record=False, stage=True)
    files = {**edition.files, **preview_files(edition)}
    clear_previews(config)
    report = Report(edition.edition_id, [e.slug for e in edition.entries], notes=edition.notes)
    report.public = write_public(config, files, edition.inputs, edition.staged)
    if args.json:
        print_json(report.as_json())
    else:
        for note in report.notes:
            if "[a11y-" in note:  # a rule the site downgraded to a warning, with its reason
                print(f"warning: {note}", file=sys.stderr)
        pending = (
            f"next edition: {len(report.entries)} entries, previews in public/preview/"
            if report.entries
            else "no approved entry is waiting"
        )
        print(f"Built public/ ({len(report.public)} files changed); {pending}.")
    return EXIT_OK


def cmd_publish(root: Path, args: argparse.Namespace) -> int:
    from bulletin import orchestration
    from bulletin.pipeline import ahead
    from bulletin.pipeline.progress import progress_bar
    from bulletin.pipeline.report import Report
    from bulletin.store.database import connect
    from bulletin.store.locks import site_run

    config = load_site_config(root)
    engine = connect(config.database_url)
    # Another run of the site under way: say so at once (exit 4) rather than wait, or
    # take its edition for an interrupted one. The flow below runs under this lock.
    with site_run(engine, config, "publish", wait=False):
        # The plan is made beside Prefect's start, by a second process (see pipeline.ahead).
        ahead.start(config, args.slugs, not args.dry_run, args.verbose)
        try:
            with _importing():  # Prefect and the flows: a few hundred thousand objects
                orchestration.start_server(args.verbose)
                from bulletin.flows.publish import publish

            with progress_bar(enabled=not args.json):
                report = orchestration.run_flow(
                    publish, Report, site=str(root), entries=list(args.slugs), dry_run=args.dry_run
                )
        finally:
            ahead.stop()
    if args.json:
        print_json(report.as_json())
    else:
        for line in report.lines():
            print(line)
    return EXIT_DELIVERY if report.failed else EXIT_OK


def cmd_serve(root: Path, args: argparse.Namespace) -> int:
    import contextlib

    from bulletin.web.app import serve

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how a server stops
        serve(load_site_config(root), args.host, args.port, dev=args.dev)
    return EXIT_OK


def cmd_partners(root: Path, args: argparse.Namespace) -> int:
    from bulletin.config.secrets import partner_secret
    from bulletin.delivery.webhooks import WebhookTransport
    from bulletin.errors import ConfigError, WebhookError
    from bulletin.render.payloads import ping

    config = load_site_config(root)
    partner = config.partners.get(args.name)
    if partner is None:
        known = ", ".join(sorted(config.partners)) or "none: add a [partners.NAME] table"
        raise ConfigError(f"no partner {args.name!r} in bulletin.toml; known partners: {known}")
    if not partner.webhook:
        raise ConfigError(
            f"partners.{args.name} is an email partner ({partner.email}); `partners test` "
            "pings webhooks only"
        )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = ping(config, args.name, now)
    msg_id = f"ping_{now.strftime('%Y%m%dT%H%M%S')}"
    start = time.perf_counter()
    with WebhookTransport(
        args.name, partner.webhook, partner_secret(partner, args.name), timeout=partner.timeout
    ) as transport:
        try:
            reply = transport.post(body, msg_id)
            status: int | None = reply.status
            ok, detail = True, reply.excerpt
        except WebhookError as exc:
            status, ok, detail = exc.status, False, str(exc)
    latency = (time.perf_counter() - start) * 1000
    if args.json:
        print_json(
            {"partner": args.name, "url": partner.webhook_shown, "ok": ok, "status": status,
             "latency_ms": round(latency, 1), "detail": detail}
        )  # fmt: skip
    elif ok:
        print(f"{args.name}: {partner.webhook_shown} answered HTTP {status} in {latency:.0f} ms")
    else:
        print(f"{args.name}: {detail} (after {latency:.0f} ms)", file=sys.stderr)
    return EXIT_OK if ok else EXIT_DELIVERY


def _command_of(argv: Sequence[str]) -> str | None:
    """The command a command line names, when it plainly names a known one after the global
    options; None otherwise (no command, help, an abbreviated option, a mistyped command)."""
    position = 0
    while position < len(argv):
        token = argv[position]
        if token in ("-v", "--verbose") or token.startswith("--site="):
            position += 1
        elif token == "--site":  # noqa: S105 -- an option, not a password
            position += 2
        else:
            known = token in CORE_COMMANDS or token in FAMILIES
            return token if known else None
    return None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `command`, only that command's part of it (and only its
    family's module imported): what parsing a command line naming it needs. Everything
    else about it (the global options, usage, messages) is the same."""

    def wanted(name: str) -> bool:
        return command is None or command == name

    parser = argparse.ArgumentParser(
        prog="bulletin", description="Publish approved entries as email, feeds and a web archive."
    )
    parser.add_argument(
        "--site",
        default=os.environ.get("BULLETIN_SITE", "."),
        help="the site folder (default: the current folder)",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="show tracebacks and the workflow engine's logs",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    if wanted("check"):
        check = commands.add_parser("check", help="validate config and entries; sends nothing")
        check.add_argument("paths", nargs="*", metavar="PATH")
        check.add_argument("--json", action="store_true")
        check.add_argument(
            "--browser",
            action="store_true",
            help="also run axe-core in Chromium (light and dark, 375 and 1200 px)",
        )
        check.set_defaults(run=cmd_check)

    if wanted("build"):
        build = commands.add_parser(
            "build", help="render public/ and email previews; sends nothing"
        )
        build.add_argument("--json", action="store_true")
        build.set_defaults(run=cmd_build)

    if wanted("publish"):
        publish = commands.add_parser("publish", help="run the publish flow")
        publish.add_argument("slugs", nargs="*", metavar="SLUG")
        publish.add_argument("--dry-run", action="store_true")
        publish.add_argument("--json", action="store_true")
        publish.set_defaults(run=cmd_publish)

    if wanted("serve"):
        serve = commands.add_parser(
            "serve", help="the subscriber web service: subscribe, confirm, unsubscribe, archive"
        )
        serve.add_argument("--port", type=int, default=8000, metavar="N", help="default: 8000")
        serve.add_argument(
            "--host", default="127.0.0.1", metavar="H", help="default: 127.0.0.1 (behind a proxy)"
        )
        serve.add_argument(
            "--dev",
            action="store_true",
            help="development mode: create the site's secret key if it has none",
        )
        serve.set_defaults(run=cmd_serve)

    if wanted("partners"):
        partners = commands.add_parser("partners", help="check partner webhooks")
        partner_actions = partners.add_subparsers(dest="action", metavar="ACTION", required=True)
        test = partner_actions.add_parser(
            "test", help="send a signed ping to a partner's webhook; show its status and latency"
        )
        test.add_argument("name", metavar="NAME")
        test.add_argument("--json", action="store_true")
        partners.set_defaults(run=cmd_partners)

    # Command families in bulletin.commands: one `register` each.
    for family in dict.fromkeys(FAMILIES.values()):
        if command is None or FAMILIES.get(command) == family:
            importlib.import_module(f"bulletin.commands.{family}").register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
