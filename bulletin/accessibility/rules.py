"""The static accessibility rules: one pass over a rendered HTML output finds every
element that a screen reader, a magnifier or a low-vision reader would stumble on.

No browser is needed: colours come from inline styles, `bgcolor` and the output's own
<style> rules, so every `check`, `build` and `publish` runs these on every output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from bulletin.accessibility.colours import (
    Rgb,
    Rule,
    contrast,
    declarations,
    hex_of,
    parse_colour,
    stylesheet,
)
from bulletin.content.markup import normalise_space
from bulletin.render.words import LANGUAGE_NAMES, labels

#: Each rule a site may name in [accessibility.warnings], and what it asks for.
RULES = {
    "lang": "a lang (and dir) on <html> and on the email's content wrapper",
    "image-alt": "an alt attribute on every image",
    "layout-table": 'role="presentation" on every table that lays out rather than holds data',
    "heading-order": "headings that go down one level at a time",
    "link-name": "link text that says where the link goes",
    "contrast": "text contrast of at least 4.5:1 (3:1 for large text)",
    "color-scheme": "a declared color-scheme, so that dark mode keeps the colours readable",
    "preview-text": "a preview text that is not the boilerplate of the first line",
    "text-part": "a text part that carries every entry and link of the HTML part",
}
_VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr".split()  # noqa: SIM905
)
_HIDDEN_TAGS = frozenset(("head", "style", "script", "title", "template", "noscript"))
_LANG = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$")
_SIZE = re.compile(r"([\d.]+)\s*(px|pt|em|rem|%)?")
#: Link texts that say nothing about where they go; repeated with different targets they
#: leave a screen reader's list of links with several identical entries.
GENERIC_LINKS = frozenset(
    {"click here", "here", "more", "read more", "link", "this", "continue", "details"}
    | {labels(lang)["read_online"].lower() for lang in LANGUAGE_NAMES}
)
WHITE: Rgb = (255.0, 255.0, 255.0)
BLACK: Rgb = (0.0, 0.0, 0.0)
LINK_BLUE: Rgb = (0.0, 0.0, 238.0)


@dataclass(frozen=True)
class Finding:
    """One element that breaks one rule."""

    rule: str
    element: str  # how to find it: `<a href="…">Read online</a>`
    message: str


@dataclass
class _Box:
    tag: str
    classes: frozenset[str]
    id: str
    colour: Rgb
    background: Rgb
    size: float  # px
    bold: bool
    hidden: bool
    lang: bool  # this element or an ancestor inside <body> carries lang


@dataclass
class _Link:
    href: str
    label: str  # aria-label or title
    text: list[str] = field(default_factory=list)
    start: str = ""


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[Finding] = []
        self.rules: list[Rule] = []
        root = _Box("", frozenset(), "", BLACK, WHITE, 16.0, False, False, False)
        self.stack: list[_Box] = [root]
        self.html_attrs: dict[str, str] = {}
        self.color_scheme = False
        self.links: list[_Link] = []
        self.link: _Link | None = None
        self.headings: list[tuple[int, str]] = []
        self.heading: list[str] | None = None
        self.texts: list[str] = []  # visible text, in order
        self.hidden_texts: list[tuple[int, str]] = []  # (visible texts before it, text)
        self.unlabelled_text = ""
        self.in_body = False
        self.seen_contrast: set[tuple[str, str]] = set()
        self._style: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_attrs = a
        elif tag == "body":
            self.in_body = True
        elif tag == "style":
            self._style = []
        elif tag == "meta" and a.get("name", "").lower() == "color-scheme":
            self.color_scheme = True
        if tag == "img":
            self._image(a)
        elif tag == "table":
            self._table(a)
        elif tag == "a" and "href" in a:
            self.link = _Link(a["href"], a.get("aria-label") or a.get("title", ""))
            self.link.start = _describe(tag, a)
        elif re.fullmatch(r"h[1-6]", tag):
            self.heading = []
            self.headings.append((int(tag[1]), _describe(tag, a)))
        if tag not in _VOID:
            self.stack.append(self._box(tag, a))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self.handle_starttag(tag, attrs)
        else:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style is not None:
            css = "".join(self._style)
            self.rules += stylesheet(css)
            self.color_scheme = self.color_scheme or "color-scheme" in css
            self._style = None
        if tag == "a" and self.link is not None:
            self.links.append(self.link)
            self.link = None
        if re.fullmatch(r"h[1-6]", tag) and self.heading is not None:
            self.heading = None
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self._style is not None:
            self._style.append(data)
            return
        box = self.stack[-1]
        text = normalise_space(data)
        if not text or not self.in_body:
            return
        if box.hidden:
            self.hidden_texts.append((len(self.texts), text))
            return
        self.texts.append(text)
        if self.link is not None:
            self.link.text.append(text)
        if self.heading is not None:
            self.heading.append(text)
        if not box.lang and not self.unlabelled_text:
            self.unlabelled_text = text
        self._contrast(box, text)

    def _box(self, tag: str, a: dict[str, str]) -> _Box:
        parent = self.stack[-1]
        classes = frozenset(a.get("class", "").lower().split())
        id_ = a.get("id", "").lower()
        style: dict[str, str] = {}
        for rule in self.rules:
            if self._matches(rule, tag, classes, id_):
                style.update(rule.declarations)
        style.update(declarations(a.get("style", "")))
        colour = parent.colour
        if tag == "a":
            colour = LINK_BLUE
        if tag == "font" and (c := parse_colour(a.get("color", ""))):
            colour = c
        if c := parse_colour(style.get("color", "")):
            colour = c
        background = parent.background
        for value in (a.get("bgcolor", ""), style.get("background", "")):
            background = parse_colour(value) or background
        background = parse_colour(style.get("background-color", "")) or background
        hidden = (
            parent.hidden
            or tag in _HIDDEN_TAGS
            or "hidden" in a
            or a.get("aria-hidden") == "true"
            or style.get("display", "") == "none"
            or style.get("visibility", "") == "hidden"
            or style.get("opacity", "1").strip() in ("0", "0.0")
            or (style.get("max-height", "") in ("0", "0px") and "overflow" in style)
        )
        bold = parent.bold or tag in ("b", "strong", "th") or bool(re.fullmatch(r"h[1-6]", tag))
        weight = style.get("font-weight", "")
        if weight:
            bold = weight == "bold" or (weight.isdigit() and int(weight) >= 700)
        size = _size(style.get("font-size", ""), parent.size) or _heading_size(tag, parent.size)
        lang = parent.lang or (self.in_body and a.get("lang", "") not in ("", "und"))
        return _Box(tag, classes, id_, colour, background, size, bold, hidden, lang)

    def _matches(self, rule: Rule, tag: str, classes: frozenset[str], id_: str) -> bool:
        *ancestors, last = rule.chain
        if not last.matches(tag, classes, id_):
            return False
        depth = len(self.stack) - 1
        for compound in reversed(ancestors):
            while depth > 0 and not compound.matches(
                self.stack[depth].tag, self.stack[depth].classes, self.stack[depth].id
            ):
                depth -= 1
            if depth <= 0:
                return False
            depth -= 1
        return True

    def _image(self, a: dict[str, str]) -> None:
        if "alt" not in a and a.get("role") not in ("presentation", "none"):
            self.findings.append(
                Finding(
                    "image-alt",
                    _describe("img", a),
                    "has no alt attribute: give it one that says what the image shows "
                    '(alt="" if it only decorates)',
                )
            )

    def _table(self, a: dict[str, str]) -> None:
        # A data table announces itself with <th> or <caption>; the check would need the
        # table's content, so layout is judged by the attributes every email table has.
        if a.get("role") in ("presentation", "none"):
            return
        if "cellpadding" in a or "cellspacing" in a or "border" in a or "align" in a:
            self.findings.append(
                Finding(
                    "layout-table",
                    _describe("table", a),
                    'lays out the page but lacks role="presentation", so screen readers '
                    "announce it as a data table",
                )
            )

    def _contrast(self, box: _Box, text: str) -> None:
        ratio = contrast(box.colour, box.background)
        large = box.size >= 24 or (box.size >= 18.66 and box.bold)
        needed = 3.0 if large else 4.5
        if ratio >= needed:
            return
        key = (hex_of(box.colour), hex_of(box.background))
        if key in self.seen_contrast:
            return
        self.seen_contrast.add(key)
        self.findings.append(
            Finding(
                "contrast",
                f"<{box.tag}> {_clip(text)!r}",
                f"text {key[0]} on {key[1]} has a contrast of {ratio:.2f}:1, below "
                f"{needed:g}:1; darken the text or lighten its background",
            )
        )


def _size(value: str, parent: float) -> float | None:
    match = _SIZE.match(value.strip())
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2) or "px"
    return {
        "px": number,
        "pt": number * 4 / 3,
        "em": number * parent,
        "rem": number * 16,
        "%": number * parent / 100,
    }[unit]


def _heading_size(tag: str, parent: float) -> float:
    scale = {"h1": 2.0, "h2": 1.5, "h3": 1.17}
    return parent * scale.get(tag, 1.0)


def _describe(tag: str, a: dict[str, str]) -> str:
    keys = ("id", "class", "src", "href", "lang")
    shown = " ".join(f'{k}="{_clip(a[k], 50)}"' for k in keys if a.get(k))
    return f"<{tag}{' ' + shown if shown else ''}>"


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def check_html(html: str, *, email: bool = False) -> tuple[list[Finding], list[str]]:
    """Every finding in one HTML output, and the web links it has (for the text part)."""
    walker = _Walker()
    walker.feed(html)
    walker.close()
    found = walker.findings
    attrs = walker.html_attrs
    if not _LANG.match(attrs.get("lang", "")) or attrs["lang"] == "und":
        found.append(Finding("lang", "<html>", 'lacks a valid lang attribute (lang="en")'))
    if not attrs.get("dir"):
        found.append(Finding("lang", "<html>", 'lacks a dir attribute (dir="ltr" or "auto")'))
    if email and walker.unlabelled_text:
        found.append(
            Finding(
                "lang",
                f"the text {_clip(walker.unlabelled_text)!r}",
                "is outside any element with a lang attribute; webmail drops <html>, so "
                "wrap the content in an element with lang (and dir)",
            )
        )
    if not walker.color_scheme:
        found.append(
            Finding(
                "color-scheme",
                "<head>",
                'declares no color-scheme (<meta name="color-scheme" content="light dark">)',
            )
        )
    found += _heading_order(walker.headings)
    found += _link_names(walker.links)
    if email:
        found += _preview(walker)
    return found, [link.href for link in walker.links if link.href.startswith("http")]


def _heading_order(headings: list[tuple[int, str]]) -> list[Finding]:
    found = []
    previous = 0
    for level, element in headings:
        if previous and level > previous + 1:
            found.append(
                Finding(
                    "heading-order",
                    element,
                    f"follows an h{previous}: headings go down one level at a time "
                    f"(use h{previous + 1})",
                )
            )
        previous = level
    return found


def _link_names(links: list[_Link]) -> list[Finding]:
    found = []
    targets: dict[str, set[str]] = {}
    for link in links:
        name = normalise_space(link.label or " ".join(link.text))
        if not name:
            found.append(Finding("link-name", link.start, "has no text a screen reader can read"))
        elif not link.label:
            targets.setdefault(name.lower(), set()).add(link.href)
    for link in links:
        text = normalise_space(" ".join(link.text)).lower()
        if not link.label and text in GENERIC_LINKS and len(targets.get(text, ())) > 1:
            found.append(
                Finding(
                    "link-name",
                    f"{link.start}{_clip(' '.join(link.text))}</a>",
                    "is one of several links with the same text and different targets; "
                    "say where it goes (aria-label with the entry's title)",
                )
            )
    return found


def _preview(walker: _Walker) -> list[Finding]:
    preheader = [text for before, text in walker.hidden_texts if before == 0]
    first = preheader[0] if preheader else (walker.texts[0] if walker.texts else "")
    chrome = {labels(lang)[key].lower() for lang in LANGUAGE_NAMES for key in ("view_in_browser",)}
    if first and first.lower() not in chrome:
        return []
    return [
        Finding(
            "preview-text",
            f"the first text {_clip(first)!r}",
            "is what inboxes show as the preview; add a preview text (mj-preview) that "
            "says what the edition is about",
        )
    ]
