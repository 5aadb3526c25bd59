"""`bulletin check` starts fast: it loads only what checking needs, and what one command
compiled (entries, catalogs, templates) the next one reuses, while an edit is always seen.

The import guards run the command as a user runs it, in a fresh Python process, and look
at the modules it loaded; a control run of `build` shows that the probe sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
)
#: What a check with nothing edited since the last command does not need: the entries
#: come from the entry cache, the catalogs from the compiled ones.
ONLY_AFTER_AN_EDIT = ("yaml", "markdown_it", "babel.messages")


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
    assert set(_loaded(report, ONLY_AFTER_AN_EDIT)) >= {"yaml", "markdown_it", "babel.messages"}


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
