"""Prefect's overhead: the publish flow beside the core library called directly, and the
flow on a Dask cluster of two workers beside one.

Called by bench/run.py (`python bench/run.py --only prefect [--quick]`). Every run sends
the same edition to the same number of subscribers, over the same number of connections,
to Postfix's smtp-sink on loopback, measured in the same run; the ratios are the point.

    python bench/prefect_bench.py core SITE OUT.json   # one measured run without Prefect
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import smtp_bench

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PY = sys.executable
TARGET = 1.3  # the flow's time / the core's, at most
CONNECTIONS = 4
BATCH = 1000

Row = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Sizes:
    messages: int
    repeats: int
    dask: bool


SIZES = {"quick": Sizes(500, 1, False), "full": Sizes(10_000, 3, True)}


def core(site: str, out: str) -> None:
    """The pipeline without Prefect: plan, record, write public/, deliver, finish."""
    started = time.perf_counter()
    from bulletin import pipeline
    from bulletin.config import load_config
    from bulletin.delivery.configured import from_config
    from bulletin.delivery.transports import OutboxTransport, TransportFactory

    timings = {"imported": time.perf_counter() - started}
    timings["call_start"] = time.perf_counter() - started
    config = load_config(Path(site))
    # Email as configured; partners into the outbox, as the flow's run would not reach them.
    transports = TransportFactory(
        from_config(config, partners=False).email, lambda key: OutboxTransport(config.outbox_dir)
    )
    result = pipeline.publish(site, steps=pipeline.Steps(transports))
    assert result.ended is pipeline.Ended.COMPLETED, result.message
    timings["call_end"] = time.perf_counter() - started
    Path(out).write_text(json.dumps(timings))


def flow(site: str, out: str) -> None:
    started = time.perf_counter()
    from bulletin.flows.publish import publish

    timings = {"imported": time.perf_counter() - started}
    timings["call_start"] = time.perf_counter() - started
    state = publish(site=site, return_state=True)
    timings["call_end"] = time.perf_counter() - started
    timings["error"] = None if state.is_completed() else f"{state.type.value}: {state.message}"
    Path(out).write_text(json.dumps(timings))


@dataclass
class Run:
    wall: float
    call: float
    sent: int
    error: str | None


def measured(mode: str, site: Path, env: dict, count: int) -> Run:
    out = site.parent / f"{mode}.json"
    with (site.parent / f"{mode}.log").open("wb") as log:
        start = time.perf_counter()
        done = subprocess.run(
            [PY, __file__, mode, str(site), str(out)], cwd=REPO, env=env, stdout=log,
            stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
    timings = json.loads(out.read_text()) if out.exists() else {}
    error = timings.get("error")
    if done.returncode != 0:
        error = error or f"exit status {done.returncode}, see {site.parent / (mode + '.log')}"
    sent = smtp_bench.ledger_tally(site).get("sent", 0)
    if sent < count and not error:
        error = f"ledger: {sent:,} sent of {count:,}"
    return Run(wall, timings.get("call_end", 0) - timings.get("call_start", 0), sent, error)


def dask_site(site: Path, workers: int) -> None:
    toml = site / "bulletin.toml"
    toml.write_text(
        toml.read_text().replace(
            "[delivery]\n",
            f'[delivery]\ntask_runner = "dask"\ndask_workers = {workers}\nbatch_size = {BATCH}\n',
        )
    )


def prefect(quick: bool) -> tuple[list[Row], list[str]]:
    """Rows for bench/run.py's table, and lines about the target."""
    sizes = SIZES["quick" if quick else "full"]
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bulletin-prefect-bench-") as tmp,
            smtp_bench.smtp_sink() as port,
        ):
            work = Path(tmp)
            (work / "prefect").mkdir()
            with smtp_bench.prefect_server(work / "prefect") as env:
                return measure(work, port, env, sizes)
    except smtp_bench.Skip as exc:
        return [("prefect: SKIPPED", "", "", "", "")], [f"prefect bench skipped: {exc}"]


def measure(work: Path, port: int, env: dict, sizes: Sizes) -> tuple[list[Row], list[str]]:
    n = sizes.messages
    made = smtp_bench.Sites(work / "sites", port)
    bare = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    cores, flows = [], []
    for _ in range(sizes.repeats):  # interleaved, so that load drifts hit both alike
        cores.append(measured("core", made.fresh(n, CONNECTIONS), bare, n))
        flows.append(measured("flow", made.fresh(n, CONNECTIONS), env, n))
    core_call = statistics.median(r.call for r in cores)
    flow_call = statistics.median(r.call for r in flows)
    core_wall = statistics.median(r.wall for r in cores)
    flow_wall = statistics.median(r.wall for r in flows)
    ratio = flow_call / core_call
    base = f"core library, {CONNECTIONS} conns"
    rows: list[Row] = [
        (f"publish {n:,} msgs, {CONNECTIONS} conns (x{sizes.repeats}), smtp-sink", "", "", "", ""),
        ("publish flow (Prefect), call", f"{flow_call:.2f} s", base,
         f"{core_call:.2f} s", f"{ratio:.2f}x time"),
        ("publish flow (Prefect), whole process", f"{flow_wall:.2f} s", base + ", process",
         f"{core_wall:.2f} s", f"{flow_wall / core_wall:.2f}x time"),
    ]  # fmt: skip
    errors = [r.error for r in [*cores, *flows] if r.error]
    if sizes.dask:
        runs = {}
        for workers in (1, 2):
            site = made.fresh(n, CONNECTIONS)
            dask_site(site, workers)
            runs[workers] = measured("flow", site, env, n)
            errors += [runs[workers].error] if runs[workers].error else []
        one, two = (n / runs[w].call if runs[w].call else 0 for w in (1, 2))
        rows += [
            (f"flow on Dask, 1 worker, batches of {BATCH:,}", f"{one:,.0f} msgs/s",
             "flow, threads", f"{n / flow_call:,.0f} msgs/s", f"{one * flow_call / n:.2f}x rate"),
            (f"flow on Dask, 2 workers, batches of {BATCH:,}", f"{two:,.0f} msgs/s",
             "Dask, 1 worker", f"{one:,.0f} msgs/s", f"{two / one:.2f}x rate" if one else ""),
        ]  # fmt: skip
    notes = [
        f"prefect: the flow takes {ratio:.2f}x the core's time for {n:,} messages "
        f"(target <= {TARGET}x): {'met' if ratio <= TARGET else 'NOT met'}. "
        f"Dask figures include starting the local cluster (os.cpu_count() = {os.cpu_count()})."
    ]
    notes += [f"prefect bench run incomplete: {e}" for e in errors]
    return rows, notes


def main(argv: list[str]) -> None:
    modes = {"core": core, "flow": flow}
    if len(argv) != 3 or argv[0] not in modes:
        raise SystemExit("usage: prefect_bench.py core|flow SITE OUT.json")
    modes[argv[0]](argv[1], argv[2])


if __name__ == "__main__":
    main(sys.argv[1:])
