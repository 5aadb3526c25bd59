"""Where a long delivery reports its progress: a terminal bar when the CLI runs the flow."""

from __future__ import annotations

from collections.abc import Callable

_listener: Callable[[int, int], None] | None = None


def listen(listener: Callable[[int, int], None] | None) -> None:
    """Send progress to `listener` (None to stop); the flow runs in the caller's process."""
    global _listener
    _listener = listener


def report(done: int, total: int) -> None:
    if _listener is not None:
        _listener(done, total)
