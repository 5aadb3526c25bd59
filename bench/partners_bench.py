"""Partner fan-out: an edition to many webhook endpoints on loopback, each answering slowly.

The partner phase sends to every partner at once, so it should last about as long as the
slowest partner, not the sum of their delays. Baselines, from the same run: the sum of the
delays, and one signed POST to one such endpoint alone. The endpoints run in a process of
their own, so that serving does not compete with the sender for the interpreter.

    python bench/partners_bench.py serve 50 0.2   # the endpoints: prints their URLs, one
                                                  # JSON line, and serves until stdin closes
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sites

SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0wMTIz"  # noqa: S105 -- a benchmark's own
Row = tuple[str, str, str, str, str]


@contextmanager
def slow_endpoint(delay: float) -> Iterator[str]:
    """An HTTP endpoint on 127.0.0.1 that answers 200 after `delay` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _site(dest: Path, urls: list[str]) -> Path:
    """The fixture site with no email lists and one webhook partner per URL."""
    shutil.copytree(sites.FIXTURE, dest)
    text = (dest / "bulletin.toml").read_text()
    text = text[: text.index("[lists.news]")]
    text += '[delivery]\ntransport = "smtp"\n\n'
    for i, url in enumerate(urls):
        text += (
            f"[partners.agency{i:02d}]\nname = {json.dumps(f'Agency {i}')}\n"
            f'webhook = {json.dumps(url)}\nsecret_env = "BENCH_PARTNER_SECRET"\n\n'
        )
    (dest / "bulletin.toml").write_text(text)
    return dest


def _phase(site: Path) -> float:
    from bulletin import pipeline as core
    from bulletin.config import load_config
    from bulletin.delivery.configured import from_config
    from bulletin.delivery.transports import MemoryTransport, TransportFactory
    from bulletin.store.database import connect

    config = load_config(site)
    engine = connect(config.database_url)
    edition = core.plan(config, engine)
    core.record(engine, config, edition)
    partners = from_config(config).partner
    # The sending step alone is timed: the conductor's other steps are not the partners'.
    start = time.perf_counter()
    core.deliver(engine, config, edition,
                 TransportFactory(lambda: MemoryTransport(lambda m: None), partners))  # fmt: skip
    elapsed = time.perf_counter() - start
    tally = core.finish(engine, edition)
    sent = sum(n for (channel, _, status), n in tally.items() if status == "sent")
    assert sent == len(config.partners), f"only {sent} of {len(config.partners)} partners"
    engine.dispose()
    return elapsed


def _single(url: str, repeats: int) -> float:
    from bulletin.delivery.webhooks import WebhookTransport

    times = []
    with WebhookTransport("one", url, SECRET) as transport:
        for i in range(repeats):
            start = time.perf_counter()
            transport.post(b'{"type": "ping", "data": {}}', f"msg_bench_{i}")
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def endpoints(count: int, delay: float) -> Iterator[list[str]]:
    """`count` slow endpoints, served by a child process."""
    child = subprocess.Popen(
        [sys.executable, __file__, "serve", str(count), str(delay)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        yield json.loads(child.stdout.readline())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def serve(count: int, delay: float) -> None:
    with ExitStack() as stack:
        urls = [stack.enter_context(slow_endpoint(delay)) for _ in range(count)]
        print(json.dumps(urls), flush=True)
        sys.stdin.read()


def partners(quick: bool) -> list[Row]:
    count, delay, repeats = (10, 0.2, 1) if quick else (50, 0.2, 3)
    os.environ["BENCH_PARTNER_SECRET"] = SECRET
    with endpoints(count, delay) as urls:
        one = _single(urls[0], 5)
        phases = []
        for run in range(repeats):
            with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
                phases.append(_phase(_site(Path(tmp) / f"site{run}", urls)))
    phase = statistics.median(phases)
    total = count * delay

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:,.0f} ms"

    name = f"partner phase, {count} x {delay * 1000:.0f} ms (x{repeats})"
    return [
        (name, ms(phase), f"sum of the {count} delays", ms(total), f"{phase / total:.2f}x time"),
        ("", "", "one partner alone (measured)", ms(one), f"{phase / one:.1f}x time"),
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(int(sys.argv[2]), float(sys.argv[3]))
