"""bulletin's benchmarks, each beside a baseline measured in the same run.

    python bench/run.py              # full: 1,000 entries, 20,000 messages
    python bench/run.py --quick      # smoke run, a minute or two
    python bench/run.py --only smtp  # one section: cold, build, messages, dkim, smtp, partners,
                                     # web, prefect, inbound, ledger, accessibility, input,
                                     # languages, latency, archive or million (only when
                                     # asked for: 1.1 million messages)

Machines are noisy, so every figure is the median of several repeats and the table's
point is the ratio to its baseline. Benchmarks report; they do not fail, except when
`bulletin check` imports Prefect (a start-up regression), which exits with status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import accessibility_bench
import archive_bench
import dkim_bench
import inbound_bench
import input_bench
import languages_bench
import latency_bench
import ledger_bench
import million_bench
import partners_bench
import prefect_bench
import sites
import smtp_bench
import web_bench
from sites import median_time

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "BULLETIN_SECRET_KEY": "bench-key"}
PREFECT_PROBE = (
    "import contextlib, io, sys\n"
    "from bulletin.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    main(['--site', sys.argv[1], 'check'])\n"
    "print('yes' if any(m.split('.')[0] == 'prefect' for m in sys.modules) else 'no')\n"
)

Row = tuple[str, str, str, str, str]
SECTIONS = (
    "cold",
    "build",
    "messages",
    "dkim",
    "smtp",
    "partners",
    "web",
    "prefect",
    "inbound",
    "ledger",
    "accessibility",
    "input",
    "languages",
    "latency",
    "archive",
    "million",
)
# cold-start runs, entries, build runs, messages, baseline messages, message runs
SIZES = {"quick": (3, 20, 1, 500, 50, 3), "full": (7, 1_000, 3, 20_000, 2_000, 3)}


def run(*args: str) -> Callable[[], None]:
    def call() -> None:
        subprocess.run([PY, *args], cwd=REPO, env=ENV, check=True, capture_output=True)

    return call


def cli(site: Path, *args: str) -> Callable[[], None]:
    return run("-m", "bulletin.cli", "--site", str(site), *args)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def cold_start(repeats: int) -> tuple[list[Row], bool]:
    check = median_time(cli(REPO, "check"), repeats)
    bare = median_time(run("-c", "pass"), repeats)
    probe = subprocess.run(
        [PY, "-c", PREFECT_PROBE, str(REPO)],
        cwd=REPO, env=ENV, capture_output=True, text=True, check=True,
    )  # fmt: skip
    imported = probe.stdout.strip().splitlines()[-1] == "yes"
    rows = [
        (
            f"cold start: bulletin check (x{repeats})",
            ms(check),
            "python -c pass",
            ms(bare),
            f"{check / bare:.1f}x time",
        ),
        ("prefect imported by check", "yes" if imported else "no", "", "", ""),
    ]
    return rows, imported


def build(count: int, repeats: int) -> list[Row]:
    from bulletin.config import load_config
    from bulletin.content.approval import approval_problem, content_hash
    from bulletin.content.entries import load_entries

    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        site = sites.make_site(Path(tmp) / "site", count)
        config = load_config(site)
        loaded = load_entries(config)
        assert not loaded.problems and len(loaded.entries) == count
        load = median_time(lambda: load_entries(config), repeats)
        pages = median_time(lambda: jinja_pages(loaded.entries), repeats)
        assert all(approval_problem(config, e) is None for e in loaded.entries)
        verify = median_time(lambda: [approval_problem(config, e) for e in loaded.entries], repeats)
        hashes = median_time(
            lambda: [content_hash(e.meta, e.body) for e in loaded.entries], repeats
        )
        preview = median_time(cli(site, "build"), repeats)
        sites.publish(site)
        archive = median_time(cli(site, "build"), repeats)

    def rate(seconds: float) -> str:
        return f"{seconds:.2f} s ({count / seconds:,.0f} entries/s)"

    n = f"{count:,}"
    load_name, pages_name = f"load_entries, {n} (md+nh3)", f"plain Jinja2, {n} pages"
    return [
        (f"build, {n} published (x{repeats})", rate(archive), load_name, rate(load),
         f"{archive / load:.1f}x time"),
        ("", "", pages_name, rate(pages), f"{archive / pages:.1f}x time"),
        (f"verify signed approvals, {n}", rate(verify), f"content hashes only, {n}",
         rate(hashes), f"{verify / hashes:.1f}x time"),
        ("", "", load_name, rate(load), f"{verify / load:.2f}x time"),
        (f"build, {n} pending preview (x{repeats})", rate(preview), load_name, rate(load),
         f"{preview / load:.1f}x time"),
    ]  # fmt: skip


PAGE = """<!doctype html><html lang="{{ e.language }}"><head><title>{{ e.title }}</title></head>
<body><h1>{{ e.title }}</h1><p>{{ e.date }} · {{ e.location }}</p>
<ul>{% for t in e.tags %}<li>{{ t }}</li>{% endfor %}</ul>{{ e.html | safe }}</body></html>"""


def jinja_pages(entries: list) -> None:
    import jinja2

    template = jinja2.Environment(autoescape=True).from_string(PAGE)
    for entry in entries:
        template.render(e=entry).encode()


def messages(count: int, baseline_count: int, repeats: int) -> list[Row]:
    from email.parser import BytesParser
    from email.policy import default

    from pydantic import SecretStr

    from bulletin.config import load_config
    from bulletin.content.entries import load_entries
    from bulletin.mail.compiled import CompiledEmail
    from bulletin.render.renderer import Renderer
    from bulletin.tokens import Signer

    config = load_config(sites.FIXTURE)
    entries = load_entries(config).entries
    edition = "2026-01-01-1"
    rendered = Renderer(config).email(entries, edition, "News")
    compiled = CompiledEmail(config, rendered, edition, "news", config.lists["news"])
    signer = Signer(SecretStr("k"))
    now = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    people = [
        (f"reader{i}@example.org", signer.unsubscribe_token("news", f"reader{i}@example.org"),
         f"Reader {i}")
        for i in range(count)
    ]  # fmt: skip

    address, token, name = people[7]
    parsed = BytesParser(policy=default).parsebytes(
        compiled.personalise(address, token, now, name).data
    )
    html = parsed.get_body(("html",)).get_content()
    assert f"{config.site.url}unsubscribe/{token}" in html, "unsubscribe URL missing"
    assert address in parsed["To"]

    def personalise_all() -> None:
        for address, token, name in people:
            compiled.personalise(address, token, now, name)

    standard = standard_builder(config, compiled, rendered, now)
    parsed = BytesParser(policy=default).parsebytes(standard(*people[7]))
    assert token in parsed.get_body(("html",)).get_content()

    def standard_all() -> None:
        for person in people[:baseline_count]:
            standard(*person)

    def sealed_tokens_and_personalise() -> None:
        for address, _, name in people:
            compiled.personalise(address, signer.unsubscribe_token("news", address), now, name)

    def hmac_tokens_and_personalise() -> None:
        for address, _, name in people:
            compiled.personalise(address, readable_token(b"k", "news", address), now, name)

    fast = count / median_time(personalise_all, repeats)
    slow = baseline_count / median_time(standard_all, repeats)
    sealed = count / median_time(sealed_tokens_and_personalise, repeats)
    readable = count / median_time(hmac_tokens_and_personalise, repeats)
    return [
        (
            f"personalise, {count:,} msgs (x{repeats})",
            f"{fast:,.0f} msgs/s",
            f"EmailMessage.as_bytes, {baseline_count:,}",
            f"{slow:,.0f} msgs/s",
            f"{fast / slow:.1f}x rate",
        ),
        (
            f"sealed token + personalise, {count:,}",
            f"{sealed:,.0f} msgs/s",
            "readable HMAC token + personalise",
            f"{readable:,.0f} msgs/s",
            f"{sealed / readable:.2f}x rate",
        ),
    ]


def readable_token(key: bytes, list_key: str, address: str) -> str:
    """An unsubscribe token as bulletin made them before tokens were sealed: the payload in
    base64 (readable), then an HMAC-SHA256 truncated to 20 bytes."""
    import base64
    import hashlib
    import hmac

    payload = f"unsubscribe\n{list_key}\n{address}".encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:20]
    b64 = base64.urlsafe_b64encode
    return (b64(payload).rstrip(b"=") + b"." + b64(mac).rstrip(b"=")).decode("ascii")


def standard_builder(config, compiled, rendered, now) -> Callable[..., bytes]:
    """Per recipient, the same message built the standard-library way."""
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, formataddr

    from bulletin.render.renderer import UNSUBSCRIBE_PLACEHOLDER

    emblems = [(n.cid, (config.root / n.emblem).read_bytes()) for n in rendered.notices]
    reply = config.sender.reply_to or config.sender.address

    def build(address: str, token: str, name: str) -> bytes:
        url = f"{config.site.url}unsubscribe/{token}"
        msg = EmailMessage()
        msg["From"] = config.sender.from_
        msg["Reply-To"] = reply
        msg["To"] = formataddr((name, address))
        msg["Subject"] = rendered.subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = compiled.message_id(address)
        msg["List-Id"] = f"{config.lists['news'].name} <news.{config.sender.domain}>"
        msg["List-Unsubscribe"] = f"<{url}>, <mailto:{reply}?subject=unsubscribe>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Precedence"] = "bulk"
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, url))
        msg.add_alternative(rendered.html.replace(UNSUBSCRIBE_PLACEHOLDER, url), subtype="html")
        html_part = msg.get_payload()[1]
        for cid, png in emblems:
            html_part.add_related(png, "image", "png", cid=f"<{cid}>", disposition="inline")
        return msg.as_bytes(policy=SMTP)

    return build


def table(rows: list[Row]) -> str:
    head: Row = ("figure", "measured", "baseline (same run)", "baseline value", "ratio")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = []
    for row in [head, *rows]:
        cells = [c.rjust(w) if i in (1, 3, 4) else c.ljust(w) for i, (c, w) in enumerate(
            zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    args = parser.parse_args(argv)
    only = set(args.only or SECTIONS[:-1])  # million only when asked for
    cold_runs, entries, build_runs, msgs, baseline_msgs, msg_runs = SIZES[
        "quick" if args.quick else "full"
    ]
    rows: list[Row] = []
    notes: list[str] = []
    prefect = False
    if "cold" in only:
        cold, prefect = cold_start(cold_runs)
        rows += cold
    if "build" in only:
        rows += build(entries, build_runs)
    if "messages" in only:
        rows += messages(msgs, baseline_msgs, msg_runs)
    if "dkim" in only:
        rows += dkim_bench.dkim(args.quick)
    if "input" in only:
        rows += input_bench.input_limits(args.quick)
    if "smtp" in only:
        smtp_rows, notes = smtp_bench.smtp(args.quick)
        rows += smtp_rows
    if "partners" in only:
        rows += partners_bench.partners(args.quick)
    if "ledger" in only:
        rows += ledger_bench.ledger_rows(args.quick)
    if "web" in only:
        rows += web_bench.web(args.quick)
        notes.append(
            f"web: wrk, 1 thread and {web_bench.CONNECTIONS} connections on loopback; serve and "
            "the hello world each one uvicorn process with its access log on."
        )
    if "languages" in only:
        rows += languages_bench.languages(args.quick)
    if "prefect" in only:
        prefect_rows, prefect_notes = prefect_bench.prefect(args.quick)
        rows += prefect_rows
        notes += prefect_notes
    if "inbound" in only:
        rows += inbound_bench.inbound(args.quick)
    if "accessibility" in only:
        rows += accessibility_bench.accessibility(args.quick, REPO)
    for name, section in (
        ("latency", latency_bench.latency),
        ("archive", archive_bench.archive),
        ("million", million_bench.million),
    ):
        if name in only:
            section_rows, section_notes = section(args.quick)
            rows += section_rows
            notes += section_notes
    print(table(rows))
    print("ratio: measured / baseline, of times (lower is better) or rates (higher is better);")
    if "build" in only:
        print("build runs as a subprocess (start-up included), its baselines in-process.")
    for note in notes:
        print(note)
    if prefect:
        print("REGRESSION: `bulletin check` imports prefect", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
