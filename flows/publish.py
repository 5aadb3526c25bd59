"""The publish flows: bulletin's conductor with its steps as Prefect tasks.

The library's conductor (bulletin.pipeline.conductor) runs the publish; `FlowSteps` runs
each step as a task, leaves the report and the previews as artifacts, pauses for the
confirmation, and sends in batches on a Dask cluster when configured; `run_pipeline` turns
how the run ended into a Prefect state. `publish` runs on demand; `weekly_digest`
(flows/digest.py) and `timed_entries` (flows/timed.py) are the same pipeline on a
schedule. deployments/prefect.yaml holds the schedules; every parameter is checked
against the signatures here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from bulletin.flows.sites import one_run_per_site
from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Cancelled, Failed
from prefect.utilities.annotations import quote
from pydantic import Field, create_model

from bulletin import pipeline as core
from bulletin.config.loading import load_config
from bulletin.config.model import Config
from bulletin.delivery.configured import from_config
from bulletin.errors import BulletinError, ConfigError
from bulletin.pipeline import confirmation
from bulletin.pipeline import progress as progress_sink
from bulletin.pipeline.conductor import COMPLIANCE_PASSED, Ended, Logger, Steps, Tally
from bulletin.pipeline.report import Report
from bulletin.store import ledger, locks
from bulletin.store.database import connect

if TYPE_CHECKING:
    from prefect_dask.task_runners import DaskTaskRunner

P = ParamSpec("P")
R = TypeVar("R")

Channel = Literal["email", "partners"]
CONFIRMATION_KEY = "confirm-edition"


class Confirmation(RunInput):
    """The answer to a publish that waits for confirmation: send it, and who says so.
    `_form` adds a pre-ticked box per entry of the edition (`send_<slug>`)."""

    approve: bool
    name: str = Field(min_length=1)
    #: the entry boxes of the form: field → slug (none in the base form)
    boxes: ClassVar[dict[str, str]] = {}

    @property
    def entries(self) -> list[str] | None:
        """The slugs left ticked; None when the form had no boxes (every entry)."""
        if not self.boxes:
            return None
        values = self.model_dump()
        return [slug for field, slug in self.boxes.items() if values.get(field, True)]


def _form(edition: core.Plan) -> type[Confirmation]:
    """The confirmation form of this edition: one pre-ticked box per entry."""
    boxes = {"send_" + e.slug.replace("-", "_"): e for e in edition.entries}
    fields: dict[str, Any] = {
        name: (bool, Field(default=True, title=f"Send: {e.title} ({e.language})"))
        for name, e in boxes.items()
    }
    form: type[Confirmation] = create_model("Confirmation", __base__=Confirmation, **fields)
    form.boxes = {name: e.slug for name, e in boxes.items()}
    return form


def _as_is(value: R) -> R:
    """`value` as a task's parameter, handed over as it is. Prefect otherwise walks every
    item of a parameter looking for futures and states, twice per task; a plan holds one
    item per file of public/, so that walk would cost what the archive weighs. Ours hold
    no futures: the task gets the very object."""
    return cast(R, quote(value))


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
    return config, core.plan_run(config, engine, entries, record, channels, timed)


@task(name="record edition", cache_policy=NO_CACHE)
def record_edition(config: Config, edition: core.Plan) -> int:
    return core.record(_engine(config.database_url), config, edition)


@task(name="write public", cache_policy=NO_CACHE)
def write_site(config: Config, edition: core.Plan) -> list[str]:
    return core.write_public(config, edition.files, edition.inputs)


@task(name="preview edition", cache_policy=NO_CACHE)
def preview(config: Config, edition: core.Plan, expires: dt.datetime) -> dict[str, int]:
    """Previews in public/preview/, and what the comms person reviews in the UI: the
    confirmation page and a link to each preview, signed, expiring with the pause."""
    engine = _engine(config.database_url)
    counts = core.preview(config, engine, edition)
    shots, no_shots = confirmation.screenshots(config, edition)
    if no_shots:
        get_run_logger().info(no_shots)
    links = confirmation.preview_links(config, edition, expires, shots)
    audiences = confirmation.audiences(config, engine, edition, links)
    now = dt.datetime.now(dt.UTC)
    create_markdown_artifact(
        key="confirmation",
        markdown=confirmation.page(
            config, edition, audiences, links, COMPLIANCE_PASSED, expires, now
        ),
        description=f"Edition {edition.edition_id}: what you are asked to confirm",
    )
    for what, link in links.items():
        if what.startswith("screenshot "):
            continue  # the confirmation page links them all
        create_link_artifact(
            key=("preview-" + re.sub(r"[^a-z0-9]+", "-", what.lower())).strip("-"),
            link=link,
            link_text=f"Edition {edition.edition_id}: {what} (preview until {expires:%H:%M} UTC)",
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
        # A batch is email only: its machine needs no partner secrets.
        from_config(config, partners=batch is None),
        progress,
        batch=batch,
    )


@task(name="deliver", cache_policy=NO_CACHE)
@_user_errors_returned
def deliver(config: Config, edition: core.Plan) -> None:
    _send(config, edition)


@task(name="deliver to partners", cache_policy=NO_CACHE)
@_user_errors_returned
def deliver_partners(config: Config, edition: core.Plan) -> None:
    core.deliver_partners(_engine(config.database_url), config, edition, from_config(config))


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


def _dask_runner(config: Config) -> DaskTaskRunner:
    try:
        from prefect_dask.task_runners import DaskTaskRunner
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
def tally(config: Config, edition: core.Plan) -> tuple[Tally, list[tuple[str, str, str]]]:
    return core.tally(_engine(config.database_url), edition)


def _deliver(config: Config, edition: core.Plan) -> BulletinError | None:
    """Send the edition: in this process (threads), or in batches on a Dask cluster."""
    if config.delivery.task_runner != "dask":
        return deliver(_as_is(config), _as_is(edition))
    engine = _engine(config.database_url)
    # Only the driver holds the edition's lock; the batches take one lock each, and the
    # partners go from here, beside them.
    assert edition.edition_id  # only recorded editions are delivered
    with locks.delivery_lock(engine, config):
        partners = (
            deliver_partners.submit(_as_is(config), _as_is(edition)) if edition.partners else None
        )
        with engine.connect() as db:
            batches = ledger.batches(db, edition.edition_id, config.delivery.batch_size)
        problem = None
        if batches:
            slim = dataclasses.replace(edition, files={})  # public/ is written already
            runner = _dask_runner(config)
            get_run_logger().info("sending %d batches on %s", len(batches), runner)
            # Prefect types a runner by its futures; Dask's are PrefectFutures all the same.
            with_runner = deliver_batches.with_options(task_runner=runner)  # type: ignore[arg-type]
            problem = with_runner(config, slim, batches)
        partner_problem = partners.result() if partners is not None else None
        return problem or partner_problem


def _confirmed(edition: core.Plan, timeout: int) -> Confirmation | None:
    description = (
        f"Edition {edition.edition_id}: {len(edition.entries)} entries. Read the "
        "'confirmation' artifact and the previews it links, then approve (or not) with your "
        "name; untick an entry to leave it for a later edition."
    )
    try:
        return pause_flow_run(
            wait_for_input=_form(edition).with_initial_data(description=description, approve=False),
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
    if context is None or context.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(context.flow_run.id, Cancelled(message=message), force=True)


class FlowSteps(Steps):
    """The conductor's steps as this flow's tasks, artifacts and pause."""

    @property
    def logger(self) -> Logger:
        return get_run_logger()

    def engine(self, config: Config) -> sa.Engine:
        return _engine(config.database_url)

    def plan(
        self, site: str, entries: list[str], record: bool, channels: list[str], timed: bool
    ) -> tuple[Config, core.Plan]:
        planned = plan_edition(site, entries, record, channels, timed)
        if isinstance(planned, BulletinError):
            raise planned
        return planned

    def preview(self, config: Config, edition: core.Plan, expires: dt.datetime) -> dict[str, int]:
        return preview(_as_is(config), _as_is(edition), expires)

    def confirm(self, edition: core.Plan, timeout: int) -> Confirmation | None:
        return _confirmed(edition, timeout)

    def record(self, config: Config, edition: core.Plan) -> int:
        return record_edition(_as_is(config), _as_is(edition))

    def write_public(self, config: Config, edition: core.Plan) -> list[str]:
        return write_site(_as_is(config), _as_is(edition))

    def deliver(self, config: Config, edition: core.Plan) -> BaseException | None:
        return _deliver(config, edition)

    def tally(self, config: Config, edition: core.Plan) -> tuple[Tally, list[tuple[str, str, str]]]:
        return tally(_as_is(config), _as_is(edition))

    def leave_report(self, report: Report) -> None:
        create_markdown_artifact(
            key="publish-report", markdown=report.markdown(), description="What this run published"
        )


def run_pipeline(
    site: str,
    entries: Sequence[str] = (),
    channels: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    require_confirmation: bool = False,
    confirmation_timeout_seconds: int = 3600,
    timed: bool = False,
) -> Report | State[Any]:
    """The conductor's publish with this flow's steps; how it ended, as a Prefect state.

    One run of the site at a time: the site's Prefect slot, then its run lock (the
    conductor's), are held for the whole run.
    """
    with one_run_per_site(site):
        result = core.publish(
            site, entries, channels, dry_run=dry_run, require_confirmation=require_confirmation,
            confirmation_timeout_seconds=confirmation_timeout_seconds, timed=timed,
            steps=FlowSteps(),
        )  # fmt: skip
    if result.ended is Ended.FAILED:
        return Failed(message=result.message, data=result.cause)
    if result.ended is Ended.CANCELLED:
        if result.cause is None:  # no one answered: the pause expired
            _end_expired_pause(result.message)
        return Cancelled(message=result.message, data=result.report)
    return result.report


@flow(name="publish", log_prints=False)
def publish(
    site: str = ".",
    entries: list[str] | None = None,
    channels: list[Channel] | None = None,
    dry_run: bool = False,
    require_confirmation: bool = False,
    confirmation_timeout_seconds: int = 3600,
) -> Report | State[Any]:
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
