"""The cost of per-language editions: planning and compiling an edition in 12 language
variants beside the same edition in 1, and the personalisation rate across 12 compiled
variants beside 1 (the hot path should not notice: within 10%)."""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sites import FIXTURE

# The member-state languages and English. Bench-only placeholder funding texts: no legal text.
LANGUAGES = ("en", "sq", "bs", "bg", "el", "hu", "mk", "sr-Latn", "ro", "sr", "tr", "cnr")
ITEMS = 6
NOW = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


def _site(root: Path, languages: tuple[str, ...]) -> Path:
    """A site with ITEMS English items, each translated into every other language."""
    from bulletin.config import load_config
    from bulletin.content.approval import approve
    from bulletin.content.entries import load_entry

    site = root / f"site-{len(languages)}"
    (site / "content").mkdir(parents=True)
    shutil.copytree(FIXTURE / "static", site / "static")
    texts = "".join(
        f'\n[funding.eu.text.{code}]\nstatement = "Bench statement ({code})"\n'
        f'disclaimer = "Bench placeholder disclaimer ({code}), not a legal text."\n'
        'source = "benchmark placeholder"\n'
        for code in languages
    )
    (site / "bulletin.toml").write_text(
        '[site]\ntitle = "Bench News"\nurl = "https://news.example.org/"\nlanguage = "en"\n'
        'timezone = "Europe/Bucharest"\ndefault_funding = "eu"\n\n'
        '[sender]\nfrom = "Bench <news@example.org>"\n\n'
        f'[funding.eu]\nemblem = "static/eu-emblem.png"\n{texts}\n'
        '[lists.news]\nname = "Bench News"\n',
        encoding="utf-8",
    )
    paths = []
    for item in range(ITEMS):
        slug = f"2026-01-0{1 + item % 4}-item-{item}"
        for code in languages:
            name = slug if code == "en" else f"{slug}-{code.lower()}"
            link = "" if code == "en" else f"translation_of: {slug}\n"
            path = site / "content" / f"{name}.md"
            body = f"Item {item} in {code}. " * 40
            path.write_text(
                f"---\ntitle: Item {item} ({code})\ndate: 2026-01-01\nlanguage: {code}\n"
                f"summary: The summary of item {item}.\n{link}status: draft\n---\n{body}\n",
                encoding="utf-8",
            )
            paths.append(path)
    config = load_config(site)
    for path in paths:
        entry, problems = load_entry(config, path)
        assert entry is not None, problems
        approve(entry, "Bench", NOW)
    return site


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def languages(quick: bool) -> list[tuple[str, str, str, str, str]]:
    from pydantic import SecretStr

    from bulletin import pipeline as core
    from bulletin.config import load_config
    from bulletin.mail.compiled import CompiledEmail
    from bulletin.pipeline.variants import Chooser
    from bulletin.store.database import connect
    from bulletin.tokens import Signer

    repeats = 5 if quick else 9
    count = 5_000 if quick else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        sites = {n: _site(Path(tmp), LANGUAGES[:n]) for n in (1, 12)}
        configs = {n: load_config(site) for n, site in sites.items()}
        engines = {n: connect(c.database_url) for n, c in configs.items()}
        plans = {}

        def plan_and_compile(n: int) -> None:
            config = configs[n]
            edition = core.plan(config, engines[n], now=NOW, record=False)
            assert edition.edition_id is not None
            plans[n] = {
                language: CompiledEmail(
                    config, email, edition.edition_id, "news", config.lists["news"]
                )
                for language, (email, _) in edition.emails["news"].items()
            }

        planning = {n: _median(lambda n=n: plan_and_compile(n), repeats) for n in (1, 12)}
        assert len(plans[12]) == 12 and len(plans[1]) == 1, {n: list(p) for n, p in plans.items()}

        signer = Signer(SecretStr("k"))
        now = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
        people = [
            (f"reader{i}@example.org", signer.unsubscribe_token("news", f"reader{i}@example.org"),
             LANGUAGES[i % 12].lower())
            for i in range(count)
        ]  # fmt: skip
        runs: dict[int, list[float]] = {1: [], 12: []}
        choosers = {n: Chooser(configs[n], configs[n].lists["news"]) for n in (1, 12)}

        def personalise_all(n: int) -> None:
            compiled, choose = plans[n], choosers[n]
            for address, token, language in people:
                compiled[choose(language)].personalise(address, token, now)

        # Interleaved, so that the machine's load falls on both alike.
        for _ in range(repeats):
            for n in (1, 12):
                runs[n].append(_median(lambda n=n: personalise_all(n), 1))
        rates = {n: count / statistics.median(times) for n, times in runs.items()}
        for engine in engines.values():
            engine.dispose()
    return [
        (
            f"plan + compile, {ITEMS} items, 12 variants",
            f"{planning[12] * 1000:,.0f} ms",
            "the same, 1 variant (English only)",
            f"{planning[1] * 1000:,.0f} ms",
            f"{planning[12] / planning[1]:.1f}x time",
        ),
        (
            f"personalise across 12 variants, {count:,} msgs",
            f"{rates[12]:,.0f} msgs/s",
            "the same, 1 variant",
            f"{rates[1]:,.0f} msgs/s",
            f"{rates[12] / rates[1]:.2f}x rate",
        ),
    ]
