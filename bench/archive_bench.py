"""Archive scale: what a publish costs as the archive grows (50, 1,000, 10,000 published
entries): a publish with nothing to send, a publish of one new entry, a full `build`, and
the time to parse the entries, each through the command line as a user runs it.

Each archive is twenty years of editions of ten entries (one entry every 0.7 days at
10,000), recorded in the ledger as sent.

Called by bench/run.py (`python bench/run.py --only archive [--quick]`). Publishes go
through the background Prefect server (started once, in a Prefect home of the bench's).
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sites
import smtp_bench

PY = sys.executable
Row = tuple[str, str, str, str, str]
SIZES = {"quick": (20, 200, 1_000), "full": (50, 1_000, 10_000)}
SPAN_DAYS, PER_EDITION = 20 * 365, 10


def _add_entry(site: Path, number: int) -> None:
    """One more approved entry, like the others of the site."""
    from bulletin.config import load_config
    from bulletin.content.approval import approve
    from bulletin.content.entries import load_entry

    source = sorted((site / "content").glob("*.md"))[0]
    path = source.with_name(f"2026-02-01-new-entry-{number:04d}.md")
    path.write_text(source.read_text().replace('title: "', f'title: "New {number} ', 1))
    config = load_config(site)
    entry, problems = load_entry(config, path)
    assert entry is not None, problems
    approve(entry, sites.test_signer(config), dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC))


def _parse(site: Path) -> None:
    """Load and validate every entry, cold: no cache. The site's own entry cache is put
    aside and back, so that the build measured next has it, as a user's build does."""
    from bulletin.config import load_config
    from bulletin.content.cache import FILE, RECENT
    from bulletin.content.cache import EntryCache as _  # noqa: F401 -- the import, not the time
    from bulletin.content.entries import load_entries

    config = load_config(site)
    kept = [config.state_dir / FILE, config.state_dir / (FILE + RECENT)]
    for path in kept:
        if path.exists():
            path.rename(path.with_name(path.name + ".aside"))
    try:
        loaded = load_entries(config)
        assert not loaded.problems, loaded.problems[:3]
    finally:
        for path in kept:
            path.unlink(missing_ok=True)
            aside = path.with_name(path.name + ".aside")
            if aside.exists():
                aside.rename(path)


