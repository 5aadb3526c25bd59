"""Inbound: messages classified per second on the vendored sisimai corpus, beside
flufl.bounce alone on the same files; and a 10,000-message Maildir processed by
`bulletin inbound process` with flat memory (peak RSS beside a 1,000-message one).

The mailbox holds copies of the corpus, each made unique (so none is a duplicate of
another) and about no delivery of ours (so each is classified, looked up and recorded as
unmatched: the full per-message path short of acting).
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flufl.bounce import all_failures

from bulletin.inbound.classify import classify

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "bounces"
Row = tuple[str, str, str, str, str]
PROBE = (
    "import resource, sys\n"
    "from bulletin.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def _rate(fn, items: list[bytes], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for data in items:
            fn(data)
        times.append(time.perf_counter() - start)
    return len(items) / statistics.median(times)


def _flufl(data: bytes) -> object:
    return all_failures(email.message_from_bytes(data, policy=email.policy.compat32))


def _mailbox(folder: Path, count: int, corpus: list[bytes]) -> Path:
    box = mailbox.Maildir(folder, create=True)
    for n in range(count):
        data = corpus[n % len(corpus)]
        box.add(f"X-Bench-Copy: {n}\r\n".encode() + data)
    return folder


def _process(site: Path, inbox: Path) -> tuple[float, int, dict[str, object]]:
    """Seconds, peak RSS (KiB) and the JSON report of one `inbound process` run."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--site", str(site), "inbound", "process",
         "--maildir", str(inbox), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, int(done.stderr.strip().splitlines()[-1]), json.loads(done.stdout)


def inbound(quick: bool) -> list[Row]:
    corpus = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    repeats = 3 if quick else 7
    ours = _rate(classify, corpus, repeats)
    theirs = _rate(_flufl, corpus, repeats)
    rows: list[Row] = [
        (f"inbound: classified/s ({len(corpus)} corpus files)", f"{ours:,.0f}/s",
         "flufl.bounce alone (parse + scan)", f"{theirs:,.0f}/s", f"{ours / theirs:.2f}x"),
    ]  # fmt: skip
    small, large = (200, 2_000) if quick else (1_000, 10_000)
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-inbound-") as tmp:
        site = Path(tmp) / "site"
        shutil.copytree(REPO / "tests" / "fixtures" / "site", site)
        with (site / "bulletin.toml").open("a") as toml:
            toml.write('\n[inbound]\nreturn_path = "bounces@example.org"\n')
        results = {}
        for count in (small, large):
            inbox = _mailbox(Path(tmp) / f"inbox-{count}", count, corpus)
            results[count] = _process(site, inbox)
            assert results[count][2]["processed"] == count, results[count][2]
        (small_s, small_rss, _), (large_s, large_rss, _) = results[small], results[large]
    rows += [
        (f"inbound: process {large:,} messages (Maildir)", f"{large / large_s:,.0f}/s",
         f"{small:,} messages", f"{small / small_s:,.0f}/s",
         f"{(large / large_s) / (small / small_s):.2f}x"),
        (f"inbound: peak memory, {large:,} messages", f"{large_rss / 1024:.0f} MiB",
         f"{small:,} messages", f"{small_rss / 1024:.0f} MiB", f"{large_rss / small_rss:.2f}x"),
    ]  # fmt: skip
    return rows
