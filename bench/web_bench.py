"""The web service under a bounded load on loopback, beside a Starlette hello world.

`bulletin serve` and a minimal Starlette app run under uvicorn (one process each, access
log on in both), one after the other; a threaded httpx client sends a fixed number of
requests to each. Figures: requests per second and p99 latency of the archive page and of
the RFC 8058 one-click unsubscribe POST (a database write, a different subscriber each time).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import sites
from smtp_bench import free_port, stop

Row = tuple[str, str, str, str, str]
KEY = "bench-key"
THREADS = 8
TIME_LIMIT = 60.0  # seconds per measurement, whatever the count
HELLO = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("Hello, world!")

app = Starlette(routes=[Route("/", hello)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
"""


@contextlib.contextmanager
def server(command: list[str], port: int, log: Path, env: dict) -> Iterator[str]:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(url, timeout=1)
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        stop(process)


def load(count: int, request: Callable[[httpx.Client, int], httpx.Response]) -> tuple[float, float]:
    """Send `count` requests from THREADS threads; (requests per second, p99 seconds)."""
    latencies: list[float] = []
    failures: list[str] = []
    next_index = iter(range(count))
    lock = threading.Lock()
    deadline = time.monotonic() + TIME_LIMIT

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                start = time.perf_counter()
                response = request(client, index)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        failures.append(str(response.status_code))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. status {failures[0]}")
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / wall, p99


def prepared_site(work: Path, subscribers: int) -> tuple[Path, list[str]]:
    """A published site with `subscribers` on its list; their one-click unsubscribe paths."""
    from pydantic import SecretStr

    from bulletin.config import load_config
    from bulletin.database import connect
    from bulletin.subscribers import import_csv
    from bulletin.tokens import Signer

    site = sites.make_site(work / "site", 30, words=150)
    addresses = [f"reader{i:06d}@example.org" for i in range(subscribers)]
    (site / "subscribers.csv").write_text("email\n" + "\n".join(addresses) + "\n")
    config = load_config(site)
    import_csv(connect(config.database_url), config, site / "subscribers.csv", "news")
    sites.publish(site)
    signer = Signer(SecretStr(KEY))
    return site, [f"unsubscribe/{signer.unsubscribe_token('news', a)}" for a in addresses]


def web(quick: bool) -> list[Row]:
    count = 400 if quick else 4_000
    env = {**os.environ, "BULLETIN_SECRET_KEY": KEY, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with tempfile.TemporaryDirectory(prefix="bulletin-web-bench-") as tmp:
        work = Path(tmp)
        site, paths = prepared_site(work, count)
        hello_port, serve_port = free_port(), free_port()
        with server(
            [sys.executable, "-c", HELLO, str(hello_port)], hello_port, work / "hello.log", env
        ) as url:
            load(count // 4, lambda c, i: c.get(url))  # warm up
            hello = load(count, lambda c, i: c.get(url))
        command = [sys.executable, "-m", "bulletin.cli", "--site", str(site), "serve",
                   "--port", str(serve_port)]  # fmt: skip
        with server(command, serve_port, work / "serve.log", env) as url:
            load(count // 4, lambda c, i: c.get(url))
            archive = load(count, lambda c, i: c.get(url))
            one_click = load(
                count,
                lambda c, i: c.post(
                    url + paths[i],
                    content=b"List-Unsubscribe=One-Click",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                ),
            )
        unsubscribed = _unsubscribed(site)
    if unsubscribed != count:
        raise RuntimeError(f"{unsubscribed} of {count} subscribers unsubscribed")
    base = f"Starlette hello world, {count:,} GETs"

    def rate(value: float) -> str:
        return f"{value:,.0f} req/s"

    def ms(value: float) -> str:
        return f"{value * 1000:,.1f} ms"

    rows: list[Row] = []
    for name, (rps, p99) in (
        (f"serve: archive GET /, {count:,} requests", archive),
        (f"serve: one-click unsubscribe POST, {count:,}", one_click),
    ):
        rows.append((name, rate(rps), base, rate(hello[0]), f"{rps / hello[0]:.2f}x rate"))
        rows.append(("  p99 latency", ms(p99), "  p99 latency", ms(hello[1]),
                     f"{p99 / hello[1]:.1f}x time"))  # fmt: skip
    return rows


def _unsubscribed(site: Path) -> int:
    from bulletin.config import load_config
    from bulletin.database import connect
    from bulletin.subscribers import export_csv

    config = load_config(site)
    rows = export_csv(connect(config.database_url), config, "news").splitlines()[1:]
    return sum(row.endswith(",unsubscribed") for row in rows)


if __name__ == "__main__":
    from run import table

    print(table(web("--quick" in sys.argv)))
    print(
        f"{THREADS} client threads on loopback; both servers: one uvicorn process, access log on."
    )
