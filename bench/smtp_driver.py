"""Runs one measured piece of the SMTP benchmark in its own process; bench/smtp_bench.py calls it.

    python bench/smtp_driver.py publish SITE OUT.json [--profile OUT.prof]
    python bench/smtp_driver.py prefect-email HOST PORT COUNT MESSAGE.json OUT.json

`publish` runs the publish flow, timing the flow call and `core.deliver` inside it;
`prefect-email` sends COUNT messages through prefect-email's task, one task run each.
Both need PREFECT_API_URL (the bench starts a server) and write their figures as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def publish(site: str, out: str, profile: str | None = None) -> None:
    started = time.perf_counter()
    from bulletin.flows.publish import publish as flow

    from bulletin import pipeline as core

    timings: dict[str, float] = {"imported": time.perf_counter() - started}
    deliver = core.deliver

    def timed_deliver(*args, **kwargs):
        timings["deliver_start"] = time.perf_counter() - started
        try:
            return deliver(*args, **kwargs)
        finally:
            timings["deliver_end"] = time.perf_counter() - started

    core.deliver = timed_deliver  # flows/publish.py calls core.deliver through the module
    profiles = _profile_threads() if profile else None
    error = None
    peaks = _watch_peak(started)
    timings["flow_start"] = time.perf_counter() - started
    try:
        flow(site=site)
    except Exception as exc:  # reported, and the ledger check in the bench tells the rest
        error = f"{type(exc).__name__}: {exc}"
    timings["flow_end"] = time.perf_counter() - started
    if profiles is not None:
        _dump(profiles, profile)
    peak = _own_peak_mb()
    result = {**timings, "error": error, "peaks": peaks, "peak_rss_mb": peak}
    Path(out).write_text(json.dumps(result))


def _own_peak_mb() -> float | None:
    """This process's peak RSS (VmHWM), Linux only. Not getrusage's ru_maxrss: at exec, Linux
    carries the parent's peak into the child's (the child ran in the parent's memory until
    then), so a bench that grew large would be measured instead of the publish."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def _watch_peak(started: float, every: float = 0.2) -> list[tuple[float, int]]:
    """(seconds since start, peak RSS in MB) each time the peak grew by a megabyte or more,
    read from /proc (Linux) by a daemon thread: when the memory grew, not only how much."""
    import threading

    peaks: list[tuple[float, int]] = []
    status = Path("/proc/self/status")
    if not status.exists():
        return peaks

    def watch() -> None:
        while True:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    mb = int(line.split()[1]) // 1024
                    if not peaks or mb > peaks[-1][1]:
                        peaks.append((round(time.perf_counter() - started, 1), mb))
            time.sleep(every)

    threading.Thread(target=watch, name="peak-rss", daemon=True).start()
    return peaks


def _profile_threads() -> list:
    """Profile the main thread and every thread started from now on (the delivery pool)."""
    import cProfile
    import threading

    profiles = [cProfile.Profile()]
    run = threading.Thread.run

    def profiled(self) -> None:
        own = cProfile.Profile()
        profiles.append(own)
        own.runcall(run, self)

    threading.Thread.run = profiled
    profiles[0].enable()
    return profiles


def _dump(profiles: list, path: str) -> None:
    import pstats

    profiles[0].disable()
    stats = None
    for profile in profiles:
        profile.create_stats()
        if not profile.stats:
            continue
        if stats is None:
            stats = pstats.Stats(profile)
        else:
            stats.add(profile)
    assert stats is not None
    stats.dump_stats(path)


def prefect_email(host: str, port: str, count: str, message: str, out: str) -> None:
    import asyncio

    from prefect import flow
    from prefect_email import EmailServerCredentials, email_send_message

    spec = json.loads(Path(message).read_text(encoding="utf-8"))
    credentials = EmailServerCredentials(
        smtp_server=host, smtp_port=int(port), smtp_type="INSECURE"
    )

    @flow(name="prefect-email baseline")
    async def send_all() -> None:
        for i in range(int(count)):
            await email_send_message(
                subject=spec["subject"],
                msg=spec["html"].replace(spec["placeholder"], f"token-{i}"),
                msg_plain=spec["text"].replace(spec["placeholder"], f"token-{i}"),
                email_server_credentials=credentials,
                email_from=spec["from"],
                email_to=f"reader{i}@example.org",
            )

    error = None
    start = time.perf_counter()
    try:
        asyncio.run(send_all())
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    Path(out).write_text(json.dumps({"seconds": seconds, "error": error}))


def main(argv: list[str]) -> None:
    if argv[0] == "publish":
        profile = argv[argv.index("--profile") + 1] if "--profile" in argv else None
        publish(argv[1], argv[2], profile)
    elif argv[0] == "prefect-email":
        prefect_email(*argv[1:6])
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
