"""Reads many HTML outputs on two cores: a full build of a large archive has tens of
thousands of pages, each read once (accessibility.rules.scan_html) for both gates.

Below PARALLEL_FROM outputs, or with one core, they are read here, one after the other.
Above, a helper process (`python -m bulletin.accessibility.workers`: a fresh interpreter,
never a fork of this process, whose threads — Prefect's, a web server's — could hold
locks, and never an import of the program that called) reads chunks of them from the
first while this process reads chunks from the last, until they meet. The results are
the same as read here, in order; an error in the helper is raised here as it would have
been; a helper that cannot start or that dies leaves its chunks to this process, and it
never outlives the call.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bulletin.accessibility.rules import scan_html
from bulletin.accessibility.scan import Finding
from bulletin.htmlscan import Page

Scanned = tuple[list[Finding], list[str], Page]
#: From this many outputs on, a helper process reads some of them.
PARALLEL_FROM = 2_000
#: The outputs the helper takes at a time.
CHUNK = 200


def scan_all(documents: Sequence[tuple[str, bool]]) -> list[Scanned]:
    """`scan_html` of each (html, email) document, in order."""
    if len(documents) < PARALLEL_FROM or _cores() < 2:
        return _scan_chunk(documents)
    chunks = [documents[i : i + CHUNK] for i in range(0, len(documents), CHUNK)]
    results: list[list[Scanned] | None] = [None] * len(chunks)
    package = str(Path(__file__).resolve().parent.parent.parent)
    path = os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)
    try:
        helper = subprocess.Popen(
            [sys.executable, "-m", "bulletin.accessibility.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
        )
    except OSError:  # no helper here: read them all in this process
        return _scan_chunk(documents)
    shared = _Chunks(len(chunks))
    errors: list[BaseException] = []
    feeding = threading.Thread(
        target=_feed, args=(helper, chunks, results, shared, errors), daemon=True
    )
    try:
        feeding.start()
        while not errors and (index := shared.take(last=True)) is not None:
            results[index] = _scan_chunk(chunks[index])
        feeding.join()
    finally:
        _stop(helper)
    if errors:
        raise errors[0]
    return [
        found
        for index, chunk in enumerate(results)
        # a chunk the helper took but never returned (it died): read here
        for found in (chunk if chunk is not None else _scan_chunk(chunks[index]))
    ]


class _Chunks:
    """The chunks not yet taken: the helper takes from the first, this process from the
    last."""

    def __init__(self, count: int) -> None:
        self._lock = threading.Lock()
        self._first, self._end = 0, count

    def take(self, *, last: bool = False) -> int | None:
        with self._lock:
            if self._first >= self._end:
                return None
            if last:
                self._end -= 1
                return self._end
            self._first += 1
            return self._first - 1


def _feed(
    helper: subprocess.Popen[bytes],
    chunks: list[Sequence[tuple[str, bool]]],
    results: list[list[Scanned] | None],
    shared: _Chunks,
    errors: list[BaseException],
) -> None:
    """Keeps the helper reading, one chunk at a time, until none is left."""
    assert helper.stdin is not None and helper.stdout is not None
    try:
        while (index := shared.take()) is not None:
            _send(helper.stdin, (index, chunks[index]))
            done, found = pickle.load(helper.stdout)  # noqa: S301 -- our own helper
            if isinstance(found, BaseException):
                errors.append(found)
                return
            results[done] = found
        _send(helper.stdin, None)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError):
        pass  # the helper died (or was stopped): what it had is read here


def _send(stream: IO[bytes], message: Any) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _stop(helper: subprocess.Popen[bytes]) -> None:
    """Ends the helper: its input closed, it stops after the chunk it has."""
    with contextlib.suppress(OSError):
        assert helper.stdin is not None
        helper.stdin.close()
    try:
        helper.wait(timeout=10)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()
    with contextlib.suppress(OSError):
        assert helper.stdout is not None
        helper.stdout.close()


def _scan_chunk(documents: Sequence[tuple[str, bool]]) -> list[Scanned]:
    return [scan_html(html, email=email) for html, email in documents]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The helper: reads chunks until told to stop (or its input ends)."""
    while True:
        try:
            message = pickle.load(source)  # noqa: S301 -- from the process that started it
        except EOFError:
            return
        if message is None:
            return
        index, documents = message
        try:
            found: Any = _scan_chunk(documents)
        except Exception as exc:  # raised in the process that asked
            found = exc
        try:
            _send(sink, (index, found))
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(sink, (index, RuntimeError(f"reading an HTML output failed: {found!r}")))


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
