"""Keeps one local Prefect server running in the background between commands, so that a
publish from the command line does not pay for a temporary server, and its runs stay in
the server's UI afterwards.

The server belongs to a Prefect home (PREFECT_HOME, `~/.prefect` by default), which holds
its database and, beside it, bulletin's three files:

    bulletin-server.json   the running server: process id, port, URL, Prefect version
    bulletin-server.lock   held while a command checks or starts the server
    bulletin-server.log    the server's output

`ensure` is called under the lock, so two commands starting at once share one server. A
server whose process is gone (stale), that does not answer as Prefect at its port (the
port now belongs to someone else), or that runs another Prefect version than this
command's is replaced. Nothing here imports Prefect: the server is another process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from bulletin.errors import ConfigError

STATE = "bulletin-server.json"
LOCK = "bulletin-server.lock"
LOG = "bulletin-server.log"
STARTUP_SECONDS = 180.0
ATTEMPTS = 3  # a port taken between choosing it and the server binding it: try another


@dataclass(frozen=True)
class Server:
    """A background server bulletin started."""

    pid: int
    port: int
    url: str  # the API, as PREFECT_API_URL wants it
    prefect: str  # the Prefect version it runs

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")


def prefect_home(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def read_state(home: Path) -> Server | None:
    try:
        data = json.loads((home / STATE).read_text(encoding="utf-8"))
        return Server(int(data["pid"]), int(data["port"]), str(data["url"]), str(data["prefect"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Hold the home's server lock: one command at a time checks, starts or stops."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = open(home / LOCK, "a")  # noqa: SIM115 -- closed below
    except OSError as exc:
        raise ConfigError(
            f"Prefect's home folder {home} is not writable ({exc.strerror}); set PREFECT_HOME "
            "to a folder you can write, or PREFECT_API_URL to a running Prefect server"
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def running(server: Server) -> bool:
    """The recorded process is alive and is a Prefect server (not a reused process id)."""
    try:
        os.kill(server.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not ours
    cmdline = Path(f"/proc/{server.pid}/cmdline")
    if cmdline.exists():
        with contextlib.suppress(OSError):
            words = cmdline.read_bytes().split(b"\0")
            return b"prefect" in b" ".join(words) and b"server" in words
    return True


def answering_version(url: str, timeout: float = 2.0) -> str | None:
    """The Prefect version the server at `url` reports, or None when nothing answers."""
    try:
        # Only the http://127.0.0.1 URLs this module writes come here.
        request = f"{url}/admin/version"
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            return str(json.loads(reply.read()))
    except (OSError, ValueError):
        return None


def status(home: Path, version: str) -> tuple[Server | None, str]:
    """The home's server if it is usable by this Prefect `version`, and a sentence."""
    server = read_state(home)
    if server is None:
        return None, "no background Prefect server is recorded"
    if not running(server):
        return None, f"the recorded server (process {server.pid}) is gone"
    answered = answering_version(server.url)
    if answered is None:
        return None, f"the server (process {server.pid}) does not answer at {server.url}"
    if answered != server.prefect or server.prefect != version:
        return None, (
            f"the server at {server.url} runs Prefect {answered}; this bulletin uses {version}"
        )
    return server, f"running at {server.ui} (process {server.pid}, Prefect {server.prefect})"


def ensure(home: Path, version: str, environ: Mapping[str, str]) -> tuple[Server, bool]:
    """The home's running server, started if need be; True when it was started now.

    `environ` is the server's environment: the caller removes what only a temporary
    server should have."""
    with locked(home):
        server, _ = status(home, version)
        if server is not None:
            return server, False
        _stop_recorded(home)
        log = home / LOG
        for _ in range(ATTEMPTS):
            server = _start(home, version, environ, log)
            if server is not None:
                (home / STATE).write_text(json.dumps(asdict(server)) + "\n", encoding="utf-8")
                return server, True
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
        raise ConfigError(
            f"could not start a Prefect server in the background (its log is {log}):\n{tail}\n"
            "Set PREFECT_API_URL to a running server, or BULLETIN_PREFECT_SERVER=temporary "
            "to use a temporary server for each run"
        )


def stop(home: Path) -> Server | None:
    """Stop the home's background server; the server stopped, or None if none ran."""
    with locked(home):
        return _stop_recorded(home)


def _stop_recorded(home: Path) -> Server | None:
    server = read_state(home)
    (home / STATE).unlink(missing_ok=True)
    if server is None or not running(server):
        return None
    _terminate(server.pid)
    return server


def _terminate(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    try:
        group = os.getpgid(pid)
        send = os.killpg if group == pid else os.kill
        target = group if group == pid else pid
        send(target, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        send(target, signal.SIGKILL)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().split(") ", 1)[1][:1] != "Z"
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(home: Path, version: str, environ: Mapping[str, str], log: Path) -> Server | None:
    """Start a server on a free port; None when it exited (its port was taken)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip
    env = {**environ, "PREFECT_HOME": str(home)}
    # A session of its own: it outlives this command and ignores the terminal's Ctrl+C.
    pid = os.posix_spawn(
        sys.executable,
        argv,
        env,
        setsid=True,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not _alive(pid):
            return None
        answered = answering_version(url, timeout=1.0)
        if answered is not None:
            if answered != version:  # someone else's server took the port first
                _terminate(pid)
                return None
            return Server(pid, port, url, version)
        time.sleep(0.2)
    _terminate(pid)
    return None
