"""The commands that need no workflow engine never import Prefect: they start fast and work
without a Prefect server. Each runs as a user runs it, in a fresh Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Runs `bulletin.cli.main(argv)` in a fresh process and prints, as its last line, the exit
# status and every Prefect module loaded. The first import of Prefect records the bulletin
# modules on the stack, so a failure names the chain that pulled it in. uvicorn's server loop
# returns at once, so that `serve` runs everything up to the moment it would listen.
PROBE = """
import contextlib, io, json, sys, traceback

chain = []

class PrefectTracer:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "prefect" and not chain:
            chain.extend(
                f"{frame.filename}:{frame.lineno} {frame.line}"
                for frame in traceback.extract_stack()
                if "/bulletin/" in frame.filename or "/flows/" in frame.filename
            )
        return None

sys.meta_path.insert(0, PrefectTracer())

import uvicorn
uvicorn.Server.run = lambda self, *args, **kwargs: None

from bulletin.cli import main

for module in sys.argv[2:]:  # the control test's preload
    __import__(module)

out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = main(json.loads(sys.argv[1]))
prefect = sorted(m for m in sys.modules if m.split(".")[0] == "prefect")
print(json.dumps({"status": status, "prefect": prefect, "chain": chain,
                  "stdout": out.getvalue(), "stderr": err.getvalue()}))
"""


def run_without_prefect_server(site: Path, *args: str, preload: str | None = None) -> dict:
    """Run `bulletin --site SITE ARGS...` through the probe (after importing `preload`, if
    given); the probe's report as a dict."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            json.dumps(["--site", str(site), *args]),
            *([preload] if preload else []),
        ],
        cwd=site,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"the probe failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_ran_without_prefect(report: dict) -> None:
    assert report["status"] == 0, f"exit status {report['status']}:\n{report['stderr']}"
    assert report["prefect"] == [], "Prefect was imported by:\n" + "\n".join(report["chain"])


DRAFT = """\
---
title: A draft to approve
date: 2019-12-10
language: en
status: draft
---
Some text.
"""


def test_check_never_imports_prefect(site):
    report = run_without_prefect_server(site, "check")
    assert_ran_without_prefect(report)
    assert "Checked 2 entries: no problems." in report["stdout"]


def test_build_never_imports_prefect(site):
    report = run_without_prefect_server(site, "build")
    assert_ran_without_prefect(report)
    assert report["stdout"].startswith("Built public/")
    assert (site / "public" / "feed.xml").is_file()


def test_approve_never_imports_prefect(site):
    draft = site / "content" / "2019-12-10-draft.md"
    draft.write_text(DRAFT, encoding="utf-8")
    report = run_without_prefect_server(site, "approve", str(draft), "--by", "Press Office")
    assert_ran_without_prefect(report)
    assert "status: approved" in draft.read_text(encoding="utf-8")


def test_subscribers_import_never_imports_prefect(site):
    report = run_without_prefect_server(site, "subscribers", "import", "subscribers.csv",
                                        "--list", "news")  # fmt: skip
    assert_ran_without_prefect(report)
    assert report["stdout"].startswith("news: 2 added")


def test_subscribers_export_never_imports_prefect(site):
    report = run_without_prefect_server(site, "subscribers", "export", "--list", "news")
    assert_ran_without_prefect(report)
    assert report["stdout"].splitlines()[0] == "email,name,language,status,reason,since"


def test_serve_never_imports_prefect(site):
    report = run_without_prefect_server(site, "serve", "--port", "8765")
    assert_ran_without_prefect(report)
    assert "Serving " in report["stdout"] and "http://127.0.0.1:8765/" in report["stdout"]


def test_the_probe_sees_prefect_and_names_the_chain_that_imported_it(site):
    # The tests above pass only if the probe can see Prefect: here a flow module is
    # imported first, as `publish` does, and the probe must report it and who imported it.
    report = run_without_prefect_server(site, "check", preload="bulletin.flows.timed")
    assert report["status"] == 0
    assert "prefect" in report["prefect"]
    assert any("flows/timed.py" in frame for frame in report["chain"]), report["chain"]
