"""The cost of per-language editions: planning and compiling an edition in 12 language
variants beside the same edition in 1, and the personalisation rate across 12 compiled
variants beside 1 (the hot path should not notice: within 10%)."""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import tempfile
from pathlib import Path

from sites import FIXTURE, median_time

# The member-state languages and English. Bench-only placeholder funding texts: no legal text.
LANGUAGES = ("en", "sq", "bs", "bg", "el", "hu", "mk", "sr-Latn", "ro", "sr", "tr", "cnr")
ITEMS = 6
PAGE = 2_000  # deliveries the sending engine takes at a time (delivery.engine.Job.page)
NOW = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


def _site(root: Path, languages: tuple[str, ...], name: str, list_filter: str = "") -> Path:
    """A site with ITEMS English items, each translated into every other language; its
    list `news` has `list_filter` as its extra lines."""
    from bulletin.config import load_config
    from bulletin.content.approval import approve
    from bulletin.content.approvers import ApproverKey, load
    from bulletin.content.entries import load_entry

    site = root / name
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
        '[approvers.press-office]\nname = "Press Office"\n'
        'public_key = "ed25519:AEx5N4e48LxXr7EQk437/K6B5nKA71p0wCcU7zxDnG0="\n\n'
        f'[lists.news]\nname = "Bench News"\n{list_filter}',
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
    # The fixture site's test approver signs: its key is a test key, public in the repository.
    key = load(FIXTURE.parent / "approvers" / "press-office.key")
    signer = ApproverKey("press-office", config.approvers["press-office"].name, key)
    for path in paths:
        entry, problems = load_entry(config, path)
        assert entry is not None, problems
        approve(entry, signer, NOW)
    return site


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
        # "12": 12 languages, 12 variants; "1": the same site and entries, its list narrowed
        # to English (1 variant); "en": a site in English only, without the translations.
        sites = {
            "12": _site(Path(tmp), LANGUAGES, "twelve"),
            "1": _site(Path(tmp), LANGUAGES, "one", 'languages = ["en"]\n'),
            "en": _site(Path(tmp), LANGUAGES[:1], "english"),
        }
        configs = {key: load_config(site) for key, site in sites.items()}
        engines = {key: connect(c.database_url) for key, c in configs.items()}
        plans = {}

        def plan_and_compile(key: str) -> None:
            config = configs[key]
            edition = core.plan(config, engines[key], now=NOW, record=False)
            assert edition.edition_id is not None
            plans[key] = {
                language: CompiledEmail(
                    config, email, edition.edition_id, "news", config.lists["news"]
                )
                for language, (email, _) in edition.variants["news"].items()
            }

        runs: dict[str, list[float]] = {key: [] for key in sites}
        for _ in range(repeats):  # interleaved, so that the machine's load falls on all alike
            for key in sites:
                runs[key].append(median_time(lambda key=key: plan_and_compile(key), 1))
        planning = {key: statistics.median(times) for key, times in runs.items()}
        variants = {key: len(p) for key, p in plans.items()}
        assert variants == {"12": 12, "1": 1, "en": 1}, variants

        signer = Signer(SecretStr("k"))
        people = [
            (f"reader{i}@example.org", signer.unsubscribe_token("news", f"reader{i}@example.org"),
             LANGUAGES[i % 12].lower())
            for i in range(count)
        ]  # fmt: skip
        # In the order sending takes them: each page of the ledger grouped by language.
        people = [
            person
            for start in range(0, count, PAGE)
            for person in sorted(people[start : start + PAGE], key=lambda p: p[2])
        ]
        choosers = {key: Chooser(configs[key], configs[key].lists["news"]) for key in sites}

        def personalise_all(key: str) -> None:
            compiled, choose = plans[key], choosers[key]
            for address, token, language in people:
                compiled[choose(language)].personalise(address, token, NOW)

        sends: dict[str, list[float]] = {"12": [], "1": []}
        for _ in range(repeats):
            for key in sends:
                sends[key].append(median_time(lambda key=key: personalise_all(key), 1))
        rates = {key: count / statistics.median(times) for key, times in sends.items()}
        for engine in engines.values():
            engine.dispose()
    entries = ITEMS * len(LANGUAGES)
    return [
        (
            f"plan + compile, {entries} entries, 12 variants",
            f"{planning['12'] * 1000:,.0f} ms",
            "the same entries, 1 variant",
            f"{planning['1'] * 1000:,.0f} ms",
            f"{planning['12'] / planning['1']:.2f}x time",
        ),
        (
            f"plan + compile, {entries} entries, 12 variants",
            f"{planning['12'] * 1000:,.0f} ms",
            f"{ITEMS} English entries, 1 variant",
            f"{planning['en'] * 1000:,.0f} ms",
            f"{planning['12'] / planning['en']:.1f}x time",
        ),
        (
            f"personalise across 12 variants, {count:,} msgs",
            f"{rates['12']:,.0f} msgs/s",
            "the same, 1 variant",
            f"{rates['1']:,.0f} msgs/s",
            f"{rates['12'] / rates['1']:.2f}x rate",
        ),
    ]
