"""SMTP throughput: bulletin's publish flow against Postfix's smtp-sink, beside raw smtplib.

Called by bench/run.py (`python bench/run.py --only smtp [--quick]`). On its own:

    python bench/smtp_bench.py --profile [N]   # cProfile of the publish driver, top 15

Every figure is measured in the same run against the same sink on loopback, so the
ratios, not the absolute rates, are the point. Each message is personalised and carries
about 20 KB of HTML (one approved entry with a long body).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from importlib.util import find_spec
from pathlib import Path

import sites

REPO = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "smtp_driver.py"
PY = sys.executable
ENV = {**os.environ, "BULLETIN_SECRET_KEY": "bench-key"}
HOST = "127.0.0.1"
WORDS = 700  # one entry of ~700 words renders to ~20 KB of email HTML
TARGET_RATIO = 0.75  # bulletin end to end / raw smtplib over one connection
TARGET_RSS_MB = 150
TARGET_RSS_GROWTH = 1.2
TOML_DROPPED = ("[lists.desk]", "[partners.")  # one subscriber list, nothing else to send

Row = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Sizes:
    messages: int  # baseline A and bulletin
    emailmessage: int  # baseline B
    tools: int  # prefect-email and mailmerge
    repeats: int  # baseline A/B and bulletin at 4 connections
    memory: tuple[int, ...]  # peak RSS runs


SIZES = {
    "quick": Sizes(500, 50, 30, 1, ()),
    "full": Sizes(20_000, 2_000, 300, 3, (10_000, 100_000)),
}


class Skip(Exception):
    """The benchmark cannot run here; the message says why."""


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} msgs/s"


# -- services ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def find_smtp_sink() -> str:
    """The smtp-sink program, installing Postfix (as root, Debian) when it is missing."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which("smtp-sink", path=path)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Skip("smtp-sink not found (Postfix); install it: apt-get install -y postfix")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "postfix"]
    print("smtp bench: installing postfix for smtp-sink ...", file=sys.stderr)
    done = subprocess.run(install, env=env, capture_output=True)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True)
    found = shutil.which("smtp-sink", path=path)
    if not found:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise Skip(f"smtp-sink missing and `apt-get install postfix` failed: {tail[0]}")
    return found


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Skip(f"{what} exited with status {process.returncode} on start")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise Skip(f"{what} did not listen on {HOST}:{port} within {timeout:g} s")


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """Postfix's smtp-sink on a free loopback port, which takes and drops every message."""
    program = find_smtp_sink()
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [program, *user, f"{HOST}:{port}", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, process, "smtp-sink", 10)
        yield port
    finally:
        stop(process)


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """A Prefect server started once, so that no measured run pays for starting one.

    Yields the environment for the processes that use it."""
    port = free_port()
    env = {
        **ENV,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [PY, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://{HOST}:{port}/api"
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                tail = (home / "server.log").read_text(errors="replace").strip()[-300:]
                raise Skip(f"the Prefect server exited on start: {tail}")
            health = f"{url}/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise Skip("the Prefect server did not answer /api/health within 180 s")
            time.sleep(0.25)
        yield {**env, "PREFECT_API_URL": url}
    finally:
        stop(process, group=True)
        log.close()


def stop(process: subprocess.Popen, group: bool = False) -> None:
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


# -- the site and its message --------------------------------------------------------------


def configure(site: Path, port: int, connections: int) -> None:
    """bulletin.toml: the fixture's, with one subscriber list, sending to the sink."""
    kept, keep = [], True
    for line in (sites.FIXTURE / "bulletin.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            keep = not line.startswith(TOML_DROPPED)
        if keep:
            kept.append(line)
    kept += [
        "",
        "[delivery]",
        'transport = "smtp"',
        f"connections = {connections}",
        "",
        "[delivery.smtp]",
        f'host = "{HOST}"',
        f"port = {port}",
        "timeout = 30",
    ]
    (site / "bulletin.toml").write_text("\n".join(kept) + "\n", encoding="utf-8")


def subscribe(site: Path, count: int) -> None:
    """`count` subscribers on the news list, through bulletin's own CSV import."""
    from bulletin.config import load_config
    from bulletin.store.database import connect
    from bulletin.store.subscribers import import_csv

    path = site.parent / f"subscribers-{count}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "language"])
        writer.writerows([f"reader{i}@example.org", f"Reader {i}", "en"] for i in range(count))
    config = load_config(site)
    engine = connect(config.database_url)
    try:
        report = import_csv(engine, config, path, "news")
    finally:
        engine.dispose()
    assert report.added == count and not report.problems, report


@dataclass
class Material:
    sender: str
    from_: str
    subject: str
    html: str
    text: str
    placeholder: str
    unsubscribe_base: str
    wire: bytes  # bulletin's personalised message for reader0, as it goes over SMTP


def material(site: Path) -> Material:
    from pydantic import SecretStr

    from bulletin.config import load_config
    from bulletin.content.entries import load_entries
    from bulletin.mail.compiled import CompiledEmail
    from bulletin.render.renderer import UNSUBSCRIBE_PLACEHOLDER, Renderer
    from bulletin.tokens import Signer

    config = load_config(site)
    entries = load_entries(config).entries
    edition = "2026-01-01-1"
    news = config.lists["news"]
    rendered = Renderer(config).email(entries, edition, news.name)
    compiled = CompiledEmail(config, rendered, edition, "news", news)
    address = "reader0@example.org"
    token = Signer(SecretStr("bench-key")).unsubscribe_token("news", address)
    when = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    return Material(
        sender=config.sender.address,
        from_=config.sender.from_,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        placeholder=UNSUBSCRIBE_PLACEHOLDER,
        unsubscribe_base=f"{config.site.url}unsubscribe/",
        wire=compiled.personalise(address, token, when, "Reader 0").data,
    )


# -- baselines -----------------------------------------------------------------------------


def median_rate(count: int, repeats: int, fn: Callable[[], None]) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def raw_bytes(port: int, mail: Material, count: int) -> Callable[[], None]:
    """Baseline A: one connection, the same pre-built bytes, only RCPT TO differs."""

    def send() -> None:
        with smtplib.SMTP(HOST, port, timeout=30) as smtp:
            for i in range(count):
                smtp.sendmail(mail.sender, [f"reader{i}@example.org"], mail.wire)

    return send


def raw_escaped(port: int, mail: Material, count: int) -> Callable[[], None]:
    """A': A with the DATA step bulletin uses: the bytes escaped once, sent as they are."""
    from bulletin.delivery.smtp import _sendmail
    from bulletin.mail.message import wire_form

    wire = wire_form(mail.wire)

    def send() -> None:
        with smtplib.SMTP(HOST, port, timeout=30) as smtp:
            smtp.ehlo()
            for i in range(count):
                _sendmail(smtp, mail.sender, f"reader{i}@example.org", mail.wire, [], wire)

    return send


def raw_emailmessage(port: int, mail: Material, count: int) -> Callable[[], None]:
    """Baseline B: one connection, an EmailMessage (text + HTML) built per recipient."""

    def send() -> None:
        now = format_datetime(dt.datetime.now(dt.UTC))
        with smtplib.SMTP(HOST, port, timeout=30) as smtp:
            for i in range(count):
                address = f"reader{i}@example.org"
                url = f"{mail.unsubscribe_base}token-{i}"
                msg = EmailMessage()
                msg["From"] = mail.from_
                msg["To"] = formataddr((f"Reader {i}", address))
                msg["Subject"] = mail.subject
                msg["Date"] = now
                msg["Message-ID"] = f"<bench.{i}@example.org>"
                msg["List-Unsubscribe"] = f"<{url}>"
                msg.set_content(mail.text.replace(mail.placeholder, url))
                msg.add_alternative(mail.html.replace(mail.placeholder, url), subtype="html")
                smtp.send_message(msg)

    return send


def prefect_email(work: Path, env: dict, port: int, mail: Material, count: int) -> str:
    """Baseline C: prefect-email's email_send_message task, one task run per message."""
    if find_spec("prefect_email") is None:
        return "not installed (pip install -e '.[bench]')"
    spec = work / "prefect-email.json"
    spec.write_text(
        json.dumps({
            "subject": mail.subject, "html": mail.html, "text": mail.text,
            "placeholder": mail.placeholder, "from": mail.from_,
        }),
        encoding="utf-8",
    )  # fmt: skip
    out = work / "prefect-email-out.json"
    args = [PY, str(DRIVER), "prefect-email", HOST, str(port), str(count), str(spec), str(out)]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True)
    if not out.exists():
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return f"failed: {tail[0][:60]}"
    result = json.loads(out.read_text())
    if result["error"]:
        return f"failed: {result['error'][:60]}"
    return rate(count, result["seconds"])


def mailmerge(work: Path, port: int, mail: Material, count: int) -> str:
    """Baseline D: the mailmerge CLI, a template and a CSV database, to the sink."""
    # Its console script: `python -m mailmerge` calls main() before the module is complete.
    program = shutil.which("mailmerge", path=str(Path(PY).parent))
    if find_spec("mailmerge") is None or program is None:
        return "not installed (pip install -e '.[bench]')"
    folder = work / "mailmerge"
    folder.mkdir()
    var = "{% endraw %}{{ unsubscribe }}{% raw %}"
    text = mail.text.replace(mail.placeholder, var)
    html = mail.html.replace(mail.placeholder, var)
    subject = Header(mail.subject, "utf-8").encode()  # it sends str, which must be ASCII
    (folder / "template.txt").write_text(
        "TO: {{ email }}\n"
        f"SUBJECT: {subject}\n"
        f"FROM: {mail.from_}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="bench-boundary"\n'
        "\n"
        "--bench-boundary\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "\n"
        "{% raw %}" + text + "{% endraw %}\n"
        "--bench-boundary\n"
        'Content-Type: text/html; charset="utf-8"\n'
        "\n"
        "{% raw %}" + html + "{% endraw %}\n"
        "--bench-boundary--\n",
        encoding="utf-8",
    )
    with (folder / "database.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "unsubscribe"])
        writer.writerows(
            [f"reader{i}@example.org", f"{mail.unsubscribe_base}token-{i}"] for i in range(count)
        )
    (folder / "server.conf").write_text(f"[smtp_server]\nhost = {HOST}\nport = {port}\n")
    args = [
        program, "--template", "template.txt", "--database", "database.csv",
        "--config", "server.conf", "--no-dry-run", "--no-limit", "--output-format", "text",
    ]  # fmt: skip
    output = folder / "output.txt"
    with output.open("wb") as handle:
        start = time.perf_counter()
        done = subprocess.run(args, cwd=folder, stdout=handle, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
    sent = sum(
        line.startswith(">>> message ") and line.rstrip().endswith(" sent")
        for line in output.read_text(encoding="utf-8", errors="replace").splitlines()
    )
    if done.returncode != 0 or sent != count:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return f"failed after {sent} sent: {tail[0][:50]}"
    return rate(count, seconds)


# -- bulletin through the publish flow -----------------------------------------------------


@dataclass
class Publish:
    count: int
    connections: int
    wall: float  # the whole subprocess
    flow: float  # the flow function call
    deliver: float  # core.deliver inside it
    rss_mb: float  # peak resident set of the subprocess
    sent: int
    other: dict[str, int]
    error: str | None
    #: the driver's clock: when the flow and the deliver step started and ended (seconds)
    timings: dict[str, float] = field(default_factory=dict)
    #: (seconds, MB) each time the driver's peak RSS grew, from its own watch
    peaks: list[tuple[float, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.sent == self.count and not self.other


class Sites:
    """Sites with N subscribers, imported once per N and copied for every run."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.entry = sites.make_site(root / "entry", 1, words=WORDS)
        configure(self.entry, port, 1)
        self._made: dict[int, Path] = {}
        self._runs = 0

    def fresh(self, count: int, connections: int) -> Path:
        if count not in self._made:
            template = self.root / f"subscribers-{count}" / "site"
            shutil.copytree(self.entry, template)
            subscribe(template, count)
            self._made[count] = template
        self._runs += 1
        site = self.root / f"run-{self._runs}" / "site"
        shutil.copytree(self._made[count], site)
        configure(site, self.port, connections)
        return site


def publish(
    site: Path, env: dict, count: int, connections: int, profile: Path | None = None
) -> Publish:
    out = site.parent / "driver.json"
    args = [PY, str(DRIVER), "publish", str(site), str(out)]
    if profile:
        args += ["--profile", str(profile)]
    with (site.parent / "driver.log").open("wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
    timings = json.loads(out.read_text()) if out.exists() else {}
    error = timings.get("error")
    if process.returncode != 0:
        error = error or f"driver exited with status {process.returncode} (see driver.log)"
    tally = ledger_tally(site)
    sent = tally.pop("sent", 0)
    return Publish(
        count=count,
        connections=connections,
        wall=wall,
        flow=timings.get("flow_end", 0) - timings.get("flow_start", 0),
        deliver=timings.get("deliver_end", 0) - timings.get("deliver_start", 0),
        # The driver's own peak; ru_maxrss would count this process's peak too (see there).
        rss_mb=timings.get("peak_rss_mb") or usage.ru_maxrss / 1024,  # kilobytes on Linux
        sent=sent,
        other=tally,
        error=error,
        timings={k: v for k, v in timings.items() if isinstance(v, float)},
        peaks=[tuple(p) for p in timings.get("peaks", [])],
    )


def ledger_tally(site: Path) -> dict[str, int]:
    """Deliveries by status over every edition of the site, from bulletin's ledger."""
    from bulletin.config import load_config
    from bulletin.store import ledger
    from bulletin.store.database import connect

    config = load_config(site)
    engine = connect(config.database_url)
    tally: dict[str, int] = {}
    try:
        with engine.connect() as db:
            for edition in ledger.all_editions(db):
                for (_, _, status), n in ledger.counts(db, edition.id).items():
                    tally[status] = tally.get(status, 0) + n
    finally:
        engine.dispose()
    return tally


def median_publish(runs: list[Publish]) -> Publish:
    return sorted(runs, key=lambda r: r.wall)[len(runs) // 2]


def checked(run: Publish) -> str:
    if run.ok:
        return ""
    problem = run.error or f"ledger: {run.sent:,} sent of {run.count:,}, others {run.other}"
    return f" [INCOMPLETE: {problem[:70]}]"


# -- the benchmark -------------------------------------------------------------------------


def smtp(quick: bool) -> tuple[list[Row], list[str]]:
    """Rows for bench/run.py's table, and the lines about targets printed below it."""
    sizes = SIZES["quick" if quick else "full"]
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bulletin-smtp-bench-") as tmp,
            smtp_sink() as port,
        ):
            work = Path(tmp)
            (work / "prefect").mkdir()
            with prefect_server(work / "prefect") as env:
                return measure(work, port, env, sizes)
    except Skip as exc:
        return [("smtp: SKIPPED", "", "", "", "")], [f"smtp bench skipped: {exc}"]


def measure(work: Path, port: int, env: dict, sizes: Sizes) -> tuple[list[Row], list[str]]:
    n, repeats = sizes.messages, sizes.repeats
    made = Sites(work / "sites", port)
    mail = material(made.entry)
    size = (
        f"{len(mail.html.encode()) / 1024:.1f} KB HTML, {len(mail.wire) / 1024:.1f} KB on the wire"
    )

    a = median_rate(n, repeats, raw_bytes(port, mail, n))
    a_escaped = median_rate(n, repeats, raw_escaped(port, mail, n))
    b_n = sizes.emailmessage
    b = median_rate(b_n, repeats, raw_emailmessage(port, mail, b_n))
    c = prefect_email(work, env, port, mail, sizes.tools)
    d = mailmerge(work, port, mail, sizes.tools)

    fours = [publish(made.fresh(n, 4), env, n, 4) for _ in range(repeats)]
    four = median_publish(fours)
    one = publish(made.fresh(n, 1), env, n, 1)
    eight = publish(made.fresh(n, 8), env, n, 8)
    best = max([four, one, eight], key=lambda r: n / r.wall)

    base_a = "A: raw smtplib, bytes, 1 conn"
    a_value = f"{a:,.0f} msgs/s"

    def vs_a(run_rate: float) -> str:
        return f"{run_rate / a:.2f}x rate"

    def rated(seconds: float) -> float:
        return n / seconds if seconds > 0 else 0.0

    rows: list[Row] = [
        (f"smtp-sink, {n:,} msgs of {size}", "", "", "", ""),
        (f"A: raw smtplib loop, pre-built bytes, {n:,} (x{repeats})", a_value, "", "", ""),
        (f"A': A, DATA pre-escaped as bulletin sends it, {n:,} (x{repeats})",
         f"{a_escaped:,.0f} msgs/s", base_a, a_value, vs_a(a_escaped)),
        (f"B: raw smtplib, EmailMessage per msg, {b_n:,} (x{repeats})", f"{b:,.0f} msgs/s",
         base_a, a_value, vs_a(b)),
    ]  # fmt: skip
    for name, value in ((f"C: prefect-email task per msg, {sizes.tools}", c),
                        (f"D: mailmerge CLI, {sizes.tools}", d)):  # fmt: skip
        ratio = vs_a(float(value.split()[0].replace(",", ""))) if value.endswith("/s") else ""
        rows.append((name, value, base_a, a_value, ratio))
    for label, run in ((f"4 conns (x{repeats})", four), ("1 conn", one), ("8 conns", eight)):
        whole, phase = rated(run.wall), rated(run.deliver)
        rows += [
            (f"bulletin flow, {n:,}, {label}: subprocess{checked(run)}",
             f"{whole:,.0f} msgs/s", base_a, a_value, vs_a(whole)),
            (f"  deliver phase (core.deliver) {run.deliver:.1f} s of {run.wall:.1f} s",
             f"{phase:,.0f} msgs/s", base_a, a_value, vs_a(phase)),
        ]  # fmt: skip
    rows.append(
        (f"ledger: sent of {n:,}, 4 conns", f"{four.sent:,}" + (" ok" if four.ok else " BAD"),
         "", "", "")
    )  # fmt: skip

    best_ratio = n / best.wall / a
    notes = [
        f"smtp: best end to end is {best.connections} connection(s); the table's rates are "
        "whole-subprocess (Python + Prefect client start-up included) or core.deliver alone.",
        "smtp: A' is the one-connection limit of bulletin's own DATA step (smtplib's sendmail "
        "re-escapes each 40 KB message with a regular expression; bulletin escapes once).",
        f"target: bulletin end to end >= {TARGET_RATIO} x A at N = {n:,}: "
        f"{best_ratio:.2f}x -> {'met' if best_ratio >= TARGET_RATIO else 'NOT met'}"
        + ("" if n == SIZES["full"].messages else " (quick run: N too small to judge)"),
    ]

    memory = [publish(made.fresh(count, 4), env, count, 4) for count in sizes.memory]
    if memory:
        small, large = memory[0], memory[-1]
        growth = large.rss_mb / small.rss_mb
        for run in memory:
            rows.append(
                (f"peak RSS, publish subprocess, {run.count:,}, 4 conns "
                 f"({rated_count(run):,.0f} msgs/s){checked(run)}",
                 f"{run.rss_mb:,.0f} MB", "", "", "")
            )  # fmt: skip
        rows.append((f"peak RSS {large.count:,} / {small.count:,}", f"{growth:.2f}x", "", "", ""))
        notes.append(
            f"target: {large.count:,} completes ({'yes' if large.ok else 'NO'}), peak <= "
            f"{TARGET_RSS_MB} MB ({large.rss_mb:,.0f} MB: "
            f"{'met' if large.rss_mb <= TARGET_RSS_MB else 'NOT met'}), <= {TARGET_RSS_GROWTH}x "
            f"the {small.count:,} run ({growth:.2f}x: "
            f"{'met' if growth <= TARGET_RSS_GROWTH else 'NOT met'})"
        )
    else:
        notes.append("memory runs (10,000 and 100,000 subscribers) skipped in --quick")
    return rows, notes


def rated_count(run: Publish) -> float:
    return run.count / run.wall if run.wall > 0 else 0.0


def profile(count: int = 20_000, connections: int = 4, top: int = 15) -> None:
    """cProfile of the publish driver (every thread), the top functions by own time."""
    import pstats

    with (
        tempfile.TemporaryDirectory(prefix="bulletin-smtp-profile-") as tmp,
        smtp_sink() as port,
    ):
        work = Path(tmp)
        (work / "prefect").mkdir()
        with prefect_server(work / "prefect") as env:
            site = Sites(work / "sites", port).fresh(count, connections)
            stats_path = work / "publish.prof"
            run = publish(site, env, count, connections, profile=stats_path)
            print(
                f"{count:,} msgs, {connections} conns: {run.wall:.1f} s subprocess, "
                f"deliver {run.deliver:.1f} s (profiled, so slower){checked(run)}"
            )
            pstats.Stats(str(stats_path)).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        rest = sys.argv[sys.argv.index("--profile") + 1 :]
        profile(int(rest[0]) if rest else 20_000)
    else:
        rows, notes = smtp("--quick" in sys.argv)
        for row in rows:
            print("  ".join(cell for cell in row if cell))
        print("\n".join(notes))
