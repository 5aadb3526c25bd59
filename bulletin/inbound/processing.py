"""Processes a source's messages one by one into a report: classify, prove, act, record,
then mark the message done. One bad message never stops the run: it is counted as an
error, left in place (or moved to the error folder), and the rest go on."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bulletin.config.model import Config
from bulletin.inbound import events
from bulletin.inbound.classify import classify
from bulletin.inbound.policy import Policy
from bulletin.inbound.sources import Incoming, Source
from bulletin.tokens import Signer, secret_key

log = logging.getLogger("bulletin.inbound")


@dataclass
class InboundReport:
    """What a run found and did (the `inbound process --json` contract)."""

    processed: int = 0
    permanent: int = 0
    temporary: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    auto_replies: int = 0
    unmatched: int = 0
    errors: int = 0
    suppressed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "bounces": {"permanent": self.permanent, "temporary": self.temporary},
            "complaints": self.complaints,
            "unsubscribes": self.unsubscribes,
            "auto_replies": self.auto_replies,
            "unmatched": self.unmatched,
            "errors": self.errors,
            "suppressed": self.suppressed,
            "unsubscribed": self.unsubscribed,
        }

    def add(self, event: events.Event) -> None:
        if event.outcome == "unmatched":
            self.unmatched += 1
        elif event.kind == "bounce":
            if event.permanent:
                self.permanent += 1
            else:
                self.temporary += 1
        elif event.kind == "complaint":
            self.complaints += 1
        elif event.kind == "unsubscribe":
            self.unsubscribes += 1
        elif event.kind == "auto-reply":
            self.auto_replies += 1
        if event.email and event.outcome == "suppressed" and event.email not in self.suppressed:
            self.suppressed.append(event.email)
        if event.email and event.outcome == "unsubscribed" and event.email not in self.unsubscribed:
            self.unsubscribed.append(event.email)


def process(
    engine: sa.Engine,
    config: Config,
    source: Source,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> InboundReport:
    """Every message of `source` not done yet, each once; the report of the run."""
    policy = Policy(config, Signer(secret_key(config.state_dir)))
    report = InboundReport()
    for item in source.messages():
        report.processed += 1
        try:
            outcome = _one(engine, policy, item, now())
        except Exception as exc:  # one hostile message must not stop the run
            report.errors += 1
            problem = f"{source.name} {item.key}: {type(exc).__name__}: {exc}"[:500]
            report.problems.append(problem)
            log.warning("inbound message not processed: %s", problem)
            source.failed(item)
            continue
        if outcome is not None:
            report.add(outcome)
        source.done(item)
    return report


class TooLarge(ValueError):
    """A message over `[inbound] max_message_bytes`: left for a person to look at."""


def _one(
    engine: sa.Engine, policy: Policy, item: Incoming, when: dt.datetime
) -> events.Event | None:
    if item.data is None:
        raise TooLarge(f"{item.size} bytes, over max_message_bytes; left in place")
    key = events.message_key(item.data)
    with engine.connect() as db:
        if events.seen(db, key):
            return None  # processed before: the same message changes nothing twice
        found = classify(item.data)
        proof = policy.prove(db, item.data, found)
    return policy.act(engine, key, found, proof, when)
