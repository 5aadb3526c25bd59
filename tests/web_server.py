"""Runs `bulletin serve` as a real uvicorn server in a subprocess, for the web tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(site: Path, *args: str, env: dict | None = None, port: int | None = None) -> Iterator:
    """`bulletin --site SITE serve --port N ARGS` until the block ends; yields (url, log path).

    The server's stdout and stderr go to a file beside the site, read by the tests.
    """
    port = port or free_port()
    log = site.parent / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bulletin.cli", "--site", str(site), "serve",
             "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited with {process.returncode}: {log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "subscribe", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer within 60 s: {log.read_text()}")
            time.sleep(0.1)
        yield url, log
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
