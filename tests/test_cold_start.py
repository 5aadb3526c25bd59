"""`bulletin check` starts fast: it loads only what checking needs, and what one command
compiled (entries, catalogs, templates, the CLDR data of dates) the next one reuses, while
an edit is always seen.

The import guards run the command as a user runs it, in a fresh Python process, and look
at the modules it loaded; a control run of `build` shows that the probe sees them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bulletin import cli
from bulletin.render import i18n
from bulletin.render.templates import PUBLISHED, SERVED, environment
from bulletin.render.words import ENGLISH, labels

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import contextlib, io, json, sys
from bulletin.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = main(json.loads(sys.argv[1]))
print(json.dumps({"status": status, "modules": sorted(sys.modules),
                  "stdout": out.getvalue(), "stderr": err.getvalue()}))
"""

#: What only publishing, sending, serving or making keys needs: the workflow engine, the
#: database and the ledger, the delivery and web code, and their libraries.
ONLY_FOR_OTHER_COMMANDS = (
    "prefect",
    "sqlalchemy",
    "alembic",
    "bulletin.store.database",
    "bulletin.store.ledger",
    "bulletin.pipeline.conductor",
    "bulletin.pipeline.recording",
    "bulletin.pipeline.sending",
    "bulletin.delivery",
    "bulletin.web",
    "requests",
    "email_validator",
    "starlette",
    "uvicorn",
    "playwright",
    "cryptography.hazmat.primitives.serialization",
    # the other commands' own code
    "bulletin.commands.approvals",
    "bulletin.commands.inbound",
    "bulletin.commands.server",
    "bulletin.commands.status",
    "bulletin.commands.subscribers",
)
#: What a check with nothing edited since the last command does not need: the entries
#: come from the entry cache, the approvals' verdicts from the check cache (no signature
#: to verify), the catalogs and the dates' CLDR data from what the first command compiled,
#: the configuration's checked values from the configuration's record.
ONLY_AFTER_AN_EDIT = ("yaml", "markdown_it", "babel", "cryptography", "pydantic", "tomllib")


def _run(site: Path, cache: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(["--site", str(site), *args])],
        cwd=site,
        env={**env, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"the probe failed:\n{done.stdout}\n{done.stderr}"
    report: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _loaded(report: dict, names: tuple[str, ...]) -> list[str]:
    return [m for m in report["modules"] if any(m == n or m.startswith(n + ".") for n in names)]


def test_check_loads_nothing_that_only_other_commands_need(site, tmp_path):
    report = _run(site, tmp_path / "cache", "check")
    assert report["status"] == 0, report["stderr"]
    assert "Checked 2 entries: no problems." in report["stdout"]
    assert _loaded(report, ONLY_FOR_OTHER_COMMANDS) == []


def test_the_probe_sees_what_a_command_loads(site, tmp_path):
    report = _run(site, tmp_path / "cache", "build")  # build reads the ledger
    assert report["status"] == 0, report["stderr"]
    assert "sqlalchemy" in _loaded(report, ONLY_FOR_OTHER_COMMANDS)
    assert set(_loaded(report, ONLY_AFTER_AN_EDIT)) >= {
        "yaml",
        "markdown_it",
        "babel.messages",
        "babel.dates",
        "cryptography",
        "pydantic",
    }


def test_a_second_check_reuses_entries_catalogs_and_templates(site, tmp_path):
    cache = tmp_path / "cache"
    first = _run(site, cache, "check", "--json")
    second = _run(site, cache, "check", "--json")
    assert second["status"] == first["status"] == 0
    assert json.loads(second["stdout"]) == json.loads(first["stdout"])
    assert _loaded(second, ONLY_AFTER_AN_EDIT) == []
    assert list((cache / "bulletin" / "catalogs").glob("*.mo"))
    assert list((site / ".bulletin" / "templates").iterdir())


def test_a_check_after_an_edit_sees_the_edit(site, tmp_path):
    cache = tmp_path / "cache"
    assert _run(site, cache, "check")["status"] == 0
    entry = next((site / "content").glob("*.md"))
    entry.write_text(entry.read_text().replace("---\n", "---\ntitle: [unclosed\n", 1))
    report = _run(site, cache, "check")
    assert report["status"] == 1
    assert "yaml" in _loaded(report, ONLY_AFTER_AN_EDIT)


def test_a_check_leaves_the_garbage_collector_as_it_found_it(site, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli.main(["--site", str(site), "check"]) == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_check_after_bulletin_toml_changed_checks_it_again(site, tmp_path):
    cache = tmp_path / "cache"
    assert _run(site, cache, "check")["status"] == 0
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text().replace('timezone = "Europe/Bucharest"', 'timezone = "Mars"'))
    report = _run(site, cache, "check", "--json")
    assert report["status"] == 2, report["stderr"]
    assert "unknown time zone 'Mars'" in report["stdout"]
    assert "pydantic" in _loaded(report, ONLY_AFTER_AN_EDIT)


def test_a_check_after_an_approval_changed_verifies_it_again(site, tmp_path):
    cache = tmp_path / "cache"
    assert _run(site, cache, "check")["status"] == 0
    entry = site / "content" / "2019-11-13-sofia-workshop.md"
    text = entry.read_text()
    signature = text.split("ed25519:press-office:")[1][:86]
    forged = ("B" if signature[0] != "B" else "C") + signature[1:]
    entry.write_text(text.replace(signature, forged))
    report = _run(site, cache, "check")
    assert report["status"] == 1, report["stderr"]
    assert "cryptography" in _loaded(report, ONLY_AFTER_AN_EDIT)


@pytest.fixture
def catalog_cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, and no catalog compiled earlier in this process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    i18n._compiled.cache_clear()
    yield tmp_path / "cache" / "bulletin" / "catalogs"
    i18n._compiled.cache_clear()


def _site_catalog(site: Path, word: str) -> None:
    folder = site / "locales" / "ro" / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bulletin.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        f'msgctxt "read_online"\nmsgid "{ENGLISH["read_online"]}"\nmsgstr "{word}"\n',
        encoding="utf-8",
    )


