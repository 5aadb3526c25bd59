"""The publish flow: bulletin's pipeline as Prefect tasks, each a thin wrapper of the core."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from bulletin import progress_sink
from bulletin import publish as core
from bulletin.config import Config, load_config
from bulletin.database import connect
from bulletin.errors import BulletinError
from bulletin.report import Report
from bulletin.transports import factory, partners_from_config
from bulletin.writers import write_public

P = ParamSpec("P")
R = TypeVar("R")


def _user_errors_returned(fn: Callable[P, R]) -> Callable[P, R | BulletinError]:
    """A problem in the user's content or config is returned, not raised: it is theirs to
    fix, so it fails the run with its message but logs no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BulletinError:
        try:
            return fn(*args, **kwargs)
        except BulletinError as exc:
            return exc

    return wrapper


@task(name="plan edition", cache_policy=NO_CACHE)
@_user_errors_returned
def plan_edition(site: str, entries: list[str], record: bool) -> tuple[Config, core.Plan]:
    config = load_config(Path(site))
    return config, core.plan(config, connect(config.database_url), entries, record=record)


@task(name="record edition", cache_policy=NO_CACHE)
def record_edition(config: Config, edition: core.Plan) -> int:
    return core.record(connect(config.database_url), config, edition)


@task(name="write public", cache_policy=NO_CACHE)
def write_site(config: Config, edition: core.Plan) -> list[str]:
    return write_public(config, edition.files)


@task(name="deliver", cache_policy=NO_CACHE)
@_user_errors_returned
def deliver(config: Config, edition: core.Plan) -> tuple[dict, list]:
    logger = get_run_logger()
    step = 1000

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            logger.info("delivered %d of %d", done, total)
        progress_sink.report(done, total)

    engine = connect(config.database_url)
    core.deliver(
        engine,
        config,
        edition,
        factory(config),
        progress,
        partner_transport=partners_from_config(config),
    )
    return core.finish(engine, edition), core.failures(engine, edition)


@flow(name="publish", log_prints=False)
def publish(site: str = ".", entries: list[str] | None = None, dry_run: bool = False) -> Report:
    """Publish approved entries: render, check the EU notice, write public/, deliver once."""
    planned = plan_edition(site, entries or [], record=not dry_run)
    if isinstance(planned, BulletinError):
        return Failed(message=str(planned), data=planned)
    config, edition = planned
    report = Report(
        edition.edition_id, [e.slug for e in edition.entries], notes=edition.notes,
        dry_run=dry_run,
    )  # fmt: skip
    if dry_run:
        report.would_send = core.would_send(connect(config.database_url), config, edition)
        return report
    if not edition.edition_id:
        return report
    record_edition(config, edition)
    report.public = write_site(config, edition)
    delivered = deliver(config, edition)
    if isinstance(delivered, BulletinError):
        return Failed(message=str(delivered), data=delivered)
    tally, report.failures = delivered
    report.add_tally(tally)
    if config.delivery.transport == "outbox":
        report.outbox = f"outbox/email/{edition.edition_id}/"
    create_markdown_artifact(
        key="publish-report", markdown=report.markdown(), description="What this run published"
    )
    if report.failed:
        return Failed(message="some deliveries failed for good", data=report)
    return report
