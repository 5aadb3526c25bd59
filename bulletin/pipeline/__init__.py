"""The publish pipeline, step by step: plan → record → write public/ → deliver → finish.

conductor runs a whole publish through the steps below (`publish`, `Steps`, `Result`)
planning  validate, choose, render and check an edition; nothing is written yet
ahead     a command-line publish's plan, made by a second process while Prefect starts
recording the edition and its frozen recipients into the ledger; its tally
write     public/: the only writer of the web archive
sending   the recorded edition to the lists and partners, through given transports
resending what an edition did not deliver, sent again as it went (`bulletin resend`)
report    what a run did, as JSON, text and Markdown
progress  where a long send reports its progress
confirmation  private previews and the page a person confirms an edition on

The names below load on first use (PEP 562): `bulletin check` needs planning only, and
must not pay for the database, delivery and ledger modules that the conductor imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulletin.pipeline.conductor import Ended, Result, Steps, plan_run, preview, publish, tally
    from bulletin.pipeline.planning import (
        CHANNELS,
        Plan,
        check_entries,
        due_slugs,
        plan,
        preview_files,
        restrict,
        validate,
    )
    from bulletin.pipeline.recording import failures, finish, recipients, record, would_send
    from bulletin.pipeline.sending import deliver, deliver_partners
    from bulletin.pipeline.write import write_public

_HOMES = {
    **dict.fromkeys(
        ("Ended", "Result", "Steps", "plan_run", "preview", "publish", "tally"), "conductor"
    ),
    **dict.fromkeys(
        (
            "CHANNELS",
            "Plan",
            "check_entries",
            "due_slugs",
            "plan",
            "preview_files",
            "restrict",
            "validate",
        ),
        "planning",
    ),
    **dict.fromkeys(("failures", "finish", "recipients", "record", "would_send"), "recording"),
    **dict.fromkeys(("deliver", "deliver_partners"), "sending"),
    "write_public": "write",
}


def __getattr__(name: str) -> Any:
    """A name of `__all__`, imported from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "CHANNELS",
    "Ended",
    "Plan",
    "Result",
    "Steps",
    "check_entries",
    "deliver",
    "deliver_partners",
    "due_slugs",
    "failures",
    "finish",
    "plan",
    "plan_run",
    "preview",
    "preview_files",
    "publish",
    "recipients",
    "record",
    "restrict",
    "tally",
    "validate",
    "would_send",
    "write_public",
]
