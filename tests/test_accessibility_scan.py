"""The one pass over an HTML output that both gates read: boxes shared between documents
give each document what working it out alone gives, and the EU-notice gate reads the
same images and text from the pass as it did from a pass of its own."""

from __future__ import annotations

import pytest

from bulletin.accessibility import scan
from bulletin.accessibility.rules import check_html, scan_html
from bulletin.compliance import read_page

HEAD = '<!doctype html><html lang="en" dir="ltr"><head><meta name="color-scheme" content="light">'


def _contrast(html: str) -> list[str]:
    return [f.element for f in check_html(html)[0] if f.rule == "contrast"]


@pytest.fixture(autouse=True)
def fresh_boxes() -> None:
    scan._SHARED = scan._Shared()


def test_a_class_only_a_later_style_names_still_decides_the_box() -> None:
    before = f'{HEAD}</head><body class="dark"><p>fine</p></body></html>'
    later = (
        f'{HEAD}</head><body class="dark"><style>.dark p {{ color: #aaa }}</style>'
        "<p>grey</p></body></html>"
    )
    for _ in range(2):  # the second time, from the boxes the first one left
        assert _contrast(before) == []
        assert _contrast(later) == ["<p> 'grey'"]


def test_an_id_a_rule_names_decides_the_box_but_other_ids_share_one() -> None:
    css = "<style>#grey p { color: #aaa }</style></head><body>"
    pages = [f'{HEAD}{css}<article id="{i}"><p>text</p></article></body></html>' for i in "abc"]
    grey = f'{HEAD}{css}<article id="grey"><p>text</p></article></body></html>'
    for html in [*pages, grey, *pages, grey]:
        assert _contrast(html) == (["<p> 'text'"] if 'id="grey"' in html else [])


def test_boxes_are_shared_between_documents_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    html = f'{HEAD}</head><body><div class="a"><p>one</p></div></body></html>'
    check_html(html)
    shared = scan._SHARED.count
    check_html(html.replace("one", "two"))
    assert scan._SHARED.count == shared  # nothing new: every box was met before
    monkeypatch.setattr(scan, "_SHARED_LIMIT", 2)
    check_html(html.replace("a", "b"))
    assert scan._SHARED.count <= 2  # started afresh


def test_the_eu_gate_reads_images_and_visible_text_from_the_same_pass() -> None:
    html = (
        f"{HEAD}<title>Title</title><style>p {{ color: #111 }}</style>"
        "<script>var x = 1;</script></head><body><p>Before</p>"
        '<img src="emblem.png" alt="Funded  by the EU.">'
        "<p>Funded by\n the <b>EU</b>.</p><p>" + "word " * 100 + "</p>"
        '<img src="other.png"><noscript>shown</noscript></body></html>'
    )
    findings, _, page = scan_html(html)
    assert page == read_page(html)
    assert page.text.startswith("Before Funded by the EU . word word")
    assert page.text.endswith("word shown")
    emblem, other = page.images
    assert (emblem.src, emblem.alt) == ("emblem.png", "Funded  by the EU.")
    assert emblem.following.startswith("Funded by the EU . word")
    assert emblem.following.endswith("word")  # whole texts, up to 400 characters: not "shown"
    assert (other.src, other.alt, other.following) == ("other.png", "", "shown")
    assert [f.rule for f in findings] == ["image-alt"]
