"""Translations and per-language editions: each reader gets the edition in their language,
with its words, dates and funding notices, and every variant passes the compliance gate."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import re
import tomllib
from pathlib import Path

import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.content.approval import approve
from bulletin.content.entries import load_entry
from bulletin.delivery.configured import from_config
from bulletin.errors import ContentError
from bulletin.render.i18n import date_range
from bulletin.render.words import ENGLISH, labels
from bulletin.store.database import connect
from bulletin.store.subscribers import import_csv
from tests.conftest import REPO, approver_key, run_cli

# Test fixtures only, not legal wording: the statement is the reference table's, the
# disclaimer is marked as a placeholder.
BG_FUNDING = """
[funding.eu.text.bg]
statement = "Финансирано от Европейския съюз"
disclaimer = "Тестов текст на отказа от отговорност (не е правен текст)."
source = "test fixture"
"""
ORIGINAL = "2019-11-13-sofia-workshop"
RO_TITLE = "Atelier despre traficul de arme și droguri"
BG_TITLE = "Семинар за трафика на оръжия и наркотици"
NOW = dt.datetime(2019, 12, 10, 9, tzinfo=dt.UTC)


def _write(site: Path, name: str, language: str, title: str, body: str, **extra: str) -> Path:
    fields = "".join(f"{key}: {value}\n" for key, value in extra.items())
    path = site / "content" / f"{name}.md"
    path.write_text(
        f"---\ntitle: {title}\ndate: 2019-11-12\nend_date: 2019-11-13\nlanguage: {language}\n"
        f"{fields}status: draft\n---\n{body}\n",
        encoding="utf-8",
    )
    return path


def _approve(site: Path, path: Path) -> None:
    config = load_config(site)
    entry, problems = load_entry(config, path)
    assert entry is not None, problems
    approve(entry, approver_key(config), NOW)


def _translated_site(site: Path, fallback: str = "original") -> Path:
    """The fixture site with bg texts, a ro and a bg translation of the Sofia workshop, an
    untranslated English entry, and a list `news` with a ro, an en, a bg and a sl reader."""
    toml = site / "bulletin.toml"
    text = toml.read_text(encoding="utf-8") + BG_FUNDING
    text = text.replace(
        'name = "Fixture News"\n', f'name = "Fixture News"\nfallback = "{fallback}"\n'
    )
    toml.write_text(text, encoding="utf-8")
    for path in (
        _write(site, "2019-11-13-atelier-sofia", "ro", RO_TITLE, "Experți din toate statele.",
               translation_of=ORIGINAL),
        _write(site, "2019-11-13-seminar-sofia", "bg", BG_TITLE, "Експерти от всички държави.",
               translation_of=ORIGINAL),
        _write(site, "2019-11-20-annual-report", "en", "Annual report", "The year in figures."),
    ):  # fmt: skip
        _approve(site, path)
    (site / "subscribers.csv").write_text(
        "email,name,language\nana@example.org,Ana,ro\njohn@example.com,John,en\n"
        "ivan@example.org,Ivan,bg\nmaja@example.org,Maja,sl\n",
        encoding="utf-8",
    )
    return site


def _publish(site: Path) -> dict[str, email.message.EmailMessage]:
    config = load_config(site)
    engine = connect(config.database_url)
    import_csv(engine, config, site / "subscribers.csv", "news")
    edition = core.plan(config, engine, now=NOW)
    core.record(engine, config, edition)
    core.deliver(engine, config, edition, from_config(config))
    messages = {}
    for path in (site / "outbox" / "email").rglob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        messages[str(message["To"]).split("<")[-1].rstrip(">")] = message
    engine.dispose()
    return messages


def _html(message: email.message.EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _titles(html: str) -> list[str]:
    return re.findall(r"<h1[^>]*>([^<]+)</h1>", html)


def test_each_reader_gets_the_edition_in_their_language(site):
    messages = _publish(_translated_site(site))
    ana, john, ivan = (
        messages[a] for a in ("ana@example.org", "john@example.com", "ivan@example.org")
    )

    assert ana["Content-Language"] == "ro"
    assert '<html lang="ro"' in _html(ana)
    assert sorted(_titles(_html(ana))) == sorted(
        ["Annual report", RO_TITLE, "Curs regional privind investigațiile financiare"]
    )
    assert "Citiți online" in _html(ana) and "noiembrie 2019" in _html(ana)
    assert "Acest proiect este finanțat" in _html(ana)  # ro items: the ro notice
    assert "This project is funded by" in _html(ana)  # the English report: the en notice
    # The subject leads with an item in her language: the newest Romanian one.
    assert ana["Subject"] == "Fixture News: Curs regional privind investigațiile financiare (+2)"

    assert john["Content-Language"] == "en"
    assert '<html lang="en"' in _html(john)
    assert ORIGINAL.split("-")[-1] not in _titles(_html(john))
    assert "Workshop on firearms and drug trafficking" in _titles(_html(john))
    assert RO_TITLE not in _html(john) and BG_TITLE not in _html(john)

    assert ivan["Content-Language"] == "bg"
    assert BG_TITLE in _titles(_html(ivan))
    assert "Прочетете онлайн" in _html(ivan)
    assert "Финансирано от Европейския съюз" in _html(ivan)
    assert _html(ivan).count("Тестов текст на отказа") == 1  # the disclaimer once


def test_readers_of_a_language_the_site_lacks_and_external_lists_get_the_site_language(site):
    messages = _publish(_translated_site(site))
    maja = messages["maja@example.org"]
    assert maja["Content-Language"] == "en"
    assert _titles(_html(maja)) == _titles(_html(messages["john@example.com"]))
    desk = messages["desk@lists.example.org"]  # an external list: the site's language
    assert desk["Content-Language"] == "en"
    assert _titles(_html(desk)) == _titles(_html(messages["john@example.com"]))


def test_fallback_skip_leaves_out_items_without_a_translation_and_empty_variants(site):
    _translated_site(site, fallback="skip")
    (site / "content" / "2019-11-20-annual-report.md").unlink()
    (site / "content" / "2019-12-05-curs-regional.md").unlink()
    # en: the original; ro and bg: their translations. A reader of a language with no
    # item at all gets nothing, not an empty email.
    toml = site / "bulletin.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8")
        + '\n[funding.eu.text.de]\nstatement = "Test (de)"\ndisclaimer = "Test (de)."\n'
        'source = "test fixture"\n',
        encoding="utf-8",
    )
    (site / "subscribers.csv").write_text(
        "email,name,language\nana@example.org,Ana,ro\nhans@example.org,Hans,de\n",
        encoding="utf-8",
    )
    messages = _publish(site)
    assert _titles(_html(messages["ana@example.org"])) == [RO_TITLE]
    assert "hans@example.org" not in messages


def test_fallback_skip_drops_untranslated_items_from_a_variant(site):
    _translated_site(site, fallback="skip")
    messages = _publish(site)
    assert sorted(_titles(_html(messages["ivan@example.org"]))) == [BG_TITLE]
    assert "Curs regional" not in _html(messages["john@example.com"])


@pytest.mark.parametrize(
    ("translation_of", "language", "code"),
    [
        ("2019-11-13-no-such-entry", "ro", "translation-unknown"),
        ("2019-11-13-atelier-sofia", "bg", "translation-chain"),
        (ORIGINAL, "ro", "translation-duplicate"),
        (ORIGINAL, "en", "translation-language"),
    ],
)
def test_check_refuses_bad_translations(site, translation_of, language, code):
    _translated_site(site)
    _write(site, "2019-11-14-extra", language, "Extra", "Text.", translation_of=translation_of)
    result = run_cli("check", "--json", site=site)
    assert result.returncode == 1
    assert code in result.stdout and "2019-11-14-extra.md" in result.stdout


def test_a_withdrawn_original_withdraws_its_translations(site):
    _translated_site(site)
    path = site / "content" / f"{ORIGINAL}.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("status: approved", "status: withdrawn"),
        encoding="utf-8",
    )
    messages = _publish(site)
    for message in messages.values():
        html = _html(message)
        assert RO_TITLE not in html and BG_TITLE not in html


def test_the_compliance_gate_checks_every_variant(site):
    _translated_site(site)
    template = (REPO / "templates" / "email.mjml.j2").read_text(encoding="utf-8")
    # A site template that drops the funding statement in the Bulgarian variant only.
    broken = template.replace(
        "{%- for notice in notices %}", '{%- for notice in notices if language != "bg" %}', 1
    )
    assert broken != template
    (site / "templates").mkdir(exist_ok=True)
    (site / "templates" / "email.mjml.j2").write_text(broken, encoding="utf-8")
    config = load_config(site)
    with pytest.raises(ContentError) as caught:
        core.plan(config, connect(config.database_url), now=NOW)
    assert any("list news (bg)" in p.message for p in caught.value.problems)
    assert not any("list news (ro)" in p.message for p in caught.value.problems)


def test_a_language_without_a_catalog_gets_english_words_and_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="bulletin.i18n"):
        words = labels("xh")
    assert words == ENGLISH
    assert "no catalog for language 'xh'" in caplog.text


def test_a_site_catalog_overrides_the_shipped_one(site):
    folder = site / "locales" / "ro" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "bulletin.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        f'msgctxt "read_online"\nmsgid "{ENGLISH["read_online"]}"\nmsgstr "Citește pe site"\n',
        encoding="utf-8",
    )
    words = labels("ro", site)
    assert words["read_online"] == "Citește pe site"
    assert words["view_in_browser"] == "Vedeți această ediție în browser"  # the shipped one


def test_an_unreadable_site_catalog_is_left_out_with_a_warning(site, caplog):
    folder = site / "locales" / "ro" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "bulletin.po").write_bytes(b'msgctxt "read_online"\nmsgid "Read\n\xff\xfe')
    with caplog.at_level(logging.WARNING, logger="bulletin.i18n"):
        words = labels("ro", site)
    assert words["read_online"] == "Citiți online"  # bulletin's own Romanian catalog
    assert "bulletin.po cannot be read" in caplog.text


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "12–13 November 2019"),
        ("ro", "12–13 noiembrie 2019"),
        ("el", "12–13 Νοεμβρίου 2019"),
        ("sr-Latn", "12.–13. novembar 2019."),
        ("tr", "12–13 Kasım 2019"),
    ],
)
def test_dates_are_written_the_cldr_way(language, expected):
    assert date_range(dt.date(2019, 11, 12), dt.date(2019, 11, 13), language) == expected


def test_check_warns_on_funding_texts_without_a_source(site):
    result = run_cli("check", "--json", site=site)
    warnings = json.loads(result.stdout)["warnings"]
    unsourced = [w for w in warnings if "[funding-text-unsourced]" in w]
    assert any("[funding.eu.text.ro] has no source" in w for w in unsourced)


def test_every_shipped_catalog_compiles_and_ships_in_the_package():
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "locales/*/LC_MESSAGES/*.po" in package_data["package-data"]["bulletin"]
    for language in ("en", "sq", "bs", "bg", "el", "hu", "mk", "sr-Latn", "cnr", "ro", "sr", "tr"):
        words = labels(language)
        assert set(words) == set(ENGLISH)
        if language != "en":
            assert words["read_online"] != ENGLISH["read_online"], language


def test_the_web_service_speaks_a_script_variant_the_browser_asks_for(site):
    from pydantic import SecretStr
    from starlette.testclient import TestClient

    from bulletin.web.app import create_app

    toml = site / "bulletin.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8")
        + '\n[funding.eu.text.sr-Latn]\nstatement = "Finansira Evropska unija"\n'
        'disclaimer = "Probni tekst (nije pravni tekst)."\nsource = "test fixture"\n',
        encoding="utf-8",
    )
    config = load_config(site)
    engine = connect(config.database_url)
    app = create_app(config, engine, SecretStr("k"))
    with TestClient(app, base_url="https://news.example.org") as client:
        page = client.get("/subscribe", headers={"accept-language": "sr-latn-RS;q=0.9, en;q=0.5"})
        assert '<html lang="sr-Latn"' in page.text
        assert "Finansira Evropska unija" in page.text
        assert "Pretplatite se" in page.text  # the catalog's button
        # The catalog lacks the longer texts: those are English, whole, never a broken page.
        assert "nothing else is sent until you confirm" in page.text
    engine.dispose()


def test_a_translation_published_without_its_original_reaches_only_its_language(site):
    # The original is not among the edition's entries (not approved yet, or sent before):
    # the Romanian translation goes to Romanian readers, and nobody gets it as a fallback.
    _translated_site(site)
    from bulletin.content.entries import load_entries
    from bulletin.content.translations import variant

    entries = load_entries(load_config(site)).entries
    alone = [e for e in entries if e.slug != ORIGINAL]
    assert [e.title for e in variant(alone, "ro") if e.translation_of] == [RO_TITLE]
    assert not [e for e in variant(alone, "en") if e.translation_of]
    assert not [e for e in variant(alone, "bg", "skip") if e.language == "ro"]
