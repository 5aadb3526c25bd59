"""Processes what came back (bounces, complaints, mailto unsubscribes): the site's IMAP
mailbox by default, or a Maildir or mbox file; the run's report is an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from bulletin.config import load_config
from bulletin.inbound.processing import InboundReport, process
from bulletin.inbound.sources import open_source
from bulletin.store.database import connect


@task(name="process inbound mail", cache_policy=NO_CACHE)
def process_source(site: Path, maildir: str | None, mbox: str | None) -> InboundReport:
    """Each message not done yet, once. No retries: the next scheduled run takes up what a
    mailbox that could not be reached left."""
    config = load_config(site)
    if not (maildir or mbox) and (config.inbound is None or config.inbound.imap is None):
        # The deployment runs for every site; one without a mailbox has nothing to read.
        get_run_logger().info("no [inbound.imap] in bulletin.toml: nothing to read")
        return InboundReport()
    engine = connect(config.database_url)
    try:
        with open_source(
            config, Path(maildir) if maildir else None, Path(mbox) if mbox else None
        ) as source:
            return process(engine, config, source)
    finally:
        engine.dispose()


def _markdown(report: InboundReport) -> str:
    data = report.as_json()
    rows = [
        ("processed", data["processed"]),
        ("permanent bounces", report.permanent),
        ("temporary bounces", report.temporary),
        ("complaints", report.complaints),
        ("unsubscribes", report.unsubscribes),
        ("auto-replies (ignored)", report.auto_replies),
        ("unmatched (not proven ours: nothing done)", report.unmatched),
        ("errors (left in place)", report.errors),
    ]
    lines = ["# Inbound mail", "", "| | |", "|---|---:|"]
    lines += [f"| {name} | {count} |" for name, count in rows]
    for title, addresses in (
        ("Suppressed", report.suppressed),
        ("Unsubscribed", report.unsubscribed),
    ):
        if addresses:
            lines += ["", f"## {title}", "", *(f"- {a}" for a in addresses)]
    if report.problems:
        lines += ["", "## Errors", "", *(f"- {p}" for p in report.problems)]
    return "\n".join(lines) + "\n"


@flow(name="process-inbound", log_prints=False)
def process_inbound(
    site: str = ".", maildir: str | None = None, mbox: str | None = None
) -> dict[str, Any]:
    """Read the mailbox, act on the reports that prove they are ours, report the run."""
    report = process_source(Path(site), maildir, mbox)
    create_markdown_artifact(
        key="inbound-report", markdown=_markdown(report), description="What came back"
    )
    return report.as_json()
