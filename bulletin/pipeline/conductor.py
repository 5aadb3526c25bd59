"""Runs a whole publish: plan → (confirmation) → record → write public/ → deliver → tally → report.

    result = publish(site, steps=Steps(transports))
    result.ended        Ended.COMPLETED, FAILED or CANCELLED
    result.report       what the run did (pipeline.report.Report)

`Steps` says how each step is done; its defaults call the step functions in this process.
The Prefect flows (flows/publish.py) subclass it to run the steps as tasks, pause for the
confirmation and leave the report as an artifact, then turn the `Result` into a state.
Nothing here imports Prefect.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from bulletin.config.loading import load_config
from bulletin.config.model import Config
from bulletin.delivery import websub
from bulletin.delivery.configured import from_config
from bulletin.delivery.engine import RetryPolicy
from bulletin.delivery.transports import Sent, TransportFactory
from bulletin.errors import BulletinError
from bulletin.mail.notify import failure_notice
from bulletin.pipeline.ahead import take as planned_ahead
from bulletin.pipeline.planning import CHANNELS, Plan, due_slugs, plan, preview_files, restrict
from bulletin.pipeline.recording import failures, finish, record, would_send
from bulletin.pipeline.report import Report
from bulletin.pipeline.sending import deliver
from bulletin.pipeline.write import clear_previews, write_public
from bulletin.store import ledger, locks
from bulletin.store.database import connect

Tally = dict[tuple[str, str, str], int]
Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]
COMPLIANCE_PASSED = (
    "Passed: every email, web page, feed item and calendar event of this edition carries the "
    "funding emblem, statement and disclaimer in its language."
)


class Ended(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"  # the plan was refused, sending stopped, or a delivery failed for good
    CANCELLED = "cancelled"  # the edition was not confirmed: nothing was recorded or sent


@dataclass(frozen=True)
class Result:
    """How a publish ended: its report, and for a run that did not complete, why."""

    report: Report
    ended: Ended = Ended.COMPLETED
    message: str = ""
    #: What failed the run: the error, or the report when deliveries failed for good.
    cause: object = None


class Answer(Protocol):
    """A person's answer to a publish waiting for confirmation: send it or not, who says
    so, and which entries (None: all those shown; the others wait for a later edition)."""

    approve: bool
    name: str

    @property
    def entries(self) -> list[str] | None: ...


class Steps:
    """How a publish does each step; these defaults do it in this process.

    `transports` makes the run's transports (the configured ones when not given); `engine`
    is the ledger's database (the configured one when not given). `retry`, `connections`
    and `progress` go to the delivery engine. `wait`: whether a run waits for another run
    of the site under way, or stops at once (RunInProgress).
    """

    def __init__(
        self,
        transports: TransportFactory | None = None,
        *,
        engine: sa.Engine | None = None,
        retry: RetryPolicy | None = None,
        connections: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        wait: bool = True,
    ) -> None:
        self._transports = transports
        self.wait = wait
        self._engine = engine
        self.retry = retry
        self.connections = connections
        self.progress = progress

    @property
    def logger(self) -> Logger:
        return logging.getLogger("bulletin.publish")

    def engine(self, config: Config) -> sa.Engine:
        if self._engine is None:
            self._engine = connect(config.database_url)
        return self._engine

    def exclusive(
        self, site: str, what: str = "publish"
    ) -> contextlib.AbstractContextManager[None]:
        """The site's run lock, held for the whole run: a run under way makes this one wait
        (or with `wait=False` given to Steps, stop with RunInProgress)."""
        config = load_config(Path(site))
        return locks.site_run(self.engine(config), config, what, wait=self.wait)

    def transports(self, config: Config) -> TransportFactory:
        return self._transports or from_config(config)

    def plan(
        self, site: str, entries: list[str], record: bool, channels: list[str], timed: bool
    ) -> tuple[Config, Plan]:
        """The site's configuration and the edition to send; raises BulletinError."""
        config = load_config(Path(site))
        return config, plan_run(config, self.engine(config), entries, record, channels, timed)

    def would_send(self, config: Config, edition: Plan) -> dict[str, int]:
        return would_send(self.engine(config), config, edition)

    def preview(self, config: Config, edition: Plan, expires: dt.datetime) -> dict[str, int]:
        """What a person confirms: the previews in public/preview/ (their signed links
        expire at `expires`, with the confirmation), and who gets it."""
        return preview(config, self.engine(config), edition)

    def confirm(self, edition: Plan, timeout: int) -> Answer | None:
        """Ask a person to confirm the edition; None when no one answered within `timeout`
        seconds. Nobody is asked in this process."""
        return None

    def record(self, config: Config, edition: Plan) -> int:
        return record(self.engine(config), config, edition)

    def write_public(self, config: Config, edition: Plan) -> list[str]:
        return write_public(config, edition.files, edition.inputs)

    def deliver(self, config: Config, edition: Plan) -> BaseException | None:
        """Send the edition; the error that stopped sending, returned or raised, or None."""
        deliver(
            self.engine(config), config, edition, self.transports(config), self.progress,
            connections=self.connections, retry=self.retry,
        )  # fmt: skip
        return None

    def tally(self, config: Config, edition: Plan) -> tuple[Tally, list[tuple[str, str, str]]]:
        return tally(self.engine(config), edition)

    def leave_report(self, report: Report) -> None:
        """Keep the run's report where people look for it; nowhere by default."""

    def notify(self, config: Config, report: Report, headline: str) -> None:
        notify(config, self._transports, report, headline, self.logger)


