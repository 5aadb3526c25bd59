"""Generates a throw-away site with many approved entries, and publishes it via the core."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "site"

_VOCABULARY = {
    "en": (
        "police customs experts border cooperation training workshop regional network "
        "trafficking firearms drugs investigation prosecutors evidence analysis meeting "
        "partners agreement secretariat officers operation seized shipment routes data "
        "exchange liaison countries southeast europe financial crime assets court judges "
        "report findings recommendations practice methods tools risk assessment joint team"
    ),
    "ro": (
        "poliție vamă experți frontieră cooperare instruire atelier rețea regională trafic "
        "arme droguri investigație procurori probe analiză întâlnire parteneri acord "
        "secretariat ofițeri operațiune confiscat transport rute date schimb legătură țări "
        "europa sud-est criminalitate financiară bunuri instanță judecători raport concluzii "
        "recomandări practică metode instrumente evaluare risc echipă comună"
    ),
}
WORDS = {language: text.split() for language, text in _VOCABULARY.items()}
PLACES = ["Sofia, Bulgaria", "București, România", "Chișinău, Moldova", "Skopje", "Tirana"]
TAGS = ["firearms", "drugs", "training", "customs", "finance"]
APPROVED_AT = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def _sentence(rng: random.Random, words: list[str]) -> str:
    text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 16)))
    return text[0].upper() + text[1:] + "."


def _body(rng: random.Random, language: str, target: int = 300) -> str:
    words = WORDS[language]
    blocks: list[str] = []
    count = 0
    while count < target:
        kind = rng.random()
        if kind < 0.15:
            block = "## " + _sentence(rng, words).rstrip(".")
        elif kind < 0.3:
            block = "\n".join(f"- {_sentence(rng, words)}" for _ in range(rng.randint(2, 4)))
        else:
            sentences = [_sentence(rng, words) for _ in range(rng.randint(2, 5))]
            sentences[0] = f"**{sentences[0]}**"
            if rng.random() < 0.4:
                sentences.append(f"See [the report](https://www.example.org/r/{count}).")
            block = " ".join(sentences)
        blocks.append(block)
        count += len(block.split())
    return "\n\n".join(blocks) + "\n"


def test_signer(config: object) -> object:
    """The fixture site's test approver: its key is a test key, public in the repository."""
    from bulletin.content.approvers import ApproverKey, load

    key = load(FIXTURE.parent / "approvers" / "press-office.key")
    return ApproverKey("press-office", config.approvers["press-office"].name, key)  # type: ignore[attr-defined]


def make_site(
    dest: Path, count: int, seed: int = 1, words: int = 300, span_days: int | None = None
) -> Path:
    """A copy of the fixture site's config and static/ with `count` approved entries
    of about `words` words each; dated one a day from 2024 (cycling over 500 days), or with
    `span_days`, spread evenly over that many days from 2006."""
    from bulletin.config import load_config
    from bulletin.content.approval import approve
    from bulletin.content.entries import load_entry

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE / "bulletin.toml", dest / "bulletin.toml")
    shutil.copytree(FIXTURE / "static", dest / "static")
    content = dest / "content"
    content.mkdir()
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        language = "ro" if i % 3 == 0 else "en"
        if span_days is None:
            date = dt.date(2024, 1, 1) + dt.timedelta(days=i % 500)
        else:
            date = dt.date(2006, 1, 1) + dt.timedelta(days=i * span_days // count)
        tags = rng.sample(TAGS, rng.randint(0, 2))
        path = content / f"{date.isoformat()}-entry-{i:04d}.md"
        path.write_text(
            "---\n"
            f'title: "{_sentence(rng, WORDS[language]).rstrip(".")}"\n'
            f"date: {date.isoformat()}\n"
            f'location: "{rng.choice(PLACES)}"\n'
            f'summary: "{_sentence(rng, WORDS[language])}"\n'
            f"language: {language}\n"
            f"tags: [{', '.join(tags)}]\n"
            "status: draft\n"
            "---\n" + _body(rng, language, words),
            encoding="utf-8",
        )
        paths.append(path)
    config = load_config(dest)
    signer = test_signer(config)
    for i, path in enumerate(paths):
        entry, problems = load_entry(config, path)
        assert entry is not None, problems
        approve(entry, signer, APPROVED_AT + dt.timedelta(minutes=i))
    return dest


def publish(site: Path) -> str:
    """Publish every approved entry as one edition through the core, without Prefect."""
    from bulletin import pipeline as core

    result = core.publish(site)  # the site's own transport: the outbox
    assert result.ended is core.Ended.COMPLETED and result.report.edition, result.message
    return result.report.edition


def history(site: Path, per_edition: int) -> int:
    """Record every entry as published in editions of `per_edition` entries, oldest first,
    each dated its newest entry's day: an archive as years of weekly digests leave it.
    Written into the ledger directly (sending them is not what is measured); returns the
    number of editions."""
    from bulletin.config import load_config
    from bulletin.content.entries import load_entries
    from bulletin.store import ledger
    from bulletin.store.database import connect

    config = load_config(site)
    entries = sorted(load_entries(config).entries, key=lambda e: (e.date, e.slug))
    chunks = [entries[i : i + per_edition] for i in range(0, len(entries), per_edition)]
    with connect(config.database_url).begin() as db:
        for chunk in chunks:
            day = chunk[-1].date
            when = dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)
            edition_id = ledger.next_edition_id(db, day)
            ledger.prepare(db, edition_id, list(reversed(chunk)), [], when)
            ledger.finish(db, edition_id, when)
    return len(chunks)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
