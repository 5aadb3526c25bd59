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
LANGUAGES = ("en", "sq", "bs", "bg", "el", "hu", "mk", "sr-Latn", "ro", "sr", "tr", "ro-MD")
ITEMS = 6
NOW = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


def _site(root: Path, languages: tuple[str, ...]) -> Path:
    """A site with ITEMS English items, each translated into every other language."""
    from bulletin.config import load_config
    from bulletin.content.approval import approve
    from bulletin.content.entries import load_entry

    site = root / f"site-{len(languages)}"
    shutil.copytree(FIXTURE, site)
    for old in (site / "content").glob("*.md"):
        old.unlink()
    texts = "".join(
        f'\n[funding.eu.text.{code}]\nstatement = "Bench statement ({code})"\n'
        f'disclaimer = "Bench placeholder disclaimer ({code}), not a legal text."\n'
        'source = "benchmark placeholder"\n'
        for code in languages
        if code != "en"
    )
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + texts, encoding="utf-8")
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
    from bulletin.pipeline.variants import default_language, list_languages, reader_language
    from bulletin.store.database import connect
    from bulletin.tokens import Signer

    repeats = 3 if quick else 5
    count = 2_000 if quick else 20_000
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
        rates = {}
        for n in (1, 12):
            compiled = plans[n]
            mailing_list = configs[n].lists["news"]
            codes = list_languages(configs[n], mailing_list)
            default = default_language(configs[n], mailing_list)

            def personalise_all(compiled=compiled, codes=codes, default=default) -> None:
                for address, token, language in people:
                    email = compiled[reader_language(codes, default, language)]
                    email.personalise(address, token, now)

            rates[n] = count / _median(personalise_all, repeats)
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
