"""Sends again what an edition did not deliver: its content as it went out, to the failed
(or still pending) deliveries of the lists and partners asked for, once each.

    report = resend(config, engine, "2026-11-29-1", lists=["news"])

The edition is rendered again from its entries only if each is still exactly as approved
when it went out (its recorded approval), so the bodies are the same bytes apart from the
per-recipient fields. The ledger reopens the undelivered rows (`ledger.reopen`) and the
delivery engine sends them with its claims, so a resend killed at any moment and run
again sends each missing message once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from bulletin.config.model import Config
from bulletin.content.approval import approved_hash, is_publishable
from bulletin.delivery.configured import from_config
from bulletin.delivery.engine import RetryPolicy
from bulletin.delivery.transports import TransportFactory
from bulletin.errors import ConfigError, Problem, raise_for
from bulletin.pipeline.planning import Plan, render, validate
from bulletin.pipeline.recording import finish
from bulletin.pipeline.sending import deliver
from bulletin.render.renderer import EditionInfo
from bulletin.store import ledger, locks
from bulletin.store.statuses import Channel, DeliveryStatus

SENT, FAILED, SKIPPED, PENDING = (
    DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.PENDING
)  # fmt: skip
_RANK = (FAILED, PENDING, SKIPPED, SENT)  # a partner's status: the worst of its rows


@dataclass
class ResendReport:
    """What a resend did (or with `dry_run`, would do)."""

    edition: str
    email: dict[str, int] = field(default_factory=lambda: {SENT: 0, FAILED: 0, SKIPPED: 0})
    lists: dict[str, dict[str, int]] = field(default_factory=dict)
    partners: dict[str, str] = field(default_factory=dict)
    left_out: list[tuple[str, str, str, str]] = field(default_factory=list)  # channel, key, to, why
    dry_run: bool = False
    would_send: dict[str, int] = field(default_factory=dict)
    pending: int = 0  # still to send when sending stopped
    outcome: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.email[FAILED] or self.pending or FAILED in self.partners.values())

    def add(self, tally: dict[tuple[str, str, str], int]) -> None:
        for (channel, key, status), count in sorted(tally.items()):
            if status == PENDING or status == DeliveryStatus.SENDING:
                self.pending += count
                status = PENDING
            elif channel == Channel.EMAIL:
                self.email[status] = self.email.get(status, 0) + count
            if channel == Channel.EMAIL:
                counts = self.lists.setdefault(key, {SENT: 0, FAILED: 0, SKIPPED: 0})
                counts[status] = counts.get(status, 0) + count
            else:
                current = self.partners.get(key)
                if current is None or _RANK.index(status) < _RANK.index(current):
                    self.partners[key] = status

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "edition": self.edition,
            "email": self.email,
            "partners": self.partners,
            "lists": self.lists,
        }
        if self.dry_run:
            data["dry_run"] = True
            data["would_send"] = self.would_send
        if self.pending:
            data["pending"] = self.pending
        if self.left_out:
            data["left_out"] = [
                {"channel": channel, "list": key if channel == Channel.EMAIL else None,
                 "partner": None if channel == Channel.EMAIL else key, "recipient": to,
                 "reason": why}
                for channel, key, to, why in self.left_out
            ]  # fmt: skip
        if self.outcome:
            data["outcome"] = self.outcome
        return data

    def lines(self) -> list[str]:
        if self.dry_run:
            out = [f"Dry run of a resend of edition {self.edition}: nothing was sent."]
            out += [f"  would send to {key}: {n}" for key, n in self.would_send.items()]
            if not self.would_send:
                out.append("  nothing to send again")
        else:
            e = self.email
            out = [f"Resend of edition {self.edition}"]
            out.append(f"  email: {e[SENT]} sent, {e[FAILED]} failed, {e[SKIPPED]} skipped")
            if self.partners:
                out.append("  partners: " + ", ".join(f"{k} {v}" for k, v in self.partners.items()))
        for _, key, to, why in self.left_out[:20]:
            out.append(f"  not sent again: {key} → {to}: {why}")
        if len(self.left_out) > 20:
            out.append(f"  ... and {len(self.left_out) - 20} more left out")
        if self.outcome:
            out.append(self.outcome)
        if not self.dry_run:
            out.append(f"  who got it, who did not: bulletin status {self.edition}")
        return out

    def markdown(self) -> str:
        """The resend's report as Markdown, for the Prefect UI."""
        out = [f"# Resend of edition {self.edition}", ""]
        if self.outcome:
            out += [f"**{self.outcome}**", ""]
        out += ["| list | sent | failed | skipped |", "|---|---|---|---|"]
        for key, counts in self.lists.items():
            out.append(f"| {key} | {counts[SENT]} | {counts[FAILED]} | {counts[SKIPPED]} |")
        if self.partners:
            out += ["", "| partner | status |", "|---|---|"]
            out += [f"| {key} | {status} |" for key, status in self.partners.items()]
        if self.left_out:
            out += ["", "## Not sent again", "", "| list or partner | recipient | why |"]
            out.append("|---|---|---|")
            out += [f"| {key} | {to} | {why} |" for _, key, to, why in self.left_out]
        out += ["", f"Who got it, who did not: `bulletin status {self.edition}`"]
        return "\n".join(out) + "\n"


