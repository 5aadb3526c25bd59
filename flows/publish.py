"""The publish flow: bulletin's pipeline as Prefect tasks, each a thin wrapper of the core."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from bulletin import publish as core
from bulletin.config import Config, load_config
from bulletin.database import connect
from bulletin.errors import BulletinError
from bulletin.report import Report
from bulletin.transports import from_config
from bulletin.writers import write_public


@task(name="plan edition", cache_policy=NO_CACHE)
def plan_edition(config: Config, entries: list[str], record: bool) -> core.Plan:
    return core.plan(config, connect(config.database_url), entries, record=record)


@task(name="record edition", cache_policy=NO_CACHE)
def record_edition(config: Config, edition: core.Plan) -> int:
    return core.record(connect(config.database_url), config, edition)


@task(name="write public", cache_policy=NO_CACHE)
def write_site(config: Config, edition: core.Plan) -> list[str]:
    return write_public(config, edition.files)


@task(name="deliver", cache_policy=NO_CACHE)
def deliver(config: Config, edition: core.Plan) -> dict:
    logger = get_run_logger()
    step = 1000

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            logger.info("delivered %d of %d", done, total)

    engine = connect(config.database_url)
    core.deliver(engine, config, edition, from_config(config), progress)
    return core.finish(engine, edition)


@flow(name="publish", log_prints=False)
def publish(site: str = ".", entries: list[str] | None = None, dry_run: bool = False) -> Report:
    """Publish approved entries: render, check the EU notice, write public/, deliver once."""
    try:
        config = load_config(Path(site))
        edition = plan_edition(config, entries or [], record=not dry_run)
        report = Report(
            edition.edition_id,
            [e.slug for e in edition.entries],
            notes=edition.notes,
            dry_run=dry_run,
        )
        if dry_run or not edition.edition_id:
            if dry_run:
                with connect(config.database_url).connect() as db:
                    for _channel, target, _ in core.recipients(db, config, edition):
                        report.would_send[target] = report.would_send.get(target, 0) + 1
            return report
        record_edition(config, edition)
        report.public = write_site(config, edition)
        report.add_tally(deliver(config, edition))
        if config.delivery.transport == "outbox":
            report.outbox = f"outbox/email/{edition.edition_id}/"
    except BulletinError as exc:
        # A content or configuration problem is the user's to fix, not a crash: the run
        # fails with the problems, and the caller prints them without a traceback.
        return Failed(message=str(exc), data=exc)
    return report
