"""The resend flow: send again what an edition did not deliver, with a report artifact.

The library's `bulletin.pipeline.resending.resend` does the work; this flow runs it under
the site's one-run slot and leaves its report in the Prefect UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bulletin.flows.publish import _engine
from bulletin.flows.sites import one_run_per_site
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.states import Failed

from bulletin.config.loading import load_config
from bulletin.errors import BulletinError
from bulletin.pipeline.resending import ResendReport, resend


@flow(name="resend", log_prints=False)
def resend_edition(
    edition: str,
    site: str = ".",
    lists: list[str] | None = None,
    partners: list[str] | None = None,
    dry_run: bool = False,
) -> ResendReport | State[Any]:
    """Send `edition` again to its failed (or still pending) deliveries: to `lists` and
    `partners` when named, else to every list and partner it went to. Never to an address
    suppressed, unsubscribed or erased since, nor after the entries' send_not_after."""
    with one_run_per_site(site):
        try:
            config = load_config(Path(site))
            report = resend(
                config, _engine(config.database_url), edition, lists or [], partners or [],
                dry_run=dry_run, wait=True,
            )  # fmt: skip
        except BulletinError as exc:
            create_markdown_artifact(
                key="resend-report",
                markdown=f"# Resend of edition {edition}\n\n**Nothing was sent: {exc}**\n",
                description="What this resend did",
            )
            return Failed(message=str(exc), data=exc)
    create_markdown_artifact(
        key="resend-report", markdown=report.markdown(), description="What this resend did"
    )
    for line in report.lines():
        get_run_logger().info(line)
    if report.failed:
        return Failed(message=report.outcome or "some deliveries still failed", data=report)
    return report
