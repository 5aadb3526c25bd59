"""The web service under a bounded load on loopback, beside a Starlette hello world.

`bulletin serve` and a minimal Starlette app run under uvicorn (one process each, access
log on in both), one after the other; wrk (Debian's, installed if missing) loads each for a
fixed time with a fixed number of connections. Figures: requests per second and p99 latency
of the archive page and of the RFC 8058 one-click unsubscribe POST (a database write, a
different subscriber each time).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import sites
from smtp_bench import Skip, free_port, stop

Row = tuple[str, str, str, str, str]
KEY = "bench-key"
CONNECTIONS = 16
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
#: wrk's request generator for the one-click POSTs: one path per line of WRK_PATHS, in turn.
ONE_CLICK_LUA = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", paths[(i - 1) % #paths + 1],
    {["Content-Type"] = "application/x-www-form-urlencoded"}, "List-Unsubscribe=One-Click")
end
"""


def find_wrk() -> str:
    """wrk, installing Debian's package (as root) when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Skip("wrk not found; install it: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("web bench: installing wrk ...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise Skip("wrk missing and `apt-get install wrk` failed")
    return found


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


def load(wrk: str, url: str, seconds: int, script: Path | None = None, env=None):
    """(requests per second, p99 seconds) of `seconds` of wrk on one thread, CONNECTIONS
    connections; every answer must be a 200."""
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, env=env, timeout=seconds + 60
    )
    out = done.stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out).groups()
    return rate, float(value) / {"us": 1e6, "ms": 1e3, "s": 1}[unit]


def prepared_site(work: Path, subscribers: int) -> tuple[Path, list[str]]:
    """A published site with `subscribers` on its list; their one-click unsubscribe paths."""
    from pydantic import SecretStr

    from bulletin.config import load_config
    from bulletin.store.database import connect
    from bulletin.store.subscribers import import_csv
    from bulletin.tokens import Signer

    site = sites.make_site(work / "site", 30, words=150)
    sites.publish(site)  # the archive; the readers below join after it, so no outbox for them
    addresses = [f"reader{i:06d}@example.org" for i in range(subscribers)]
    (site / "readers.csv").write_text("email\n" + "\n".join(addresses) + "\n")
    config = load_config(site)
    import_csv(connect(config.database_url), config, site / "readers.csv", "news")
    signer = Signer(SecretStr(KEY))
    return site, [f"unsubscribe/{signer.unsubscribe_token('news', a)}" for a in addresses]


def web(quick: bool) -> list[Row]:
    seconds, readers = (3, 5_000) if quick else (15, 30_000)
    wrk = find_wrk()
    env = {**os.environ, "BULLETIN_SECRET_KEY": KEY, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with tempfile.TemporaryDirectory(prefix="bulletin-web-bench-") as tmp:
        work = Path(tmp)
        site, paths = prepared_site(work, readers)
        (work / "paths.txt").write_text("\n".join("/" + p for p in paths) + "\n")
        (work / "one-click.lua").write_text(ONE_CLICK_LUA)
        hello_port, serve_port = free_port(), free_port()
        hello_command = [sys.executable, "-c", HELLO, str(hello_port)]
        with server(hello_command, hello_port, work / "hello.log", env) as url:
            load(wrk, url, 1)  # warm up
            hello = load(wrk, url, seconds)
        command = [sys.executable, "-m", "bulletin.cli", "--site", str(site), "serve",
                   "--port", str(serve_port)]  # fmt: skip
        with server(command, serve_port, work / "serve.log", env) as url:
            load(wrk, url, 1)
            archive = load(wrk, url, seconds)
            wrk_env = {**os.environ, "WRK_PATHS": str(work / "paths.txt")}
            one_click = load(wrk, url, seconds, work / "one-click.lua", wrk_env)
        unsubscribed = _unsubscribed(site)
    expected = min(readers, round(one_click[0] * seconds))
    if not 0.8 * expected <= unsubscribed <= readers:
        raise RuntimeError(f"{unsubscribed} readers unsubscribed, about {expected} expected")
    base = f"Starlette hello world, GET, {seconds} s"

    def rate(value: float) -> str:
        return f"{value:,.0f} req/s"

    def ms(value: float) -> str:
        return f"{value * 1000:,.1f} ms"

    rows: list[Row] = []
    for name, (rps, p99) in (
        (f"serve: archive GET /, {seconds} s", archive),
        (f"serve: one-click unsubscribe POST, {seconds} s", one_click),
    ):
        rows.append((name, rate(rps), base, rate(hello[0]), f"{rps / hello[0]:.2f}x rate"))
        rows.append(("  p99 latency", ms(p99), "  p99 latency", ms(hello[1]),
                     f"{p99 / hello[1]:.1f}x time"))  # fmt: skip
    return rows


def _unsubscribed(site: Path) -> int:
    from bulletin.config import load_config
    from bulletin.store.database import connect
    from bulletin.store.subscribers import export_csv

    config = load_config(site)
    rows = export_csv(connect(config.database_url), config, "news").splitlines()[1:]
    return sum(row.endswith(",unsubscribed") for row in rows)
