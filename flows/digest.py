"""The weekly digest: every entry approved since the last edition, in one edition.

It sends nothing when nothing new is approved: there is never an empty edition.
"""

from __future__ import annotations

from typing import Any

from bulletin.flows.publish import Channel, run_pipeline
from prefect import flow
from prefect.client.schemas.objects import State

from bulletin.pipeline.report import Report


@flow(name="weekly-digest", log_prints=False)
def weekly_digest(
    site: str = ".",
    channels: list[Channel] | None = None,
    require_confirmation: bool = False,
    confirmation_timeout_seconds: int = 3600,
) -> Report | State[Any]:
    """Publish every approved entry not yet published, or nothing when there is none."""
    return run_pipeline(
        site,
        channels=channels,
        require_confirmation=require_confirmation,
        confirmation_timeout_seconds=confirmation_timeout_seconds,
    )
