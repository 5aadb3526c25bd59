"""Turns an entry's Markdown body into sanitised HTML, and any HTML into readable plain text."""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token


@functools.cache
def _parser(keep_every_link: bool) -> MarkdownIt:
    """The Markdown parser, made on first use: an entry found in the entry cache is not
    parsed again, and `bulletin check` need not load markdown-it at all.

    `keep_every_link` is for finding unsafe links only: markdown-it turns a link it refuses
    (javascript:, ...) into plain text, which would hide it from find_unsafe_html."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    parser.enable("table").enable("strikethrough")
    if keep_every_link:
        parser.validateLink = lambda url: True  # type: ignore[method-assign]
    return parser


ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}


@functools.cache
def _unsafe_html() -> re.Pattern[str]:
    """Raw HTML that sanitising would silently drop; the author is told instead. Compiled
    when an entry is first parsed: a command whose entries come from the cache needs none."""
    return re.compile(
        r"<\s*(script|iframe|object|embed|style|form|input|button|meta|link|base|svg|math)\b"
        r"|\son[a-z]+\s*=|javascript\s*:|vbscript\s*:|data\s*:\s*text/html",
        re.IGNORECASE,
    )


@dataclass(frozen=True)
class UnsafeHtml:
    """A piece of raw HTML in a body that could run code in a reader's client."""

    line: int  # 1-based, within the body
    snippet: str


def render_markdown(body: str) -> str:
    """Markdown → HTML that is safe to put in an email, feed or page."""
    html = _parser(False).render(body)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    ).strip()


def find_unsafe_html(body: str) -> list[UnsafeHtml]:
    """Every raw-HTML token in `body` that carries script, frames or event handlers."""
    unsafe = _unsafe_html()
    if not unsafe.search(body):  # the common case: no need to parse at all
        return []
    found = []
    for token in _walk(_parser(True).parse(body)):
        if token.type in ("html_block", "html_inline"):
            match = unsafe.search(token.content)
            if match:
                line = token.map[0] + 1 if token.map else 0
                line += token.content[: match.start()].count("\n") if line else 0
                found.append(UnsafeHtml(line, match.group(0).strip()))
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            if unsafe.search(href):
                line = token.map[0] + 1 if token.map else 0
                found.append(UnsafeHtml(line, href[:40]))
    return found


def _walk(tokens: Iterable[Token]) -> Iterator[Token]:
    """Every token, children included; a child's map is the line it sits on in its block."""
    for token in tokens:
        yield token
        offset = 0  # lines of the parent (a paragraph, say) before this child
        for child in token.children or ():
            if child.map is None and token.map:
                child.map = [token.map[0] + offset, token.map[0] + offset + 1]
            yield from _walk([child])
            if child.type in ("softbreak", "hardbreak"):
                offset += 1
            elif child.type == "html_inline":
                offset += child.content.count("\n")


@functools.lru_cache(maxsize=4096)
def html_to_text(html: str, width: int = 72) -> str:
    """Readable plain text from HTML: paragraphs, lists, headings and links kept."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser.text(width)


class _TextParser(HTMLParser):
    _BLOCKS = frozenset(
        "p div h1 h2 h3 h4 h5 h6 li tr blockquote pre table section article header footer "  # noqa: SIM905
        "ul ol hr".split()
    )
    _SKIP = frozenset(("style", "script", "head", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._blocks: list[tuple[str, str]] = []  # (prefix, text)
        self._current: list[str] = []
        self._prefix = ""
        self._skip = 0
        self._links: list[str | None] = []
        self._list_depth = 0
        self._pre = 0
        self._heading = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCKS:
            self._flush()
            if tag == "li":
                self._prefix = "  " * (self._list_depth - 1) + "- "
            elif tag in ("ul", "ol"):
                self._list_depth += 1
            elif tag == "pre":
                self._pre += 1
            elif tag in ("h1", "h2", "h3"):
                self._heading = tag
            elif tag == "hr":
                self._blocks.append(("", "-" * 20))
        elif tag == "br":
            self._current.append("\n")
        elif tag == "a":
            self._links.append(dict(attrs).get("href"))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._current.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self._flush()
            if tag in ("ul", "ol"):
                self._list_depth = max(0, self._list_depth - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag == "a" and self._links:
            href = self._links.pop()
            label = "".join(self._current).strip()
            if href and href.startswith(("http", "mailto:")) and href not in label:
                self._current.append(f" <{href.removeprefix('mailto:')}>")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._current.append(data)

    def _flush(self) -> None:
        raw = "".join(self._current)
        self._current = []
        if self._pre:
            text = raw.strip("\n")
        else:
            text = "\n".join(" ".join(part.split()) for part in raw.split("\n")).strip()
        if text:
            if self._heading:
                text = text + "\n" + ("=" if self._heading != "h3" else "-") * len(text)
            self._blocks.append((self._prefix, text))
        self._prefix = ""
        self._heading = ""

    def text(self, width: int) -> str:
        self._flush()
        out: list[str] = []
        for prefix, text in self._blocks:
            lines = []
            for paragraph_line in text.split("\n"):
                if len(paragraph_line) <= width or "=" * 3 in paragraph_line:
                    lines.append(paragraph_line)
                else:
                    lines.extend(
                        textwrap.wrap(
                            paragraph_line, width, break_long_words=False, break_on_hyphens=False
                        )
                    )
            block = "\n".join(lines)
            if prefix:
                block = textwrap.indent(block, " " * len(prefix))
                block = prefix + block[len(prefix) :]
            out.append(block)
        joined = []
        for i, block in enumerate(out):
            is_item = self._blocks[i][0] != ""
            previous_item = i > 0 and self._blocks[i - 1][0] != ""
            if i and not (is_item and previous_item):
                joined.append("")
            joined.append(block)
        return "\n".join(joined).strip() + "\n"


def normalise_space(text: str) -> str:
    """Collapse all white space, typographic apostrophes aside, for exact-wording checks."""
    return " ".join(text.replace("\u00a0", " ").split())