def test_a_compiled_catalog_is_reused_and_an_edited_one_compiled_again(site, catalog_cache):
    _site_catalog(site, "Citește pe site")
    assert labels("ro", site)["read_online"] == "Citește pe site"
    compiled = sorted(catalog_cache.glob("*.mo"))
    assert len(compiled) == 2  # the site's catalog and the shipped Romanian one
    for path in compiled:
        path.write_bytes(b"damaged")
    i18n._compiled.cache_clear()  # as in a new command
    assert labels("ro", site)["read_online"] == "Citește pe site"
    assert all(path.read_bytes() != b"damaged" for path in compiled)  # compiled again
    _site_catalog(site, "Citește online acum")
    i18n._compiled.cache_clear()
    assert labels("ro", site)["read_online"] == "Citește online acum"
    assert len(list(catalog_cache.glob("*.mo"))) == 3


def test_catalogs_work_without_a_cache_folder_that_can_be_written(site, catalog_cache):
    catalog_cache.parent.mkdir(parents=True)
    catalog_cache.write_text("a file where the folder would be")
    _site_catalog(site, "Citește pe site")
    assert labels("ro", site)["read_online"] == "Citește pe site"


def _render(config, name: str, autoescape=PUBLISHED, *, keep_trailing_newline=False) -> str:
    env = environment(config, autoescape, keep_trailing_newline=keep_trailing_newline)
    return env.get_template(name).render(value="<b>")


def test_a_compiled_template_is_reused_until_the_template_changes(config):
    folder = config.root / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "probe.html.j2").write_text("one {{ value }}")
    assert _render(config, "probe.html.j2") == "one &lt;b&gt;"
    assert list((config.state_dir / "templates").iterdir())
    assert _render(config, "probe.html.j2") == "one &lt;b&gt;"
    (folder / "probe.html.j2").write_text("two {{ value }}")
    assert _render(config, "probe.html.j2") == "two &lt;b&gt;"


def test_environments_with_other_settings_do_not_share_compiled_templates(config):
    folder = config.root / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "probe.mjml.j2").write_text("{{ value }}\n")
    assert _render(config, "probe.mjml.j2", keep_trailing_newline=True) == "&lt;b&gt;\n"
    assert _render(config, "probe.mjml.j2") == "&lt;b&gt;"
    assert _render(config, "probe.mjml.j2", SERVED) == "<b>"  # the web service's escaping


def test_templates_render_when_the_state_folder_cannot_be_written(config):
    (config.root / "templates").mkdir(exist_ok=True)
    (config.root / "templates" / "probe.html.j2").write_text("one {{ value }}")
    config.state_dir.write_text("a file where the folder would be")
    assert _render(config, "probe.html.j2") == "one &lt;b&gt;"
    assert _render(config, "probe.html.j2") == "one &lt;b&gt;"


# The command line: a command line naming a command builds only that command's parser.

COMMAND_LINES = [
    ["check"],
    ["--site", "check", "check", "--json", "a.md", "b.md"],
    ["-v", "--site=x", "check", "--browser"],
    ["build", "--json"],
    ["publish", "one", "two", "--dry-run"],
    ["serve", "--port", "8080", "--dev"],
    ["partners", "test", "interpol", "--json"],
    ["approve", "content/a.md", "--by", "Press Office"],
    ["approvals", "--json"],
    ["approvers", "add", "press-office", "--name", "Press Office"],
    ["inbound", "process", "--json"],
    ["status", "--json"],
    ["resend", "2026-01-01-1"],
    ["server", "status"],
    ["subscribers", "export", "news"],
]


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> dict:
    try:
        return vars(parser.parse_args(argv))
    except SystemExit as exc:
        return {"exit": exc.code}


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_a_command_parses_as_with_the_whole_command_line(argv):
    command = cli._command_of(argv)
    assert command is not None
    assert _parsed(cli._parser(command), argv) == _parsed(cli._parser(), argv)


