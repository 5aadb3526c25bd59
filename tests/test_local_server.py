"""A publish from the command line starts a local Prefect server in the background once,
reuses it, shows its runs in that server, and replaces a server that is gone, foreign or
of another Prefect version. Each test has a Prefect home of its own and stops its servers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli


@pytest.fixture
def home(tmp_path: Path):
    """A fresh Prefect home; any server started in it is stopped at the end."""
    path = tmp_path / "prefect-home"
    yield path
    state = path / "bulletin-server.json"
    if state.exists():
        pid = json.loads(state.read_text())["pid"]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(home), BULLETIN_PREFECT_SERVER="background")
    return env


def _state(home: Path) -> dict:
    return json.loads((home / "bulletin-server.json").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split(") ", 1)[1][:1] != "Z"


def _flow_runs(url: str) -> list[dict]:
    reply = httpx.post(f"{url}/flow_runs/filter", json={}, timeout=30)
    reply.raise_for_status()
    return list(reply.json())


def test_publish_starts_one_background_server_and_reuses_it(site: Path, home: Path) -> None:
    # Two commands at once, on two sites (one site runs one publish at a time): one starts
    # the server, the other waits for it and uses it.
    other = site.parent / "other-site"
    shutil.copytree(site, other)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "bulletin.cli", "--site", str(s), "publish", "--dry-run"],
            env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for s in (site, other)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("Started a Prefect server in the background" in err for _, err in outputs) == 1
    first = _state(home)
    assert _alive(first["pid"])

    again = run_cli("publish", "--dry-run", site=site, env=_env(home))
    assert again.returncode == 0, again.stderr
    assert "Started a Prefect server" not in again.stderr
    assert _state(home) == first
    # Every run stays in the server, for its UI.
    runs_seen = _flow_runs(first["url"])
    assert len(runs_seen) == 3
    assert {r["state_type"] for r in runs_seen} == {"COMPLETED"}

    status = run_cli("server", "status", "--json", env=_env(home))
    assert json.loads(status.stdout)["running"] is True
    stopped = run_cli("server", "stop", env=_env(home))
    assert stopped.returncode == 0 and f"process {first['pid']}" in stopped.stdout
    assert not _alive(first["pid"])
    assert json.loads(run_cli("server", "status", "--json", env=_env(home)).stdout) == {
        "running": False, "url": None, "pid": None, "home": str(home), "prefect_api_url": None,
    }  # fmt: skip


def test_gone_foreign_and_outdated_servers_are_replaced(site: Path, home: Path) -> None:
    home.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    with socket.socket() as foreign:  # the recorded port now belongs to something else
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        port = foreign.getsockname()[1]
        (home / "bulletin-server.json").write_text(json.dumps({
            "pid": int(gone.stdout), "port": port, "url": f"http://127.0.0.1:{port}/api",
            "prefect": "3.9.1",
        }))  # fmt: skip
        first = run_cli("publish", "--dry-run", site=site, env=_env(home))
    assert first.returncode == 0, first.stderr
    assert "Started a Prefect server" in first.stderr
    replaced = _state(home)
    assert replaced["port"] != port and _alive(replaced["pid"])

    # A Prefect upgrade: the server of the old version is stopped and a new one started.
    (home / "bulletin-server.json").write_text(json.dumps({**replaced, "prefect": "0.0.1"}))
    upgraded = run_cli("publish", "--dry-run", site=site, env=_env(home))
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Started a Prefect server" in upgraded.stderr
    assert not _alive(replaced["pid"])
    assert _state(home)["pid"] != replaced["pid"]


def test_prefect_api_url_opts_out(site: Path, home: Path) -> None:
    env = {**_env(home), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    done = run_cli("publish", "--dry-run", site=site, env=env)
    assert done.returncode != 0
    assert not (home / "bulletin-server.json").exists()
    status = run_cli("server", "status", env=env)
    assert "PREFECT_API_URL is set (http://127.0.0.1:9/api)" in status.stdout