def publish(
    site: str | Path,
    entries: Sequence[str] = (),
    channels: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    require_confirmation: bool = False,
    confirmation_timeout_seconds: int = 3600,
    timed: bool = False,
    steps: Steps | None = None,
) -> Result:
    """Publish the site's approved entries (or `entries`, or with `timed` those due now)
    to `channels` (email, partners; both by default).

    With `dry_run` nothing is recorded, written or sent: the report says who would get
    it. With `require_confirmation` the run shows a preview and sends nothing until a
    person confirms (`steps.confirm`). The comms address hears of a run that failed.
    """
    steps = steps or Steps()
    with contextlib.ExitStack() as held:
        try:
            # One run of a site at a time, from planning on: two runs never plan the
            # same entries, and a run under way is never taken for an interrupted one.
            held.enter_context(steps.exclusive(str(site)))
        except BulletinError as exc:
            return _refused(steps, exc)
        return _publish(
            site, entries, channels, dry_run=dry_run, require_confirmation=require_confirmation,
            confirmation_timeout_seconds=confirmation_timeout_seconds, timed=timed, steps=steps,
        )  # fmt: skip


def _refused(steps: Steps, exc: BulletinError) -> Result:
    refused = Report(None, [], outcome=f"Nothing was sent: {exc}")
    refused.notes = [str(p) for p in exc.problems]
    steps.leave_report(refused)
    return Result(refused, Ended.FAILED, str(exc), exc)


