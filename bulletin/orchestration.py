"""Runs bulletin's flows under Prefect from the command line, quietly and with progress."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from bulletin.errors import BulletinError
from bulletin.report import Report


def prepare_prefect_environment(verbose: bool = False) -> None:
    """Settings that must be in place before Prefect is imported."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    if not verbose:
        # The run's logs still reach the Prefect API and UI; the terminal gets the summary.
        os.environ.setdefault("PREFECT_LOGGING_TO_CONSOLE", "false")


def run_publish(
    site: Path,
    slugs: Sequence[str],
    *,
    dry_run: bool = False,
    verbose: bool = False,
    progress: bool = True,
) -> Report:
    """Run the publish flow on `site`; raise the BulletinError that stopped it, if any."""
    prepare_prefect_environment(verbose)
    from flows.publish import publish

    if not verbose:
        logging.getLogger("prefect").setLevel(logging.WARNING)
    state = publish(site=str(site), entries=list(slugs), dry_run=dry_run, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BulletinError):
        raise result
    if isinstance(result, BaseException):
        raise result
    return result
