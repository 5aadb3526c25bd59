"""Where a long delivery reports its progress: a terminal bar when the CLI runs the flow."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

_listener: Callable[[int, int], None] | None = None


def listen(listener: Callable[[int, int], None] | None) -> None:
    """Send progress to `listener` (None to stop); the flow runs in the caller's process."""
    global _listener
    _listener = listener


def report(done: int, total: int) -> None:
    if _listener is not None:
        _listener(done, total)


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[None]:
    """A progress bar on stderr for a long send, when a person is watching."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "sending", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    )
    task = bar.add_task("send", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    listen(update)
    try:
        with bar:
            yield
    finally:
        listen(None)