@pytest.mark.parametrize(
    "argv", [[], ["--help"], ["-h", "check"], ["chek"], ["--si", "x", "check"], ["-vh"]]
)
def test_anything_else_gets_the_whole_command_line(argv):
    assert cli._command_of(argv) is None


def test_the_whole_command_line_has_every_command_and_each_family_its_own():
    commands = cli._parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == set(cli.CORE_COMMANDS) | set(cli.FAMILIES)
    for family in set(cli.FAMILIES.values()):
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"bulletin.commands.{family}").register(subparsers)
        assert set(subparsers.choices) == {c for c, f in cli.FAMILIES.items() if f == family}


def test_a_mistyped_command_is_told_the_commands_there_are(capsys):
    with pytest.raises(SystemExit):
        cli.main(["chek"])
    assert "choose from" in capsys.readouterr().err


# Dates: written from the CLDR data kept in the cache folder, exactly as Babel writes them.

LANGUAGES = [*i18n.shipped_languages(), "cnr", "mo", "de", "fr", "ja", "ar", "zz", "EN", "ro-MD"]
DAYS = [
    (dt.date(2019, 11, 12), None),
    (dt.date(2019, 11, 12), dt.date(2019, 11, 12)),
    (dt.date(2019, 11, 12), dt.date(2019, 11, 13)),
    (dt.date(2019, 11, 30), dt.date(2019, 12, 2)),
    (dt.date(2019, 12, 30), dt.date(2020, 1, 2)),
    (dt.date(5, 1, 9), dt.date(12, 5, 1)),
    *((dt.date(2020, month, 1), dt.date(2020, month, 28)) for month in range(1, 13)),
]


@pytest.fixture
def dates_cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, and no date data loaded earlier in this process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    i18n._dates.cache_clear()
    yield tmp_path / "cache" / "bulletin" / "dates"
    i18n._dates.cache_clear()


def test_dates_are_written_as_babel_writes_them(dates_cache):
    for language in LANGUAGES:
        kept = i18n._dates(language)
        assert kept is not None
        for start, end in DAYS:
            babel = i18n._babel_date_range(start, end, language)
            assert i18n._format_range(kept, start, end) == babel, (language, start, end)
            assert i18n.date_range(start, end, language) == babel
    assert i18n._dates("en")["locale"] == "en_150"
    assert i18n._dates("zz") == {"locale": None}  # no CLDR data: ISO dates
    assert i18n.date_range(dt.date(2019, 11, 12), dt.date(2019, 11, 13), "zz") == (
        "2019-11-12 – 2019-11-13"
    )


def test_a_field_only_babel_writes_is_left_to_babel(dates_cache, monkeypatch):
    kept = i18n._dates("en")
    weekday = {**kept, "long": ["%(EEEE)s %(d)s %(MMMM)s %(y)s", ["EEEE", "d", "MMMM", "y"]]}
    with pytest.raises(KeyError):
        i18n._format_range(weekday, dt.date(2019, 11, 12), None)
    with monkeypatch.context() as patched:
        patched.setattr(i18n, "_dates", lambda language: weekday)
        assert i18n.date_range(dt.date(2019, 11, 12), None, "en") == "12 November 2019"


def test_the_dates_data_is_kept_and_read_by_the_next_command(dates_cache):
    assert i18n.date_range(dt.date(2019, 11, 12), None, "ro") == "12 noiembrie 2019"
    (kept,) = dates_cache.glob("cldr-*.json")
    data = json.loads(kept.read_text())
    assert set(data) == {"ro"}
    data["ro"]["months"]["MMMM"][10] = "brumar"  # what the next command reads, not Babel
    kept.write_text(json.dumps(data))
    i18n._dates.cache_clear()
    assert i18n.date_range(dt.date(2019, 11, 12), None, "ro") == "12 brumar 2019"
    assert i18n.date_range(dt.date(2019, 11, 12), None, "en") == "12 November 2019"
    assert set(json.loads(kept.read_text())) == {"ro", "en"}  # added, the others kept


def test_damaged_dates_data_is_compiled_again(dates_cache):
    dates_cache.mkdir(parents=True)
    kept = dates_cache / f"cldr-{i18n._babel_version()}.json"
    for damaged in (b'{"ro": {"locale": "ro", "lo', b"[1, 2]", b'{"ro": 3}'):
        kept.write_bytes(damaged)
        i18n._dates.cache_clear()
        assert i18n.date_range(dt.date(2019, 11, 12), None, "ro") == "12 noiembrie 2019"
        assert json.loads(kept.read_text())["ro"]["locale"] == "ro"


def test_dates_work_without_a_cache_folder_that_can_be_written(dates_cache):
    dates_cache.parent.mkdir(parents=True)
    dates_cache.write_text("a file where the folder would be")
    assert i18n.date_range(dt.date(2019, 11, 12), dt.date(2019, 11, 13), "en") == (
        "12–13 November 2019"
    )