def archive(quick: bool) -> tuple[list[Row], list[str]]:
    sizes = SIZES["quick" if quick else "full"]
    # A publish moves by half a second from run to run (Prefect's heartbeat thread is joined
    # at the end of each flow run, after a sleep of up to a second): five of each.
    repeats, publishes = 3, 5
    figures: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bulletin-archive-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in smtp_bench.ENV.items() if not k.startswith("PREFECT_API")}
        env.update(PREFECT_HOME=str(work / "home"), BULLETIN_PREFECT_SERVER="background",
                   PREFECT_SERVER_ANALYTICS_ENABLED="false")  # fmt: skip

        def cli(site: Path, *args: str) -> Callable[[], None]:
            def call() -> None:
                subprocess.run([PY, "-m", "bulletin.cli", "--site", str(site), *args],
                               env=env, check=True, capture_output=True)  # fmt: skip

            return call

        try:
            made = {}
            for count in sizes:
                site = made[count] = sites.make_site(
                    work / f"site-{count}", count, span_days=SPAN_DAYS
                )
                sites.history(site, PER_EDITION)
                cli(site, "publish")()  # renders public/ (and starts the server once)
                print(f"archive: {count:,} entries ready", file=sys.stderr, flush=True)
            # The sizes take turns, so that each figure and its baseline share the machine's
            # moods (a loaded machine slows every publish alike).
            times: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}

            def timed(count: int, name: str, fn: Callable[[], object]) -> None:
                start = time.perf_counter()
                fn()
                times[count].setdefault(name, []).append(time.perf_counter() - start)

            for _ in range(publishes):
                for count, site in made.items():
                    timed(count, "noop", cli(site, "publish"))
            for number in range(publishes):
                for count, site in made.items():
                    _add_entry(site, number)
                    timed(count, "one", cli(site, "publish"))

            for count in sizes:  # a long run says what it has so far
                figures[count] = {k: statistics.median(v) for k, v in times[count].items()}
                shown = ", ".join(f"{k} {v:.2f} s" for k, v in figures[count].items())
                print(f"archive, {count:,} entries: {shown}", file=sys.stderr, flush=True)

            def full_build(site: Path, cold: bool = False, rm: bool = False) -> Callable[[], None]:
                """A build into a site without public/. The last one is moved aside, not
                deleted: a file system without a journal (ext4 as some virtual machines
                have it) makes a new file slow for a minute after many were deleted, as
                it looks past each recently freed inode. `rm`: deleted just before, as
                `rm -rf public && bulletin build` does."""
                if rm:
                    shutil.rmtree(site / "public")
                else:
                    (site / "public").rename(work / "aside" / f"{site.name}-{time.monotonic_ns()}")
                caches = ("entries.cache", "entries.cache.recent", "checks.cache")
                for name in ("public.state", *(caches if cold else ())):
                    (site / ".bulletin" / name).unlink(missing_ok=True)
                return cli(site, "build")

            (work / "aside").mkdir()
            for count, site in made.items():
                # A full build of the largest archive takes minutes: two runs of it.
                runs = repeats if count < max(sizes) or quick else 2
                for _ in range(runs):
                    timed(count, "parse", lambda site=site: _parse(site))
                    timed(count, "build", full_build(site))
                    timed(count, "cold", full_build(site, cold=True))
                for _ in range(runs):  # last: what they delete slows the builds after them
                    timed(count, "rm", full_build(site, rm=True))
                figure = figures[count] = {k: statistics.median(v) for k, v in times[count].items()}
                # A long run says what it has so far: the 10,000 size takes a while.
                print(
                    f"archive, {count:,} entries: "
                    + ", ".join(f"{k} {v:.2f} s" for k, v in figure.items()),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            subprocess.run([PY, "-m", "bulletin.cli", "server", "stop"], env=env,
                           capture_output=True, check=False)  # fmt: skip

    small = figures[sizes[0]]
    rows: list[Row] = []
    for count in sizes:
        f, n, built = figures[count], f"{count:,}", len(times[count]["build"])
        rows += [
            (f"publish, nothing to send, {n} entries (x{publishes})", f"{f['noop']:.2f} s",
             f"the same, {sizes[0]:,}", f"{small['noop']:.2f} s",
             f"{f['noop'] / small['noop']:.2f}x time"),
            (f"publish, one new entry, {n} entries (x{publishes})", f"{f['one']:.2f} s",
             f"the same, {sizes[0]:,}", f"{small['one']:.2f} s",
             f"{f['one'] / small['one']:.2f}x time"),
            (f"build, public/ from scratch, {n} (x{built})", f"{f['build']:.2f} s",
             f"parse {n}, cold", f"{f['parse']:.2f} s", f"{f['build'] / f['parse']:.2f}x time"),
            (f"build, no caches at all, {n} (x{built})", f"{f['cold']:.2f} s",
             f"parse {n}, cold", f"{f['parse']:.2f} s", f"{f['cold'] / f['parse']:.2f}x time"),
            (f"build, just after rm -rf public, {n} (x{built})", f"{f['rm']:.2f} s",
             f"parse {n}, cold", f"{f['parse']:.2f} s", f"{f['rm'] / f['parse']:.2f}x time"),
        ]  # fmt: skip
    big = figures[sizes[-1]]
    notes = [
        "archive: publishes and builds are CLI subprocesses (start-up included; publishes "
        "use the background Prefect server); parse is load_entries in-process, no cache; "
        "a build's public/ is the last one moved aside, but for the rm -rf rows.",
        f"target: at {sizes[-1]:,}, no-op and one-new publish <= 1.2x the {sizes[0]:,} "
        f"figures ({big['noop'] / small['noop']:.2f}x, {big['one'] / small['one']:.2f}x); "
        f"full build <= 1.5x parse ({big['build'] / big['parse']:.2f}x)",
    ]
    return rows, notes
