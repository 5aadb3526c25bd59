"""Bad input is reported, all at once, by file, line, stable code and advice; nothing is sent.

Each case writes one bad thing into a copy of the fixture site. `bulletin check` must exit
per SPEC (1 content, 2 config), name the file relative to the site (and the line where it
is known), carry a stable code, say what to do, and never show a traceback. The publish
core (`plan`) must refuse the same site before anything could be sent.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulletin.config import load_config
from bulletin.content.entries import load_entries
from bulletin.errors import ConfigError, ContentError, Problem
from bulletin.pipeline.planning import plan
from bulletin.render.renderer import Renderer
from bulletin.render.templates import DEFAULT_TEMPLATES
from bulletin.store.database import connect
from tests.conftest import run_cli

SOFIA = "content/2019-11-13-sofia-workshop.md"
CURS = "content/2019-12-05-curs-regional.md"
DISCLAIMER = (
    "This communication reflects only SELEC's view and the European Commission is not "
    "responsible for any use that may be made of the information it contains."
)
HORIZON_DISCLAIMER = (
    "Views and opinions expressed are however those of the author(s) only and do not "
    "necessarily reflect those of the European Union or the granting authority. Neither the "
    "European Union nor the granting authority can be held responsible for them."
)
# The usual front matter of a bad entry; with "---" on line 1 these are lines 2, 3 and 4.
TITLE, DATE, STATUS = "title: A bad entry\n", "date: 2019-11-12\n", "status: draft\n"


@dataclass(frozen=True)
class Expect:
    """One problem that must be reported."""

    path: str  # relative to the site
    code: str
    line: int | None  # None where no line applies
    advice: str  # words of the message that say what to do


@dataclass(frozen=True)
class Case:
    id: str
    write: Callable[[Path], None]
    expected: tuple[Expect, ...]


def entry_text(front: str, body: str = "Some body text.\n") -> str:
    return f"---\n{front}---\n{body}"


def writes(relative: str, content: str | bytes) -> Callable[[Path], None]:
    def write(site: Path) -> None:
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return write


def entry_case(
    case_id: str, front: str, code: str, line: int | None, advice: str, body: str = "Body.\n"
) -> Case:
    path = f"content/{case_id}.md"
    return Case(case_id, writes(path, entry_text(front, body)), (Expect(path, code, line, advice),))


def near_miss_case(case_id: str, text: str) -> Case:
    # Body starts on line 6 (front matter: lines 1-5); the text is its third line.
    return entry_case(
        case_id,
        TITLE + DATE + STATUS,
        "funding-near-miss",
        8,
        "remove it (bulletin adds the configured statement and disclaimer itself)",
        body=f"An introduction.\n\n{text}\n",
    )


def duplicate_slug(site: Path) -> None:
    copy = site / "content" / "archive" / Path(SOFIA).name
    copy.parent.mkdir()
    copy.write_bytes((site / SOFIA).read_bytes())


def huge_file(site: Path) -> None:
    with (site / "content" / "huge.md").open("wb") as handle:
        handle.write(b"---\ntitle: huge\n---\n")
        handle.truncate(50 * 1024 * 1024)  # sparse: fast to write, slow to read


def edit_after_approval(site: Path) -> None:
    path = site / SOFIA
    text = path.read_text(encoding="utf-8")
    assert "for two days" in text
    path.write_text(text.replace("for two days", "for three days"), encoding="utf-8")


def text_template_without_disclaimer(site: Path) -> None:
    builtin = (DEFAULT_TEMPLATES / "email.txt.j2").read_text(encoding="utf-8")
    custom, removed = re.subn(
        r"\{%-? for notice in notices %\}\s*\{\{ notice\.disclaimer[^}]*\}\}\s*\{%-? endfor %\}",
        "",
        builtin,
    )
    assert removed == 1
    (site / "templates").mkdir()
    (site / "templates" / "email.txt.j2").write_text(custom, encoding="utf-8")


def base_template_without_emblem(site: Path) -> None:
    builtin = (DEFAULT_TEMPLATES / "base.html.j2").read_text(encoding="utf-8")
    custom, removed = re.subn(r"<img [^>]*emblem_src[^>]*>", "", builtin)
    assert removed == 1
    (site / "templates").mkdir()
    (site / "templates" / "base.html.j2").write_text(custom, encoding="utf-8")


CASES = [
    entry_case(
        "malformed-yaml",
        TITLE + DATE + STATUS + "summary: police: customs\n",
        "yaml-invalid",
        5,
        "fix the YAML on that line",
    ),
    entry_case("missing-title", DATE + STATUS, "field-missing", 2, "'title' is missing; add it"),
    entry_case("missing-date", TITLE + STATUS, "field-missing", 2, "'date' is missing; add it"),
    entry_case("missing-status", TITLE + DATE, "field-missing", 2, "'status' is missing; add it"),
    entry_case(
        "tags-a-number",
        TITLE + DATE + STATUS + "tags: 5\n",
        "field-type",
        5,
        "tags must be a list like [firearms, drugs]",
    ),
    entry_case(
        "title-a-list",
        "title: [Sofia, workshop]\n" + DATE + STATUS,
        "field-type",
        2,
        "title must be text",
    ),
    entry_case(
        "status-unknown",
        TITLE + DATE + "status: published\n",
        "status-unknown",
        4,
        "is not one of draft, approved, withdrawn",
    ),
    entry_case(
        "funding-unknown",
        TITLE + DATE + STATUS + "funding: horizon\n",
        "funding-unknown",
        5,
        "add [funding.horizon] or fix the name",
    ),
    entry_case(
        "date-impossible",
        TITLE + "date: 2019-13-45\n" + STATUS,
        "date-invalid",
        3,
        "write it as YYYY-MM-DD",
    ),
    entry_case(
        "date-in-words",
        TITLE + "date: next week\n" + STATUS,
        "date-invalid",
        3,
        "write it as YYYY-MM-DD",
    ),
    Case(
        "duplicate-slug",
        duplicate_slug,
        (
            Expect(SOFIA, "slug-duplicate", None, "content/archive/2019-11-13-sofia-workshop.md"),
            Expect("content/archive/2019-11-13-sofia-workshop.md", "slug-duplicate", None, SOFIA),
        ),
    ),
    Case(
        "not-utf8",
        writes(
            "content/not-utf8.md",
            entry_text("title: Caf\xe9\n" + DATE + STATUS, "B\n").encode("latin-1"),
        ),
        (Expect("content/not-utf8.md", "not-utf8", 2, "save the file as UTF-8"),),
    ),
    entry_case(
        "empty-body",
        TITLE + DATE + STATUS,
        "body-empty",
        6,
        "write it below the front matter",
        body="\n   \n",
    ),
    Case(
        "huge-file",
        huge_file,
        (Expect("content/huge.md", "file-too-large", None, "Move large material"),),
    ),
    entry_case(
        "title-line-break",
        "title: |\n  Workshop\n  Bcc: everyone@example.org\n" + DATE + STATUS,
        "field-line-break",
        2,
        "must be a single line; join its lines",
    ),
    entry_case(
        "script-tag",
        TITLE + DATE + STATUS,
        "html-unsafe",
        8,
        "remove it",
        body="An introduction.\n\n<script>alert(1)</script>\n",
    ),
    entry_case(
        "img-onerror",
        TITLE + DATE + STATUS,
        "html-unsafe",
        9,
        "remove it",
        body="An introduction.\n\nA picture:\n<img src=x onerror=alert(1)> here.\n",
    ),
    entry_case(
        "javascript-link",
        TITLE + DATE + STATUS,
        "html-unsafe",
        10,
        "remove it",
        body="An introduction.\n\nMore text.\n\n[x](javascript:alert(1))\n",
    ),
    entry_case(
        "disclaimer-translation-missing",
        TITLE + DATE + STATUS + "language: de\n",
        "funding-text-missing",
        5,
        "add [funding.eu.text.de] to bulletin.toml",
    ),
    Case(
        "edited-after-approval",
        edit_after_approval,
        (
            Expect(
                SOFIA,
                "approval-stale",
                12,
                f"run bulletin approve {SOFIA} --by NAME again",
            ),
        ),
    ),
    near_miss_case("disclaimer-other-agency", DISCLAIMER.replace("SELEC's", "Europol's")),
    near_miss_case("disclaimer-typo", DISCLAIMER.replace("responsible", "responsable")),
    near_miss_case("disclaimer-2021-2027-formula", HORIZON_DISCLAIMER),
    Case(
        "text-template-drops-disclaimer",
        text_template_without_disclaimer,
        tuple(
            Expect(path, "funding-disclaimer-missing", None, advice)
            for path in (SOFIA, CURS)
            for advice in ("(text part) lacks the disclaimer", "templates/email.txt.j2")
        ),
    ),
    Case(
        "html-template-drops-emblem",
        base_template_without_emblem,
        tuple(
            Expect(path, "funding-emblem-missing", None, "templates/base.html.j2")
            for path in (SOFIA, CURS)
        ),
    ),
]
BY_ID = {case.id: case for case in CASES}


def reported(stderr: str, expect: Expect) -> bool:
    """Whether `stderr` has the problem as `path[:line]: message [code]`, with the advice."""
    where = f"{expect.path}:{expect.line}: " if expect.line else f"{expect.path}: "
    return any(
        line.startswith(where) and line.endswith(f"[{expect.code}]") and expect.advice in line
        for line in stderr.splitlines()
    )


def plan_problems(site: Path) -> list[Problem]:
    """The problems the publish core raises for `site`; it must refuse to go on."""
    config = load_config(site)
    engine = connect(config.database_url)
    try:
        with pytest.raises(ContentError) as raised:
            plan(config, engine)
    finally:
        engine.dispose()
    return raised.value.problems


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_check_reports_bad_input_with_file_line_code_and_advice(site: Path, case: Case):
    case.write(site)

    result = run_cli("check", site=site)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    for expect in case.expected:
        assert reported(result.stderr, expect), f"{expect} not in:\n{result.stderr}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_publish_core_refuses_bad_input_and_sends_nothing(site: Path, case: Case):
    case.write(site)

    problems = plan_problems(site)

    found = {(p.path, p.code, p.line) for p in problems}
    for expect in case.expected:
        assert (expect.path, expect.code, expect.line) in found, problems
    assert not (site / "outbox").exists()


def test_title_with_line_break_never_reaches_an_email_subject(site: Path, config):
    BY_ID["title-line-break"].write(site)

    loaded = load_entries(config)

    assert "title-line-break" not in {entry.slug for entry in loaded.entries}
    assert "field-line-break" in {p.code for p in plan_problems(site)}
    # Even a title that got past validation is folded onto one line in the Subject.
    sofia = next(e for e in loaded.entries if e.slug == "2019-11-13-sofia-workshop")
    sneaky = dataclasses.replace(sofia, title="Workshop\r\nBcc: everyone@example.org")
    subject = Renderer(config).email([sneaky], "2019-11-20-1", "Fixture News").subject
    assert "\n" not in subject
    assert "\r" not in subject


def test_check_reports_unknown_config_key_with_line_and_exits_2(site: Path):
    toml = site / "bulletin.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text + '\n[delivery.smtp]\nhost = "127.0.0.1"\nhots = "x"\n', "utf-8")
    line = len(text.splitlines()) + 4

    result = run_cli("check", site=site)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    expect = Expect(
        "bulletin.toml", "config-unknown-key", line, "'hots' in [delivery.smtp]; remove it"
    )
    assert reported(result.stderr, expect), result.stderr
    with pytest.raises(ConfigError) as raised:
        load_config(site)
    assert [(p.code, p.line) for p in raised.value.problems] == [("config-unknown-key", line)]


@pytest.mark.parametrize("case_id", ["malformed-yaml", "edited-after-approval", "huge-file"])
def test_check_json_prints_exactly_one_object_listing_the_problems(site: Path, case_id: str):
    case = BY_ID[case_id]
    case.write(site)

    result = run_cli("check", "--json", site=site)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)  # fails on anything but one JSON document
    assert set(report) == {"ok", "problems", "warnings"}  # warnings: rules the site downgraded
    assert report["ok"] is False
    for problem in report["problems"]:
        assert {"path", "code", "message"} <= set(problem)
        assert all(isinstance(problem[key], str) for key in ("path", "code", "message"))
    listed = {(p["path"], p["code"], p.get("line")) for p in report["problems"]}
    for expect in case.expected:
        assert (expect.path, expect.code, expect.line) in listed


def test_check_json_reports_config_problems_with_exit_2(site: Path):
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[delivery.smtp]\nhots = "x"\n', "utf-8")

    result = run_cli("check", "--json", site=site)

    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(p["path"], p["code"]) for p in report["problems"]] == [
        ("bulletin.toml", "config-unknown-key")
    ]


def test_check_reports_every_problem_of_two_broken_files_at_once(site: Path):
    for case_id in ("malformed-yaml", "script-tag", "edited-after-approval"):
        BY_ID[case_id].write(site)

    result = run_cli("check", site=site)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for case_id in ("malformed-yaml", "script-tag", "edited-after-approval"):
        for expect in BY_ID[case_id].expected:
            assert reported(result.stderr, expect), f"{expect} not in:\n{result.stderr}"
    assert "3 problem(s)" in result.stderr


def test_approving_an_edited_entry_again_makes_check_pass(site: Path):
    edit_after_approval(site)
    assert run_cli("check", site=site).returncode == 1

    approved = run_cli("approve", str(site / SOFIA), "--by", "Editor", site=site)

    assert approved.returncode == 0, approved.stderr
    assert f"approved {SOFIA} by Editor" in approved.stdout
    result = run_cli("check", site=site)
    assert result.returncode == 0, result.stderr
    assert "no problems" in result.stdout


def test_subscribers_import_reports_bad_rows_by_line_and_imports_the_good_ones(site: Path):
    csv_file = site / "import.csv"
    csv_file.write_text(
        "email,name,language\n"
        "ana@example.org,Ana Popescu,ro\n"
        "not-an-address,Nobody,en\n"
        "john@example.com,John Carter,en\n"
        "maria@example.org,Maria,english!\n"
        "ivan@example.bg,Ivan,bg\n",
        encoding="utf-8",
    )

    result = run_cli("subscribers", "import", str(csv_file), "--list", "news", site=site)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert reported(result.stderr, Expect("import.csv", "address-invalid", 3, "not-an-address"))
    assert reported(result.stderr, Expect("import.csv", "language-invalid", 5, "english!"))
    assert "3 added" in result.stdout
    exported = run_cli("subscribers", "export", "--list", "news", site=site)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines() == [
        "email,name,language,status",
        "ana@example.org,Ana Popescu,ro,active",
        "ivan@example.bg,Ivan,bg,active",
        "john@example.com,John Carter,en,active",
    ]


def test_subscribers_import_updates_an_address_already_on_the_list(site: Path):
    first = site / "first.csv"
    first.write_text("email,name,language\nana@example.org,Ana,ro\n", encoding="utf-8")
    again = site / "again.csv"
    again.write_text("email,name,language\nana@example.org,Ana Popescu,bg\n", encoding="utf-8")

    assert run_cli("subscribers", "import", str(first), "--list", "news", site=site).returncode == 0
    result = run_cli("subscribers", "import", str(again), "--list", "news", site=site)

    assert result.returncode == 0, result.stderr
    assert "0 added, 1 updated" in result.stdout
    exported = run_cli("subscribers", "export", "--list", "news", site=site).stdout
    assert exported.splitlines() == [
        "email,name,language,status",
        "ana@example.org,Ana Popescu,bg,active",
    ]
