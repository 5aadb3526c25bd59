"""Publish latency from the command line: `bulletin publish` with its background Prefect
server beside the same publish against a Prefect server started by hand, beside the old
temporary server per run, and `bulletin check` beside `python -c pass` (also a first check,
before anything was compiled and kept for the next commands).

Called by bench/run.py (`python bench/run.py --only latency [--quick]`). The site is the
fixture site, published once first, so that each measured publish has nothing to send.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sites
import smtp_bench

PY = sys.executable
Row = tuple[str, str, str, str, str]
Timing = tuple[float, float]


def _timed(argv: list[str], env: dict[str, str], repeats: int) -> Timing:
    """Median wall seconds and median CPU seconds (user + system, children included)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = os.times()
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - start)
        after = os.times()
        cpus.append(
            after.children_user - before.children_user + after.children_system
            - before.children_system
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[-3:])} failed: {done.stderr[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def _interleaved(commands: list[list[str]], env: dict[str, str], repeats: int) -> list[Timing]:
    """`_timed` of each command, their runs taken in turn, so that a machine busy with
    something else slows each of them alike."""
    runs: list[list[Timing]] = [[] for _ in commands]
    for _ in range(repeats):
        for argv, timings in zip(commands, runs, strict=True):
            timings.append(_timed(argv, env, 1))
    return [(statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for t in runs]


def latency(quick: bool) -> tuple[list[Row], list[str]]:
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="bulletin-latency-") as tmp:
        work = Path(tmp)
        site = work / "site"
        shutil.copytree(sites.FIXTURE, site)
        sites.publish(site)  # every later publish has nothing to send
        home = work / "home"
        base = {k: v for k, v in smtp_bench.ENV.items() if not k.startswith("PREFECT_API")}
        base.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        publish = [PY, "-m", "bulletin.cli", "--site", str(site), "publish"]
        background = {**base, "BULLETIN_PREFECT_SERVER": "background"}
        try:
            first, _ = _timed(publish, background, 1)  # starts the background server
            reused = _timed(publish, background, repeats)
            temporary = _timed(publish, {**base, "BULLETIN_PREFECT_SERVER": "temporary"},
                               max(3, repeats // 2))  # fmt: skip
        finally:
            subprocess.run([PY, "-m", "bulletin.cli", "server", "stop"], env=background,
                           capture_output=True, check=False)  # fmt: skip
        (work / "other").mkdir()
        with smtp_bench.prefect_server(work / "other") as env:
            running = _timed(publish, {**env, "BULLETIN_PREFECT_SERVER": "temporary"}, repeats)
        # check on a fresh copy of the site, with no compiled catalogs or templates and no
        # entry cache: a user's first command; then on the published site, as every later
        # one (the publish kept its entries and templates, the first check the catalogs).
        fresh = work / "fresh"
        shutil.copytree(sites.FIXTURE, fresh, ignore=shutil.ignore_patterns(".bulletin"))
        # Python keeps each module's bytecode (as an installed package has it), even where
        # the environment asks it not to: a user's check does not compile bulletin each time.
        cold_env = {**base, "XDG_CACHE_HOME": str(work / "cache")}
        cold_env.pop("PYTHONDONTWRITEBYTECODE", None)
        first_check = _timed([PY, "-m", "bulletin.cli", "--site", str(fresh), "check"], cold_env, 1)
        check_argv = [PY, "-m", "bulletin.cli", "--site", str(site), "check"]
        check_repeats = max(repeats, 7)
        check, bare = _interleaved([check_argv, [PY, "-c", "pass"]], cold_env, check_repeats)

    def fmt(figure: tuple[float, float]) -> str:
        return f"{figure[0]:.2f} s (cpu {figure[1]:.2f} s)"

    base_name = "publish, PREFECT_API_URL server"
    rows: list[Row] = [
        (f"publish, background server reused (x{repeats})", fmt(reused), base_name,
         fmt(running), f"{reused[0] / running[0]:.2f}x time"),
        ("publish, temporary server per run (old way)", fmt(temporary), base_name,
         fmt(running), f"{temporary[0] / running[0]:.2f}x time"),
        ("publish, first: starts the background server", f"{first:.2f} s", base_name,
         fmt(running), f"{first / running[0]:.2f}x time"),
        (f"bulletin check (x{check_repeats})", fmt(check), "python -c pass", fmt(bare),
         f"{check[0] / bare[0]:.1f}x time"),
        ("bulletin check, first: nothing compiled yet", fmt(first_check), "python -c pass",
         fmt(bare), f"{first_check[0] / bare[0]:.1f}x time"),
    ]  # fmt: skip
    notes = [
        "latency: each publish has nothing to send (the site was published first); wall "
        "time and the CPU time of the command (the servers' own CPU not included).",
        "latency: check and python -c pass run in turn; the first check's catalogs, templates "
        "and entries are compiled and kept for the next commands, and Python keeps the "
        "modules' bytecode (PYTHONDONTWRITEBYTECODE is left out of their environment).",
        f"target: CLI publish <= 1.3x a publish against a running server: "
        f"{reused[0] / running[0]:.2f}x; check <= 10x python -c pass: {check[0] / bare[0]:.1f}x",
    ]
    return rows, notes
