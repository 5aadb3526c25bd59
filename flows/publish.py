"""The publish flows: bulletin's pipeline as Prefect tasks, each a thin wrapper of the core.

`publish` runs on demand; `weekly_digest` (flows/digest.py) and `timed_entries`
(flows/timed.py) are the same pipeline on a schedule. deployments/prefect.yaml holds the
schedules; every parameter is checked against the signatures here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

import sqlalchemy as sa
from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Cancelled, Failed, State
from pydantic import Field

from bulletin import pipeline as core
from bulletin.config import Config, load_config
from bulletin.delivery.transports import factory, from_config, partners_from_config
from bulletin.errors import BulletinError, ConfigError
from bulletin.mail.notify import failure_notice
from bulletin.pipeline import progress as progress_sink
from bulletin.pipeline.report import Report
from bulletin.pipeline.write import write_public
from bulletin.store import ledger, locks
from bulletin.store.database import connect

P = ParamSpec("P")
R = TypeVar("R")

Channel = Literal["email", "partners"]
CONFIRMATION_KEY = "confirm-edition"


class Confirmation(RunInput):
    """The answer to a publish that waits for confirmation: send it, and who says so."""

    approve: bool
    name: str = Field(min_length=1)


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


@functools.cache
def _engine(url: str) -> sa.Engine:
    """One engine per database and process: batch tasks on a worker share its pool."""
    return connect(url)


@task(name="plan edition", cache_policy=NO_CACHE)
@_user_errors_returned
def plan_edition(
    site: str, entries: list[str], record: bool, channels: list[str], timed: bool = False
) -> tuple[Config, core.Plan]:
    config = load_config(Path(site))
    engine = _engine(config.database_url)
    now = dt.datetime.now(dt.UTC)
    notes: list[str] = []
    if timed:
        entries, notes = core.due_slugs(config, engine, now)
        with engine.connect() as db:
            resuming = ledger.unfinished(db) is not None
        if not entries and not resuming:
            notes.append("no timed entry is due: nothing to send")
            return config, core.Plan(None, [], now, notes=notes)
    edition = core.plan(config, engine, entries, now, record=record)
    edition.notes = notes + edition.notes
    core.restrict(edition, channels)
    return config, edition


@task(name="record edition", cache_policy=NO_CACHE)
def record_edition(config: Config, edition: core.Plan) -> int:
    return core.record(_engine(config.database_url), config, edition)


@task(name="write public", cache_policy=NO_CACHE)
def write_site(config: Config, edition: core.Plan) -> list[str]:
    return write_public(config, edition.files)


@task(name="preview edition", cache_policy=NO_CACHE)
def preview(config: Config, edition: core.Plan) -> dict[str, int]:
    """Email previews in public/preview/, and what the comms person reviews in the UI."""
    write_public(config, core.email_previews(edition))
    counts = core.would_send(_engine(config.database_url), config, edition)
    for key in edition.emails:
        create_link_artifact(
            key=f"preview-{key}".lower().replace("_", "-"),
            link=f"{config.site.url}preview/{key}/email.html",
            link_text=f"The email of edition {edition.edition_id} to {key}",
            description=f"public/preview/{key}/email.html",
        )
    create_link_artifact(
        key="edition-page",
        link=f"{config.site.url}{edition.edition_id}/",
        link_text=f"Edition {edition.edition_id} on the web (published when confirmed)",
    )
    table = [{"list or partner": target, "recipients": n} for target, n in counts.items()]
    create_table_artifact(
        key="recipients", table=table, description=f"Who edition {edition.edition_id} goes to"
    )
    return counts


def _send(config: Config, edition: core.Plan, batch: ledger.Batch | None = None) -> None:
    logger = get_run_logger()
    step = 1000
    label = f"batch {batch.number + 1}: " if batch else ""

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            logger.info("%sdelivered %d of %d", label, done, total)
        progress_sink.report(done, total)

    core.deliver(
        _engine(config.database_url),
        config,
        edition,
        factory(config),
        progress,
        # A batch is email only: its machine needs no partner secrets.
        partner_transport=None if batch else partners_from_config(config),
        batch=batch,
    )


@task(name="deliver", cache_policy=NO_CACHE)
@_user_errors_returned
def deliver(config: Config, edition: core.Plan) -> None:
    _send(config, edition)


@task(name="deliver to partners", cache_policy=NO_CACHE)
@_user_errors_returned
def deliver_partners(config: Config, edition: core.Plan) -> None:
    core.deliver_partners(
        _engine(config.database_url),
        config,
        edition,
        factory(config),
        partner_transport=partners_from_config(config),
    )


@task(name="deliver batch", cache_policy=NO_CACHE)
@_user_errors_returned
def deliver_batch(config: Config, edition: core.Plan, batch: ledger.Batch) -> None:
    _send(config, edition, batch)


@flow(name="deliver in batches", validate_parameters=False)  # rendered values, not user input
def deliver_batches(
    config: Config, edition: core.Plan, batches: list[ledger.Batch]
) -> BulletinError | None:
    """Every batch as a task on the configured task runner (a Dask cluster)."""
    futures = [deliver_batch.submit(config, edition, batch) for batch in batches]
    problems = [f.result() for f in futures]
    return next((p for p in problems if isinstance(p, BulletinError)), None)


def _dask_runner(config: Config):
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ConfigError(
            'delivery.task_runner = "dask" needs prefect-dask; install bulletin[dask]'
        ) from exc
    if config.delivery.dask_address:
        return DaskTaskRunner(address=config.delivery.dask_address)
    # The local cluster's workers report to this run's Prefect server, even a temporary one.
    context = FlowRunContext.get()
    env = {"PREFECT_API_URL": str(context.client.api_url)} if context else {}
    workers = config.delivery.dask_workers
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "env": env,
                        "dashboard_address": None}
    )  # fmt: skip


@task(name="tally", cache_policy=NO_CACHE)
def tally(config: Config, edition: core.Plan) -> tuple[dict, list]:
    engine = _engine(config.database_url)
    return core.finish(engine, edition), core.failures(engine, edition)


def _deliver(config: Config, edition: core.Plan) -> BulletinError | None:
    """Send the edition: in this process (threads), or in batches on a Dask cluster."""
    if config.delivery.task_runner != "dask":
        return deliver(config, edition)
    engine = _engine(config.database_url)
    # Only the driver holds the edition's lock; the batches take one lock each, and the
    # partners go from here, beside them.
    with locks.delivery_lock(engine, config):
        partners = deliver_partners.submit(config, edition) if edition.partners else None
        with engine.connect() as db:
            batches = ledger.batches(db, edition.edition_id, config.delivery.batch_size)
        problem = None
        if batches:
            slim = dataclasses.replace(edition, files={})  # public/ is written already
            runner = _dask_runner(config)
            get_run_logger().info("sending %d batches on %s", len(batches), runner)
            problem = deliver_batches.with_options(task_runner=runner)(config, slim, batches)
        partner_problem = partners.result() if partners is not None else None
        return problem or partner_problem


def _leave_report(report: Report) -> None:
    create_markdown_artifact(
        key="publish-report", markdown=report.markdown(), description="What this run published"
    )


def _notify(config: Config, report: Report, headline: str) -> None:
    """Tell the comms address; a notice that cannot go out is logged, not raised."""
    if not config.delivery.notify:
        return
    try:
        with from_config(config) as transport:
            transport.send(failure_notice(config, report.edition, headline, report.markdown()))
    except Exception as exc:  # the run has failed already; this must not hide why
        get_run_logger().error("could not notify %s: %s", config.delivery.notify, exc)
    else:
        get_run_logger().info("notified %s", config.delivery.notify)


def _confirmed(edition: core.Plan, timeout: int) -> Confirmation | None:
    description = (
        f"Edition {edition.edition_id}: {len(edition.entries)} entries. Check the preview "
        "and the recipients in this run's artifacts, then approve (or not) with your name."
    )
    try:
        return pause_flow_run(
            wait_for_input=Confirmation.with_initial_data(description=description, approve=False),
            timeout=timeout,
            poll_interval=2,
            key=CONFIRMATION_KEY,
        )
    except FlowPauseTimeout:
        return None


def _end_expired_pause(message: str) -> None:
    """Prefect turns a run whose pause has expired into Failed ("paused and never
    resumed") rather than let it end as it chooses; an unanswered confirmation is no
    failure, so the run is cancelled first, with the reason."""
    context = FlowRunContext.get()
    if context is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(context.flow_run.id, Cancelled(message=message), force=True)


def run_pipeline(
    site: str,
    entries: Sequence[str] = (),
    channels: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    require_confirmation: bool = False,
    confirmation_timeout_seconds: int = 3600,
    timed: bool = False,
) -> Report | State:
    """load → check → (confirm) → record → write public/ → deliver → report."""
    channels = list(channels or core.CHANNELS)
    planned = plan_edition(site, list(entries), not dry_run, channels, timed)
    if isinstance(planned, BulletinError):
        failed = Report(None, [], outcome=f"Nothing was sent: {planned}")
        failed.notes = [str(p) for p in planned.problems]
        _leave_report(failed)
        return Failed(message=str(planned), data=planned)
    config, edition = planned
    report = Report(
        edition.edition_id, [e.slug for e in edition.entries], notes=edition.notes,
        dry_run=dry_run,
    )  # fmt: skip
    if edition.edition_id:
        report.compliance = (
            "Passed: every email, web page and feed item of this edition carries the "
            "funding emblem, statement and disclaimer in its language."
        )
    if dry_run:
        report.would_send = core.would_send(_engine(config.database_url), config, edition)
        _leave_report(report)
        return report
    if not edition.edition_id:
        _leave_report(report)
        return report
    if require_confirmation:
        report.would_send = preview(config, edition)
        answer = _confirmed(edition, confirmation_timeout_seconds)
        if answer is None or not answer.approve:
            who = f"rejected by {answer.name}" if answer else (
                f"not confirmed within {confirmation_timeout_seconds} s"
            )  # fmt: skip
            report.outcome = f"Edition {edition.edition_id} {who}: nothing was sent."
            _leave_report(report)
            if answer is None:
                _end_expired_pause(report.outcome)
            return Cancelled(message=report.outcome, data=report)
        report.notes.append(f"confirmed by {answer.name}")
        report.would_send = {}
    record_edition(config, edition)
    report.public = write_site(config, edition)
    try:
        stopped = _deliver(config, edition)
    except Exception as exc:  # a crashed batch or worker: the ledger says what is left
        stopped = exc
    counts, report.failures = tally(config, edition)
    report.add_tally(counts)
    if config.delivery.transport == "outbox":
        report.outbox = f"outbox/email/{edition.edition_id}/"
    if stopped is not None:
        report.outcome = f"Sending stopped: {stopped}. Run it again to send the rest."
        _leave_report(report)
        _notify(config, report, f"edition {edition.edition_id}: sending stopped")
        return Failed(message=report.outcome, data=stopped)
    _leave_report(report)
    if report.failed:
        _notify(config, report, f"edition {edition.edition_id}: some deliveries failed for good")
        return Failed(message="some deliveries failed for good", data=report)
    return report


@flow(name="publish", log_prints=False)
def publish(
    site: str = ".",
    entries: list[str] | None = None,
    channels: list[Channel] | None = None,
    dry_run: bool = False,
    require_confirmation: bool = False,
    confirmation_timeout_seconds: int = 3600,
) -> Report:
    """Publish approved entries: render, check the EU notice, write public/, deliver once.

    `entries`: slugs, or every approved entry not yet published. `channels`: email,
    partners, or both (the default). With `require_confirmation` the run shows a preview
    and waits for a person to approve it before anything is recorded or sent.
    """
    return run_pipeline(
        site,
        entries or [],
        channels,
        dry_run=dry_run,
        require_confirmation=require_confirmation,
        confirmation_timeout_seconds=confirmation_timeout_seconds,
    )
