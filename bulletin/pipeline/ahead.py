"""A publish from the command line plans its edition in a second process, started as soon
as the command holds the site's run lock, while this one starts Prefect and the flow.

Starting Prefect and a flow run takes seconds of this process's time before the plan step
begins; planning an archive of thousands of entries takes about a second more. Done by a
process of its own, the plan takes the time of a second core, and the plan step finds it
ready. It is the same `plan`, of the same site, under the same lock (held by this process
for the whole run, so no other run writes the ledger or public/ meanwhile): the edition of
the content as it was when the command began. Nothing is sent or written to public/ by it;
only the caches planning always keeps (entries, checks, the idle memo), which any process
may replace.

The plan step takes the edition (`take`) only when it asks for the very plan started:
the same site, entries and recording, and a configuration of the same digest. Anything
else, or a planner that failed (a problem in an entry, say), and it plans as always, in
this process, which reports what is wrong as it always does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bulletin.processes import module_process

if TYPE_CHECKING:
    from bulletin.config.model import Config
    from bulletin.pipeline.planning import Plan


@dataclass
class _Planner:
    root: Path
    slugs: tuple[str, ...]
    record: bool
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        # Asked to end, a planner removes what it was writing (a cache's temporary file).
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


_started: _Planner | None = None


def start(config: Config, slugs: Sequence[str], record: bool, verbose: bool = False) -> None:
    """Plan the edition of `slugs` (every approved entry not yet published when empty) in
    a process of its own, for `take`. The caller holds the site's run lock until then."""
    global _started
    stop()
    if _cores() < 2:
        return  # one core: a second process would only take turns with this one
    asked = pickle.dumps((str(config.root), list(slugs), record, os.getpid()))
    try:
        process = module_process(
            __name__,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.DEVNULL,
        )
    except OSError:
        return  # planned in this process, as always
    assert process.stdin is not None
    with contextlib.suppress(OSError):
        process.stdin.write(asked)
    with contextlib.suppress(OSError):
        process.stdin.close()
    _started = _Planner(config.root, tuple(slugs), record, process)


def take(config: Config, slugs: Sequence[str], record: bool) -> Plan | None:
    """The plan `start` made, if it is the one asked for (None: plan as always). Waits for
    it: it was started first, and planning again would take longer."""
    global _started
    planner, _started = _started, None
    if planner is None:
        return None
    try:
        if (planner.root, planner.slugs, planner.record) != (config.root, tuple(slugs), record):
            return None
        assert planner.process.stdout is not None
        digest, edition = pickle.load(planner.process.stdout)  # noqa: S301 -- our own child
        if digest != _digest(config):
            return None  # bulletin.toml changed meanwhile
        return edition  # type: ignore[no-any-return]
    except Exception:  # the planner failed, or stopped: planned in this process
        return None
    finally:
        planner.stop()


def stop() -> None:
    """Stop a planner whose plan was not taken (the run ended before its plan step)."""
    global _started
    planner, _started = _started, None
    if planner is not None:
        planner.stop()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _digest(config: Config) -> bytes:
    return hashlib.sha256(config.model_dump_json().encode()).digest()


def _watch(parent: int) -> None:
    """End this planner when the command that started it is gone."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)


def _plan(source: bytes, sink: BinaryIO) -> None:
    from bulletin.config.loading import load_config
    from bulletin.pipeline.planning import plan
    from bulletin.store.database import connect

    root, slugs, record, parent = pickle.loads(source)  # noqa: S301 -- from our parent
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    config = load_config(Path(root))
    edition = plan(config, connect(config.database_url), slugs, record=record)
    pickle.dump((_digest(config), edition), sink, protocol=pickle.HIGHEST_PROTOCOL)


def _ended(signum: int, frame: object) -> None:
    sys.exit(1)  # unwinds: a cache being written removes its temporary file


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _ended)
    # The plan alone goes to the pipe: whatever else prints goes to stderr.
    with os.fdopen(os.dup(1), "wb") as pipe:
        os.dup2(2, 1)
        try:
            _plan(sys.stdin.buffer.read(), pipe)
            pipe.flush()
        except BaseException:  # the command plans in its own process
            os._exit(1)
    os._exit(0)  # done: nothing left to tidy that a stop could interrupt
