"""A million recipients: bulletin's publish flow to Postfix's smtp-sink with 100,000 and
1,000,000 subscribers, its peak memory and send rate beside the raw one-connection smtplib
loop on the same message in the same run.

Called by bench/run.py (`python bench/run.py --only million [--quick]`; not in the default
run: the full one sends 1.1 million messages). --quick uses 10,000 and 100,000.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import smtp_bench

Row = tuple[str, str, str, str, str]
COUNTS = {"quick": (10_000, 100_000), "full": (100_000, 1_000_000)}
RAW_COUNT = 100_000  # the baseline's rate is steady well before a million
TARGET_MB, TARGET_GROWTH = 200, 1.1


def million(quick: bool) -> tuple[list[Row], list[str]]:
    small_n, large_n = COUNTS["quick" if quick else "full"]
    raw_n = min(RAW_COUNT, large_n)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bulletin-million-") as tmp,
            smtp_bench.smtp_sink() as port,
        ):
            work = Path(tmp)
            (work / "prefect").mkdir()
            with smtp_bench.prefect_server(work / "prefect") as env:
                made = smtp_bench.Sites(work / "sites", port)
                mail = smtp_bench.material(made.entry)
                raw = smtp_bench.median_rate(raw_n, 1, smtp_bench.raw_bytes(port, mail, raw_n))
                small = smtp_bench.publish(made.fresh(small_n, 4), env, small_n, 4)
                large = smtp_bench.publish(made.fresh(large_n, 4), env, large_n, 4)
    except smtp_bench.Skip as exc:
        return [("million: SKIPPED", "", "", "", "")], [f"million bench skipped: {exc}"]

    raw_value = f"{raw:,.0f} msgs/s"
    base = f"raw smtplib, 1 conn, {raw_n:,}"
    rows: list[Row] = []
    for run in (small, large):
        rate = smtp_bench.rated_count(run)
        rows += [
            (f"publish to smtp-sink, {run.count:,}, 4 conns{smtp_bench.checked(run)}",
             f"{rate:,.0f} msgs/s", base, raw_value, f"{rate / raw:.2f}x rate"),
            (f"  peak RSS, {run.count:,}", f"{run.rss_mb:,.0f} MB", "", "", ""),
        ]  # fmt: skip
    growth = large.rss_mb / small.rss_mb
    rows.append(
        (f"peak RSS {large_n:,} / {small_n:,}", f"{growth:.2f}x", "", "", "")
    )  # fmt: skip
    rate = smtp_bench.rated_count(large)
    notes = [peak_note(run) for run in (small, large)]
    notes += [
        f"target: {large_n:,} completes ({'yes' if large.ok else 'NO'}); peak <= {TARGET_MB} "
        f"MB ({large.rss_mb:,.0f} MB) and <= {TARGET_GROWTH}x the {small_n:,} run "
        f"({growth:.2f}x); rate >= raw loop ({rate / raw:.2f}x)",
    ]
    return rows, notes


def peak_note(run: smtp_bench.Publish) -> str:
    """Where the run's memory went: its peak before, during and after the deliver step."""
    start, end = run.timings.get("deliver_start"), run.timings.get("deliver_end")
    if not run.peaks or start is None or end is None:
        return f"million: {run.count:,}: no memory trace from the driver"
    before = max((mb for t, mb in run.peaks if t <= start), default=0)
    during = max((mb for t, mb in run.peaks if start < t <= end), default=before)
    after = max((mb for t, mb in run.peaks if t > end), default=during)
    return (
        f"million: {run.count:,}: peak RSS {before} MB before the deliver step, {during} MB "
        f"at its end ({end - start:,.0f} s), {after} MB after it"
    )
