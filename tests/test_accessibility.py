"""The accessibility gate: the static rules on every rendered output, the refusal of a
custom template that drops lang or an alt or sets grey-on-grey text, and the site's
reasoned downgrade of a rule to a warning."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bulletin.accessibility.colours import contrast, parse_colour
from bulletin.accessibility.rules import check_html
from bulletin.render.templates import DEFAULT_TEMPLATES
from tests.conftest import run_cli


def _custom(site: Path, name: str, pattern: str, replacement: str) -> None:
    builtin = (DEFAULT_TEMPLATES / name).read_text(encoding="utf-8")
    custom, count = re.subn(pattern, replacement, builtin)
    assert count >= 1, f"{pattern!r} is not in the built-in {name}"
    (site / "templates").mkdir(exist_ok=True)
    (site / "templates" / name).write_text(custom, encoding="utf-8")


def email_without_lang(site: Path) -> None:
    _custom(site, "email.mjml.j2", r'<mjml lang="\{\{ language \}\}">', "<mjml>")


def page_without_lang(site: Path) -> None:
    _custom(site, "base.html.j2", r'<html lang="\{\{ language \}\}"', "<html")


def page_with_image_without_alt(site: Path) -> None:
    _custom(site, "base.html.j2", r"<main>", '<main>\n<img src="{{ root }}banner.png">')


def email_grey_on_grey(site: Path) -> None:
    _custom(site, "email.mjml.j2", r'color="#52606d"', 'color="#a0a0a0"')


def text_part_without_links(site: Path) -> None:
    _custom(site, "email.txt.j2", r"\{\{ t\.read_online \}\}: \{\{ entry\.url \}\}", "")


def email_preview_is_boilerplate(site: Path) -> None:
    _custom(site, "email.mjml.j2", r"<mj-preview>\{\{ preview \}\}</mj-preview>", "")


EMAIL, BASE = "templates/email.mjml.j2", "templates/base.html.j2"
CUSTOM = [
    pytest.param(email_without_lang, "a11y-lang", EMAIL, "<html>", id="email-lang"),
    pytest.param(page_without_lang, "a11y-lang", BASE, "<html>", id="page-lang"),
    pytest.param(
        text_part_without_links,
        "a11y-text-part",
        "templates/email.txt.j2",
        "/entries/2019-11-13",
        id="text-part",
    ),
    pytest.param(
        email_preview_is_boilerplate, "a11y-preview-text", EMAIL, "View this", id="preview"
    ),
    pytest.param(page_with_image_without_alt, "a11y-image-alt", BASE, '<img src="', id="alt"),
    pytest.param(
        email_grey_on_grey, "a11y-contrast", EMAIL, "text #a0a0a0 on #f4f5f7", id="grey-on-grey"
    ),
]


def test_the_built_in_templates_pass_the_gate(site: Path) -> None:
    result = run_cli("check", "--json", site=site)
    report = json.loads(result.stdout)
    assert [p for p in report["problems"] if p["code"].startswith("a11y-")] == []
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("break_template", "code", "path", "element"), CUSTOM)
def test_check_refuses_a_custom_template_that_breaks_a_rule(
    site: Path, break_template, code: str, path: str, element: str
) -> None:
    break_template(site)
    result = run_cli("check", "--json", site=site)
    assert result.returncode == 1, result.stdout
    found = [p for p in json.loads(result.stdout)["problems"] if p["code"] == code]
    assert found, result.stdout
    assert found[0]["path"] == path
    assert element in found[0]["message"]
    assert re.search(r"(the email to|public/)", found[0]["message"])  # names the output


def test_build_refuses_grey_on_grey_and_writes_nothing(site: Path) -> None:
    email_grey_on_grey(site)
    result = run_cli("build", site=site)
    assert result.returncode == 1
    assert "[a11y-contrast]" in result.stderr
    assert "templates/email.mjml.j2" in result.stderr
    assert not (site / "public" / "index.html").exists()


def test_a_rule_downgraded_with_a_reason_is_a_warning_the_report_shows(site: Path) -> None:
    email_grey_on_grey(site)
    reason = "Brand grey agreed with the partner; a darker footer ships in the next release"
    with (site / "bulletin.toml").open("a", encoding="utf-8") as toml:
        toml.write(f'\n[accessibility.warnings]\ncontrast = "{reason}"\n')
    result = run_cli("check", site=site)
    assert result.returncode == 0, result.stderr
    assert "warning: templates/email.mjml.j2" in result.stderr
    assert reason in result.stderr
    report = json.loads(run_cli("check", "--json", site=site).stdout)
    assert report["ok"] is True
    assert any(reason in w for w in report["warnings"])
    built = run_cli("build", site=site)
    assert built.returncode == 0, built.stderr
    assert reason in built.stderr
    assert (site / "public" / "index.html").exists()


@pytest.mark.parametrize(
    ("warnings", "said"),
    [
        ('contrast = "later"', "needs a written reason"),
        ('colour = "Our partner template is fixed in the next release"', "no accessibility rule"),
    ],
)
def test_a_downgrade_without_a_real_reason_or_rule_is_a_configuration_error(
    site: Path, warnings: str, said: str
) -> None:
    email_grey_on_grey(site)
    with (site / "bulletin.toml").open("a", encoding="utf-8") as toml:
        toml.write(f"\n[accessibility.warnings]\n{warnings}\n")
    result = run_cli("check", site=site)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert "[a11y-contrast]" in result.stderr  # the problem is still reported


PAGE = (
    '<!doctype html><html lang="en" dir="ltr"><head><meta name="color-scheme" '
    'content="light dark"><style>{css}</style></head><body>{body}</body></html>'
)


def _rules(body: str, css: str = "", *, email: bool = False) -> list[str]:
    findings, _ = check_html(PAGE.format(css=css, body=body), email=email)
    return [f"{f.rule} {f.element}" for f in findings]


@pytest.mark.parametrize(
    ("body", "css", "expected"),
    [
        ('<p style="color:#777777">small grey</p>', "", ["contrast <p> 'small grey'"]),
        ('<p style="color:#767676">just dark enough</p>', "", []),
        ('<p style="color:#949494;font-size:24px">large</p>', "", []),
        ('<p style="color:#949494;font-size:14pt;font-weight:bold">bold 18.66px</p>', "", []),
        (
            '<div bgcolor="#333333"><p style="color:#444">dark</p></div>',
            '',
            ["contrast <p> 'dark'"],
        ),
        (
            '<table bgcolor="#333"><tr><td>black on dark</td></tr></table>',
            '',
            ["contrast <td> 'black on dark'"],
        ),
        (
            '<div class="note"><p>by stylesheet</p></div>',
            '.note p { color: #aaa }',
            ["contrast <p> 'by stylesheet'"],
        ),
        ('<p style="color:#aaa;display:none">hidden preheader</p>', "", []),
        (
            '<p class="x">dark mode only</p>',
            '@media (prefers-color-scheme: dark) { .x { color: #eee } }',
            [],
        ),
        ("<h1>a</h1><h3>b</h3>", "", ["heading-order <h3>"]),
        ("<h1>a</h1><h2>b</h2><h3>c</h3><h2>d</h2>", "", []),
        ('<table cellpadding="0"><tr><td>x</td></tr></table>', "", ['layout-table <table>']),
        ('<table role="presentation" cellpadding="0"><tr><td>x</td></tr></table>', "", []),
        ('<img src="a.png" alt="">', "", []),
        (
            '<a href="https://x.example/"><img src="a.png"></a>',
            '',
            ['image-alt <img src="a.png">', 'link-name <a href="https://x.example/">'],
        ),
        (
            '<a href="/1">Read online</a><a href="/2">Read online</a>',
            '',
            ['link-name <a href="/1">Read online</a>', 'link-name <a href="/2">Read online</a>'],
        ),
        (
            '<a href="/1" aria-label="Read online: A">Read online'
            '</a><a href="/2" aria-label="Read online: B">Read online</a>',
            '',
            [],
        ),
    ],
)  # fmt: skip
def test_static_rules(body: str, css: str, expected: list[str]) -> None:
    assert _rules(body, css) == expected


def test_an_email_needs_lang_on_its_wrapper_and_a_preview_text() -> None:
    body = '<div><a href="https://x.example/">View this edition in your browser</a></div>'
    assert _rules(body, email=True) == [
        "lang the text 'View this edition in your browser'",
        "preview-text the first text 'View this edition in your browser'",
    ]
    body = (
        '<div style="display:none">Experts met in Sofia.</div>'
        '<div lang="en" dir="auto"><a href="https://x.example/">View in browser</a></div>'
    )
    assert _rules(body, email=True) == []


def test_a_page_without_lang_dir_or_color_scheme_is_reported() -> None:
    findings, _ = check_html("<html><body><p>text</p></body></html>")
    assert [f.rule for f in findings] == ["lang", "lang", "color-scheme"]


@pytest.mark.parametrize(
    ("a", "b", "ratio"),
    [("#000", "#fff", 21.0), ("#777777", "white", 4.48), ("rgb(0,51,153)", "#ffffff", 10.86)],
)
def test_contrast_ratio_is_wcag_2(a: str, b: str, ratio: float) -> None:
    first, second = parse_colour(a), parse_colour(b)
    assert first is not None and second is not None
    assert contrast(first, second) == pytest.approx(ratio, abs=0.01)


def test_the_service_pages_and_the_confirmation_email_pass_the_static_rules(site: Path) -> None:
    from tests.test_web import Web

    web = Web(site)
    pages = {path: web.client.get(path) for path in ("/subscribe", "/preferences", "/nope")}
    pages["/subscribe (sent)"] = web.subscribe("reader@example.net")
    (confirmation,) = web.confirmations()
    confirm = web.confirmation_path(confirmation)
    pages["/confirm/…"] = web.client.get(confirm)
    pages["/confirm/… (bad token)"] = web.client.get("/confirm/not-a-token")
    pages["/unsubscribe/… (bad token)"] = web.client.get("/unsubscribe/not-a-token")
    found = {
        name: [f"{f.rule} {f.element} {f.message}" for f in check_html(page.text)[0]]
        for name, page in pages.items()
    }
    html = confirmation.get_body(("html",)).get_content()
    found["the confirmation email"] = [
        f"{f.rule} {f.element} {f.message}" for f in check_html(html, email=True)[0]
    ]
    assert {name: f for name, f in found.items() if f} == {}


def test_the_hidden_preview_text_is_not_low_contrast_for_spam_filters() -> None:
    # SpamAssassin's HTML_FONT_LOW_CONTRAST scores text whose colour is close to its
    # background, hidden or not; MJML writes the preview text white on the light page.
    from tests.test_golden import GOLDEN

    html = (GOLDEN / "email.html").read_text()
    preview = re.search(r'<div style="display:none;[^"]*?color:(#[0-9a-f]{6});', html)
    page = re.search(r'<body style="[^"]*background-color:(#[0-9a-f]{6});', html)
    assert preview and page
    colours = parse_colour(preview.group(1)), parse_colour(page.group(1))
    assert colours[0] and colours[1]
    assert contrast(colours[0], colours[1]) >= 4.5
