"""Timed entries: those whose `publish_at` has come and whose `send_not_after` has not."""

from __future__ import annotations

from typing import Any

from bulletin.flows.publish import Channel, run_pipeline
from prefect import flow
from prefect.client.schemas.objects import State

from bulletin.pipeline.report import Report


@flow(name="timed-entries", log_prints=False)
def timed_entries(site: str = ".", channels: list[Channel] | None = None) -> Report | State[Any]:
    """Publish the approved entries that are due now, in one edition; nothing when none is."""
    return run_pipeline(site, channels=channels, timed=True)
