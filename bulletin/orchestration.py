"""bulletin's one door to Prefect, outside flows/: the environment a run needs, flows run
from the command line, Prefect Secret blocks and approval events. Every Prefect import
of the library is in this module, inside a function, so that commands that need no
Prefect never load it.

Running flows from the command line, quickly, visibly and safely:

Without PREFECT_API_URL (in the environment or the active Prefect profile), a publish uses
a local Prefect server that keeps running in the background between commands
(bulletin.local_server): it starts on first use, and its UI shows every run. With
BULLETIN_PREFECT_SERVER=temporary, Prefect starts a temporary server for each run instead.
Two settings of that temporary server are changed here, before Prefect is imported (the
server inherits them):

- Its task-run recorder and event persister flush in batches of one by default; at exit
  Prefect stops the server while they are mid-write, which logs "Error flushing events"
  tracebacks and loses task runs. Batching everything until shutdown writes them once,
  in the shutdown path, which is not cancelled.
- A cold start (database migrations) can take longer than the default 20 s on a busy
  machine; and two runs that start a fresh server at once race on the migrations, so the
  server is started under a file lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr

from bulletin.errors import ConfigError

T = TypeVar("T")

_EPHEMERAL_SERVER = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "10000",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "3600",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "10000",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "3600",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


BACKGROUND, TEMPORARY = "background", "temporary"
MODE_VARIABLE = "BULLETIN_PREFECT_SERVER"


def server_mode() -> str:
    """How a command gets a Prefect server when PREFECT_API_URL names none."""
    mode = os.environ.get(MODE_VARIABLE, BACKGROUND).strip().lower() or BACKGROUND
    if mode not in (BACKGROUND, TEMPORARY):
        raise ConfigError(
            f"{MODE_VARIABLE}={mode!r} is not a server mode; use {BACKGROUND!r} (a local server "
            f"kept running between commands, the default) or {TEMPORARY!r} (one per run)"
        )
    return mode


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment, else from the active Prefect profile; read
    without importing Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    from bulletin.local_server import prefect_home

    path = Path(
        os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml"
    ).expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


def _use_background_server() -> None:
    """Point this process at the local background server, starting it if need be."""
    from bulletin import local_server

    environ = {k: v for k, v in os.environ.items() if k not in _EPHEMERAL_SERVER}
    environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    environ.setdefault("DO_NOT_TRACK", "1")
    server, started = local_server.ensure(local_server.prefect_home(), prefect_version(), environ)
    os.environ["PREFECT_API_URL"] = server.url
    if started:
        import sys

        print(
            f"Started a Prefect server in the background; its UI, with this run, is at "
            f"{server.ui} (stop it with `bulletin server stop`).",
            file=sys.stderr,
        )


def prepare_prefect_environment(verbose: bool = False) -> None:
    """Settings that must be in place before Prefect is imported."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # the client's own telemetry, too
    if not os.environ.get("PREFECT_API_URL"):
        for name, value in _EPHEMERAL_SERVER.items():
            os.environ.setdefault(name, value)
    if not verbose:
        # The terminal gets bulletin's own summary; the run's full log still goes to the
        # Prefect API and UI. Warnings and errors still show here.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _start_ephemeral_server() -> None:
    """Start the temporary server now, one process at a time, if one is needed."""
    if os.environ.get("PREFECT_API_URL"):
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_HOME

    home = Path(PREFECT_HOME.value()).expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
        lock = open(home / "bulletin-server-start.lock", "w")  # noqa: SIM115 -- held below
    except OSError as exc:
        raise ConfigError(
            f"Prefect's home folder {home} is not writable ({exc.strerror}); set PREFECT_HOME "
            "to a folder you can write, or PREFECT_API_URL to a running Prefect server"
        ) from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The same instance the client uses later; Prefect's exit hook stops it, after
        # the client has sent its last events.
        SubprocessASGIServer().start()


def start_server(verbose: bool = False) -> None:
    """Set up Prefect for a run from the command line: without PREFECT_API_URL, use the
    local background server (or, in temporary mode, start a temporary one). Call it
    before Prefect or the flows are imported."""
    if configured_api_url() is None and server_mode() == BACKGROUND:
        _use_background_server()
    prepare_prefect_environment(verbose)
    _start_ephemeral_server()


def run_flow(flow: Callable[..., Any], expected: type[T], **parameters: Any) -> T:
    """Run `flow` with `parameters` and return its `expected` result; raise the exception
    the run ended with, if it ended with one."""
    state = flow(**parameters, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, expected):
        return result
    if isinstance(result, BaseException):
        raise result
    raise RuntimeError(f"the flow ended in state {state.type.value}: {state.message}")


def load_secret(name: str, key: str) -> SecretStr:
    """A Prefect Secret block's value; `key` is the setting that names the block."""
    try:
        from prefect.blocks.system import Secret

        block: Any = Secret.load(name)  # a sync call here: Prefect types it sync-or-async
        value = block.get()
    except Exception as exc:  # Prefect raises ValueError, httpx errors, ...
        raise ConfigError(
            f"{key}: cannot load the Prefect Secret block {name!r} ({type(exc).__name__}); "
            "create it with `prefect block create secret` or check PREFECT_API_URL"
        ) from exc
    return SecretStr(str(value))


APPROVED_EVENT = "bulletin.entry.approved"


def emit_approvals(site_title: str, approvals: Sequence[tuple[str, str, str, str]]) -> None:
    """Tell the Prefect server at PREFECT_API_URL that entries were approved: one
    `bulletin.entry.approved` event per entry, resource `bulletin.entry.<slug>`.

    `approvals` holds (slug, title, approver, content hash). A deployment trigger can
    publish on these events. Only called when PREFECT_API_URL is set, so that approving
    on a machine without Prefect never waits for it.
    """
    prepare_prefect_environment()
    import asyncio

    from prefect.events import Event, Resource
    from prefect.events.clients import get_events_client

    events = [
        Event(
            event=APPROVED_EVENT,
            resource=Resource.model_validate(
                {
                    "prefect.resource.id": f"bulletin.entry.{slug}",
                    "prefect.resource.name": title,
                    "bulletin.slug": slug,
                    "bulletin.site": site_title,
                }
            ),
            payload={"approved_by": by, "approval": approval},
        )
        for slug, title, by, approval in approvals
    ]

    async def send() -> None:
        async with get_events_client(reconnection_attempts=2) as client:
            for event in events:
                await client.emit(event)

    asyncio.run(send())