def plan_resend(config: Config, engine: sa.Engine, edition_id: str) -> Plan:
    """The edition rendered again from its entries, each exactly as approved when it went
    out; raises ConfigError for an unknown edition, ContentError for a changed entry."""
    with engine.connect() as db:
        approved = ledger.approvals(db, edition_id)
        recorded = next((e for e in ledger.all_editions(db) if e.id == edition_id), None)
    if approved is None or recorded is None:
        raise ConfigError(
            f"no edition {edition_id!r} in this site's ledger; `bulletin status` lists them"
        )
    entries, _ = validate(config)
    by_slug = {e.slug: e for e in entries}
    problems = []
    for slug, approval in approved.items():
        entry = by_slug.get(slug)
        if entry is None:
            gone = f"an entry of edition {edition_id} is gone from content/; restore it to resend"
            problems.append(Problem(slug, "entry-missing", gone))
        elif not is_publishable(config, entry) or approved_hash(entry) != approval:
            problems.append(
                Problem(
                    entry.display,
                    "entry-changed",
                    f"changed since edition {edition_id} went out; a resend sends the "
                    "edition as it went, so restore the entry as it was then (e.g. from "
                    "version control), or publish the new version as a new edition",
                )
            )
    raise_for(problems)
    chosen = [by_slug[slug] for slug in approved]
    edition = Plan(edition_id, chosen, recorded.created_at, resumed=True)
    render(config, edition, [EditionInfo(edition_id, recorded.created_at, tuple(chosen))])
    return edition


def targets(
    config: Config, edition: Plan, lists: Sequence[str], partners: Sequence[str]
) -> dict[tuple[str, str], dt.datetime | None]:
    """The lists and partners to resend to ((channel, key) → the entries' earliest
    `send_not_after`): those named, or when none is, every one the edition went to."""
    for key in lists:
        if key not in config.lists:
            known = ", ".join(sorted(config.lists)) or "none"
            raise ConfigError(f"--list {key}: no such list in bulletin.toml (lists: {known})")
        if key not in edition.emails:
            raise ConfigError(f"--list {key}: edition {edition.edition_id} did not go to it")
    for key in partners:
        if key not in config.partners:
            known = ", ".join(sorted(config.partners)) or "none"
            raise ConfigError(f"--partner {key}: no such partner in bulletin.toml ({known})")
        if key not in edition.partners:
            raise ConfigError(f"--partner {key}: edition {edition.edition_id} did not go to it")
    everything = not lists and not partners
    found: dict[tuple[str, str], dt.datetime | None] = {}
    for key, (_, entries) in edition.emails.items():
        if everything or key in lists:
            found[(Channel.EMAIL, key)] = _deadline([e.send_not_after for e in entries])
    for key, entries in edition.partners.items():
        if everything or key in partners:
            found[(Channel.PARTNER, key)] = _deadline([e.send_not_after for e in entries])
    return found


def resend(
    config: Config,
    engine: sa.Engine,
    edition_id: str,
    lists: Sequence[str] = (),
    partners: Sequence[str] = (),
    *,
    dry_run: bool = False,
    transports: TransportFactory | None = None,
    retry: RetryPolicy | None = None,
    connections: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    wait: bool = False,
) -> ResendReport:
    """Send the edition again to what it did not deliver; see the module's docstring.

    Under the site's run lock: another run under way makes it wait (`wait`) or raise
    RunInProgress. A transport that stops sending is reported in `outcome`; the rest is
    sent by running the resend again.
    """
    with locks.site_run(engine, config, "resend", wait=wait):
        edition = plan_resend(config, engine, edition_id)
        chosen = targets(config, edition, lists, partners)
        on_lists = {key for key, mailing_list in config.lists.items() if not mailing_list.external}
        now = dt.datetime.now(dt.UTC)
        with engine.begin() as db:
            reopened = ledger.reopen(db, edition_id, chosen, on_lists, now, dry_run=dry_run)
        report = ResendReport(edition_id, dry_run=dry_run, left_out=reopened.skipped)
        for channel, key, _, _ in reopened.skipped:
            if channel == Channel.EMAIL:
                report.email[SKIPPED] += 1
                counts = report.lists.setdefault(key, {SENT: 0, FAILED: 0, SKIPPED: 0})
                counts[SKIPPED] += 1
            elif key not in report.partners:
                report.partners[key] = SKIPPED
        if dry_run:
            report.would_send = {key: n for (_, key), n in reopened.per_target.items()}
            return report
        if reopened.ids:
            try:
                deliver(
                    engine, config, edition, transports or from_config(config), progress,
                    connections=connections, retry=retry,
                )  # fmt: skip
            except Exception as exc:  # the ledger says what is left; a rerun sends it
                report.outcome = f"Sending stopped: {exc}. Run the resend again to send the rest."
        finish(engine, edition)
        with engine.connect() as db:
            report.add(ledger.outcomes(db, reopened.ids))
        if not reopened.ids and not reopened.skipped:
            report.outcome = f"Edition {edition_id} has nothing left to send again."
        return report


def _deadline(deadlines: Sequence[dt.datetime | None]) -> dt.datetime | None:
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None
