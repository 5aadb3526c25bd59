"""A publish from the command line plans its edition in a second process while Prefect
starts (pipeline.ahead): the plan it hands over is the plan this process makes, it is
taken only when it is the one asked for, and a planner that fails or outlives its command
costs nothing but its time."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulletin.config import load_config
from bulletin.errors import EXIT_CONTENT
from bulletin.pipeline import ahead
from bulletin.pipeline.planning import plan
from bulletin.store.database import connect
from tests.conftest import REPO, run_cli

SLUGS = ["2019-12-05-curs-regional", "2019-11-13-sofia-workshop"]


@pytest.fixture(autouse=True)
def _no_planner_left():
    yield
    ahead.stop()


def test_the_plan_made_ahead_is_the_plan_made_here(site: Path) -> None:
    config = load_config(site)
    ahead.start(config, [], True)
    taken = ahead.take(config, [], True)
    assert taken is not None
    assert [e.slug for e in taken.entries] == SLUGS
    here = plan(config, connect(config.database_url), [], taken.published, record=True)
    assert (taken.edition_id, taken.notes) == (here.edition_id, here.notes)
    assert taken.entries == here.entries
    assert taken.files.keys() == here.files.keys()
    assert [name for name in here.files if taken.files[name] != here.files[name]] == []
    assert taken.inputs == here.inputs
    assert taken.emails.keys() == here.emails.keys() != set()
    for key, (email, entries) in here.emails.items():
        assert (taken.emails[key][0].html, taken.emails[key][0].text) == (email.html, email.text)
        assert taken.emails[key][1] == entries


def test_a_plan_of_other_entries_is_made_here(site: Path) -> None:
    config = load_config(site)
    ahead.start(config, [], True)
    planner = ahead._started
    assert planner is not None
    assert ahead.take(config, SLUGS[:1], True) is None
    assert planner.process.poll() is not None  # stopped, not left running
    ahead.start(config, [], True)
    assert ahead.take(config, [], False) is None  # a dry run records nothing: not the same


def test_a_configuration_changed_meanwhile_is_planned_here(site: Path) -> None:
    config = load_config(site)
    ahead.start(config, [], True)
    planner = ahead._started
    assert planner is not None and planner.process.stdout is not None
    # Changed once the plan is made: the plan's first bytes are in the pipe.
    assert select.select([planner.process.stdout], [], [], 60)[0]
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text().replace("Fixture News", "Fixture Bulletin", 1))
    assert ahead.take(load_config(site), [], True) is None


def test_a_planner_that_fails_leaves_the_problem_to_the_command(site: Path) -> None:
    entry = site / "content" / f"{SLUGS[1]}.md"
    entry.write_text(entry.read_text().replace("title:", "titel:", 1))
    config = load_config(site)
    ahead.start(config, [], True)
    assert ahead.take(config, [], True) is None
    result = run_cli("publish", site=site)
    assert result.returncode == EXIT_CONTENT, result.stderr
    assert f"content/{SLUGS[1]}.md" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_planner_whose_command_is_gone_ends_and_leaves_nothing(site: Path) -> None:
    # The command starts a planner and ends at once, as one killed would.
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from bulletin.config import load_config\n"
        "from bulletin.pipeline import ahead\n"
        "ahead.start(load_config(Path(sys.argv[1])), [], True)\n"
        "print(ahead._started.process.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        capture_output=True, text=True, cwd=REPO, check=True, timeout=60,
    )  # fmt: skip
    pid = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    assert list(site.rglob("*.tmp")) == []


def test_one_core_plans_in_the_command_itself(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead, "_cores", lambda: 1)
    config = load_config(site)
    ahead.start(config, [], True)
    assert ahead._started is None
    assert ahead.take(config, [], True) is None


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a process ended but not yet reaped by its new parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"
