"""What the static accessibility rules add to `bulletin check`: the time check spends in
the accessibility gate, beside the rest of check in the same run (target: at most +20 %).

Measured in-process, without the interpreter's start-up and imports, which `bulletin
check` also pays: the ratio is the upper bound of what a user waits longer."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sites

Row = tuple[str, str, str, str, str]


def _timed_check(site: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of check_entries on `site`, and of the accessibility gate within it."""
    from bulletin.config import load_config
    from bulletin.pipeline import planning
    from bulletin.render.templates import mjml_to_html

    config = load_config(site)
    original = planning.check_accessibility
    spent: list[float] = []

    def gate(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[-1] += time.perf_counter() - start

    planning.check_accessibility = gate
    totals = []
    try:
        for _ in range(repeats):
            spent.append(0.0)
            mjml_to_html.cache_clear()  # each check is a process of its own: no warm cache
            start = time.perf_counter()
            _, problems = planning.check_entries(config)
            totals.append(time.perf_counter() - start)
            assert not problems, problems[:3]
    finally:
        planning.check_accessibility = original
    return statistics.median(totals), statistics.median(spent)


def _row(name: str, measure: Callable[[], tuple[float, float]]) -> Row:
    total, gate = measure()
    rest = total - gate
    return (
        name,
        f"{total * 1000:,.0f} ms",
        "check without the accessibility gate",
        f"{rest * 1000:,.0f} ms",
        f"+{gate / rest:.1%} time",
    )


def _process(repo: Path, repeats: int, gate: float) -> Row:
    """`bulletin check` as a user runs it (start-up included), less the gate's time."""
    env = {**os.environ, "BULLETIN_SECRET_KEY": "bench-key"}
    command = [sys.executable, "-m", "bulletin.cli", "--site", str(repo), "check"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    total = statistics.median(times)
    rest = total - gate
    return (
        f"bulletin check, the sample site (x{repeats})",
        f"{total * 1000:,.0f} ms",
        "the same less the gate's median",
        f"{rest * 1000:,.0f} ms",
        f"+{gate / rest:.1%} time",
    )


def accessibility(quick: bool, repo: Path) -> list[Row]:
    repeats = 3 if quick else 7
    count = 20 if quick else 200
    total, gate = _timed_check(repo, repeats)
    rows = [
        _row(f"check in-process, the sample site (x{repeats})", lambda: (total, gate)),
        _process(repo, repeats, gate),
    ]
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        site = sites.make_site(Path(tmp) / "site", count)
        rows.append(
            _row(
                f"check in-process, {count} entries (x{repeats})",
                lambda: _timed_check(site, repeats),
            )
        )
    return rows
