"""The one pass over an HTML output that both gates read: boxes shared between documents
give each document what working it out alone gives, and the EU-notice gate reads the
same images and text from the pass as it did from a pass of its own."""

from __future__ import annotations

import pytest

from bulletin.accessibility import check_accessibility, scan, workers
from bulletin.accessibility.rules import check_html, scan_html
from bulletin.compliance import Output, read_page
from bulletin.config.model import Config
from bulletin.htmlscan import Page

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


def _page(number: int, grey: bool) -> str:
    colour = "#aaa" if grey else "#111"
    return (
        f'{HEAD}</head><body><p style="color:{colour}">page {number}</p>'
        f'<img src="e.png" alt="x"><p>after {number}</p></body></html>'
    )


def test_many_outputs_are_read_by_worker_processes_as_here(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "PARALLEL_FROM", 2)
    monkeypatch.setattr(workers, "CHUNK", 3)
    monkeypatch.setattr(workers, "_cores", lambda: 2)
    documents = [(_page(n, grey=n in (4, 17)), n % 5 == 0) for n in range(25)]
    assert workers.scan_all(documents) == [scan_html(h, email=e) for h, e in documents]
    outputs = [
        Output(f"public/{n}/index.html", True, html, (), template=f"templates/{n}.html.j2")
        for n, (html, _) in enumerate(documents)
    ]
    pages: dict[str, Page] = {}
    problems = check_accessibility(config, outputs, pages).problems
    assert {(p.path, p.code) for p in problems if p.code == "a11y-contrast"} == {
        ("templates/4.html.j2", "a11y-contrast"),
        ("templates/17.html.j2", "a11y-contrast"),
    }
    assert pages == {html: scan_html(html)[2] for html, _ in documents}


def test_an_error_in_a_worker_is_raised_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "PARALLEL_FROM", 2)
    monkeypatch.setattr(workers, "CHUNK", 1)
    monkeypatch.setattr(workers, "_cores", lambda: 2)
    documents = [(_page(n, grey=False), False) for n in range(6)]
    documents[0] = (None, False)  # type: ignore[assignment]  # not a document: the first chunk
    with pytest.raises(AttributeError):
        workers.scan_all(documents)
