"""The two gates over what a check, build or publish renders, each HTML output read once
for both; on several processes when a build renders many pages.

Outputs are handed over as they are rendered. Once THRESHOLD HTML outputs are waiting to be
read, a pool of processes reads them in batches while rendering goes on (a small site never
starts one: starting processes costs more than they save). The processes are spawned, not
forked: a publish runs in a Prefect flow, whose process has threads. What they find is
merged in the outputs' order, so the problems and warnings are those of an in-process run,
in the same order. A batch a process could not read (it raised, or died) is read again
here, which gives what an in-process run gives, errors included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bulletin.accessibility import check_accessibility
from bulletin.accessibility.rules import Scan, scan_batch
from bulletin.compliance import Output, check_outputs
from bulletin.config.model import Config
from bulletin.errors import ConfigError, Problem
from bulletin.htmlscan import Page

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

#: HTML outputs waiting to be read before a pool of processes starts (a site of about a
#: thousand entries has as many pages: below it, a pool's start costs what it saves)
THRESHOLD = 1000
#: HTML outputs a process reads at a time
BATCH = 40
#: the environment variable that sets how many processes read a large build's outputs
WORKERS = "BULLETIN_WORKERS"
#: the most processes started without WORKERS saying so: a container may be allowed a few
#: of the CPUs it sees
MAX_WORKERS = 8

Key = tuple[str, bool]  # an HTML output's content, and whether it is an email's part


def workers() -> int:
    """The processes that read a large build's outputs: BULLETIN_WORKERS, else one for each
    CPU this process may run on (at most MAX_WORKERS); 1 reads everything in this process."""
    value = os.environ.get(WORKERS, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(
                f"{WORKERS}={value!r}: give a number of processes, at least 1 (1 reads "
                "every output in bulletin's own process)"
            )
        return int(value)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_WORKERS)


class Gates:
    """The outputs a run renders, handed over as they come (`append`, `extend`); `verdict`
    runs both gates over all of them. `processes`: how many read a large run's outputs
    (`workers()` by default); `threshold`: how many HTML outputs make a run large
    (THRESHOLD by default)."""

    def __init__(
        self, config: Config, processes: int | None = None, threshold: int | None = None
    ) -> None:
        self.config = config
        self.outputs: list[Output] = []
        self._processes = workers() if processes is None else processes
        self._threshold = THRESHOLD if threshold is None else threshold
        self._seen: set[Key] = set()
        self._waiting: list[Key] = []  # read by no process yet
        self._batches: list[tuple[list[Key], Future[list[Scan]]]] = []
        self._pool: ProcessPoolExecutor | None = None

    def append(self, output: Output) -> None:
        self.outputs.append(output)
        if not output.html or self._processes < 2:
            return
        key = (output.content, output.email)
        if key in self._seen:  # lists that get the same email: read once
            return
        self._seen.add(key)
        self._waiting.append(key)
        if len(self._waiting) >= (BATCH if self._pool else self._threshold):
            self._hand_over()

    def extend(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            self.append(output)

    def _hand_over(self) -> None:
        """The waiting outputs to the pool's processes, in batches (starting it if need
        be); left waiting, to be read here, if processes cannot be started."""
        if self._pool is None:
            import multiprocessing  # only a large build needs them
            from concurrent.futures import ProcessPoolExecutor

            try:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self._processes, mp_context=context)
            except (OSError, ValueError):
                self._processes = 1
                return
        waiting, self._waiting = self._waiting, []
        for start in range(0, len(waiting), BATCH):
            batch = waiting[start : start + BATCH]
            try:
                self._batches.append((batch, self._pool.submit(scan_batch, batch)))
            except RuntimeError:  # the pool broke (a process died): read here
                return

    def close(self) -> None:
        """Stop the pool's processes, if any (what they have not read is not read)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def verdict(self) -> tuple[list[Problem], list[str]]:
        """Every problem both gates find in the outputs (the EU-notice gate's first), and
        the warnings of the accessibility rules the site downgraded."""
        scans: dict[Key, Scan] = {}
        try:
            if self._pool is not None and self._waiting:
                self._hand_over()
            for batch, future in self._batches:
                try:
                    scans.update(zip(batch, future.result(), strict=True))
                except Exception:  # noqa: S112 -- read again here: it raises here
                    continue
        finally:
            self.close()
        pages: dict[str, Page] = {}
        verdict = check_accessibility(self.config, self.outputs, pages, scans)
        return check_outputs(self.config, self.outputs, pages) + verdict.problems, verdict.warnings