def _publish(
    site: str | Path,
    entries: Sequence[str],
    channels: Sequence[str] | None,
    *,
    dry_run: bool,
    require_confirmation: bool,
    confirmation_timeout_seconds: int,
    timed: bool,
    steps: Steps,
) -> Result:
    channels = list(channels or CHANNELS)
    try:
        config, edition = steps.plan(str(site), list(entries), not dry_run, channels, timed)
    except BulletinError as exc:
        return _refused(steps, exc)
    report = Report(
        edition.edition_id, [e.slug for e in edition.entries], notes=edition.notes,
        dry_run=dry_run,
    )  # fmt: skip
    if edition.edition_id:
        report.compliance = COMPLIANCE_PASSED
    if dry_run:
        report.would_send = steps.would_send(config, edition)
        steps.leave_report(report)
        return Result(report)
    if not edition.edition_id:
        # Nothing to send; public/ still follows what changed (an edited or withdrawn
        # entry's page, feeds and calendars), and the next publish starts from it.
        report.public = steps.write_public(config, edition)
        pinging = websub.start(config, report.public)
        if pinging is not None:
            report.notes += pinging.wait()
        steps.leave_report(report)
        return Result(report)
    if require_confirmation:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=confirmation_timeout_seconds)
        report.would_send = steps.preview(config, edition, expires)
        answer = steps.confirm(edition, confirmation_timeout_seconds)
        shown = [e.slug for e in edition.entries]
        chosen = (
            [s for s in shown if s in answer.entries]
            if answer and answer.entries is not None
            else shown
        )
        if answer is None or not answer.approve or not chosen:
            who = f"rejected by {answer.name}" if answer else (
                f"not confirmed within {confirmation_timeout_seconds} s"
            )  # fmt: skip
            if answer and answer.approve:
                who = f"confirmed by {answer.name} with no entry ticked"
            report.outcome = f"Edition {edition.edition_id} {who}: nothing was sent."
            steps.leave_report(report)
            return Result(report, Ended.CANCELLED, report.outcome, answer)
        report.notes.append(f"confirmed by {answer.name}")
        report.would_send = {}
        if chosen != shown:
            try:  # the edition as confirmed: the ticked entries, rendered and checked anew
                config, edition = steps.plan(str(site), chosen, True, channels, False)
            except BulletinError as exc:
                report.outcome = f"Nothing was sent: {exc}"
                steps.leave_report(report)
                return Result(report, Ended.FAILED, str(exc), exc)
            report.entries = [e.slug for e in edition.entries]
            left = ", ".join(s for s in shown if s not in chosen)
            report.notes.append(f"left for a later edition (unticked): {left}")
    steps.record(config, edition)
    report.public = steps.write_public(config, edition)
    pinging = websub.start(config, report.public)  # beside the email, never before it
    try:
        stopped = steps.deliver(config, edition)
    except Exception as exc:  # a crashed batch or worker: the ledger says what is left
        stopped = exc
    counts, report.failures = steps.tally(config, edition)
    report.add_tally(counts)
    if pinging is not None:
        report.notes += pinging.wait()
    if config.delivery.transport == "outbox":
        report.outbox = f"outbox/email/{edition.edition_id}/"
    if stopped is not None:
        report.outcome = f"Sending stopped: {stopped}. Run it again to send the rest."
        steps.leave_report(report)
        steps.notify(config, report, f"edition {edition.edition_id}: sending stopped")
        return Result(report, Ended.FAILED, report.outcome, stopped)
    steps.leave_report(report)
    if report.failed:
        headline = f"edition {edition.edition_id}: some deliveries failed for good"
        steps.notify(config, report, headline)
        return Result(report, Ended.FAILED, "some deliveries failed for good", report)
    return Result(report)


def plan_run(
    config: Config,
    engine: sa.Engine,
    entries: list[str],
    record: bool,
    channels: list[str],
    timed: bool = False,
) -> Plan:
    """The edition a run sends: `entries` (or every approved one not yet published), or
    with `timed` those due now, restricted to `channels`."""
    now = dt.datetime.now(dt.UTC)
    notes: list[str] = []
    if timed:
        entries, notes = due_slugs(config, engine, now)
        with engine.connect() as db:
            resuming = ledger.unfinished(db) is not None
        if not entries and not resuming:
            notes.append("no timed entry is due: nothing to send")
            return Plan(None, [], now, notes=notes)
    # A publish from the command line planned it already, beside Prefect's start.
    edition = None if timed else planned_ahead(config, entries, record)
    if edition is None:
        edition = plan(config, engine, entries, now, record=record)
    edition.notes = notes + edition.notes
    restrict(edition, channels)
    return edition


def preview(config: Config, engine: sa.Engine, edition: Plan) -> dict[str, int]:
    """Write the previews into public/preview/; how many each list and partner gets."""
    clear_previews(config)
    write_public(config, preview_files(edition))
    return would_send(engine, config, edition)


def tally(engine: sa.Engine, edition: Plan) -> tuple[Tally, list[tuple[str, str, str]]]:
    """Close the edition if nothing is left; the ledger's counts and failures."""
    return finish(engine, edition), failures(engine, edition)


def notify(
    config: Config,
    transports: TransportFactory | None,
    report: Report,
    headline: str,
    logger: Logger,
) -> None:
    """Tell the comms address; a notice that cannot go out is logged, not raised."""
    if not config.delivery.notify:
        return
    try:
        made = transports or from_config(config, partners=False)
        with made.email() as transport:
            sent = transport.send(
                failure_notice(config, report.edition, headline, report.markdown())
            )
    except Exception as exc:  # the run has failed already; this must not hide why
        logger.error("could not notify %s: %s", config.delivery.notify, exc)
        return
    if not isinstance(sent, Sent):
        logger.error("could not notify %s: %s", config.delivery.notify, sent.detail)
        return
    logger.info("notified %s", config.delivery.notify)
