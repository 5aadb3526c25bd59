"""One pass over a rendered HTML output: the colours, sizes and visibility of every text
(from inline styles, `bgcolor` and the output's own <style> rules), its links, headings
and images, and the element-level findings (alt, layout tables, contrast) on the way."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

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
from bulletin.htmlscan import HtmlReader

_VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr".split()  # noqa: SIM905
)
_HIDDEN_TAGS = frozenset(("head", "style", "script", "title", "template", "noscript"))
LANG = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$")
_SIZE = re.compile(r"([\d.]+)\s*(px|pt|em|rem|%)?")
_HEADINGS = frozenset(f"h{n}" for n in range(1, 7))
_HEADING_SCALE = {"h1": 2.0, "h2": 1.5, "h3": 1.17}
_BOLD = _HEADINGS | {"b", "strong", "th"}
_NONE: frozenset[str] = frozenset()
_NO_RULES: list[Rule] = []
_NO_STYLE: dict[str, str] = {}
#: Attributes that leave an element looking like its parent; tags that never do.
_PLAIN = frozenset({"href", "lang", "dir", "src", "alt", "width", "height", "title", "rel",
                    "name", "content", "charset", "hreflang", "type", "for", "value"})  # fmt: skip
_SPECIAL = _HIDDEN_TAGS | _BOLD | {"a", "font"}
WHITE: Rgb = (255.0, 255.0, 255.0)
BLACK: Rgb = (0.0, 0.0, 0.0)
LINK_BLUE: Rgb = (0.0, 0.0, 238.0)


@dataclass(frozen=True)
class Finding:
    """One element that breaks one rule."""

    rule: str
    element: str  # how to find it: `<a href="…">Read online</a>`
    message: str


@dataclass(slots=True)
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
class Link:
    href: str
    label: str  # aria-label or title
    text: list[str] = field(default_factory=list)
    start: str = ""


class Walker(HtmlReader):
    """What one HTML document holds for the rules; `feed` it once."""

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[Finding] = []
        self.rules: list[Rule] = []
        root = _Box("", frozenset(), "", BLACK, WHITE, 16.0, False, False, False)
        self.stack: list[_Box] = [root]
        self.html_attrs: dict[str, str] = {}
        self.color_scheme = False
        self.links: list[Link] = []
        self.link: Link | None = None
        self.headings: list[tuple[int, str]] = []
        self.heading: list[str] | None = None
        self.texts: list[str] = []  # visible text, in order
        self.hidden_texts: list[tuple[int, str]] = []  # (visible texts before it, text)
        self.unlabelled_text = ""
        self.in_body = False
        self.seen_contrast: set[tuple[str, str]] = set()
        self._style: list[str] | None = None
        self._index: dict[str, list[Rule]] | None = None

    def feed(self, html: str) -> None:
        # libxml2 parses and calls the handlers below as it goes (a C parser and no tree:
        # the gate must stay a small part of check's time); an empty document has nothing,
        # which the lang rule reports.
        self.read(html)

    def handle_starttag(self, tag: str, a: dict[str, str]) -> None:
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
            self.link = Link(a["href"], a.get("aria-label") or a.get("title", ""))
            self.link.start = describe(tag, a)
        elif tag in _HEADINGS:
            self.heading = []
            self.headings.append((int(tag[1]), describe(tag, a)))
        if tag not in _VOID:
            self.stack.append(self._box(tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return  # never pushed on the stack
        if tag == "style" and self._style is not None:
            css = "".join(self._style)
            self.rules += stylesheet(css)
            self._index = None
            self.color_scheme = self.color_scheme or "color-scheme" in css
            self._style = None
        if tag == "a" and self.link is not None:
            self.links.append(self.link)
            self.link = None
        if tag in _HEADINGS and self.heading is not None:
            self.heading = None
        self.stack.pop()  # libxml2 nests every element properly

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
        if parent.hidden:  # nothing inside hidden content is read or seen
            return _Box(tag, _NONE, "", parent.colour, parent.background, parent.size,
                        parent.bold, True, parent.lang)  # fmt: skip
        if _PLAIN.issuperset(a) and tag not in _SPECIAL and not self._by_tag(tag):
            # most elements: nothing of their own changes what their text looks like
            lang = parent.lang or (self.in_body and a.get("lang", "") not in ("", "und"))
            return _Box(tag, _NONE, "", parent.colour, parent.background, parent.size,
                        parent.bold, False, lang)  # fmt: skip
        classes = frozenset(a["class"].lower().split()) if "class" in a else _NONE
        id_ = a.get("id", "").lower()
        style = _inline(a["style"]) if "style" in a else _NO_STYLE
        if self.rules:
            matched = [
                r
                for r in self._candidates(tag, classes, id_)
                if self._matches(r, tag, classes, id_)
            ]
            if matched:
                style = {k: v for r in matched for k, v in r.declarations.items()} | style
        colour = LINK_BLUE if tag == "a" else parent.colour
        if tag == "font" and a.get("color") and (c := parse_colour(a["color"])):
            colour = c
        if style.get("color") and (c := parse_colour(style["color"])):
            colour = c
        background = parent.background
        for value in (a.get("bgcolor"), style.get("background"), style.get("background-color")):
            if value:
                background = parse_colour(value) or background
        hidden = (
            tag in _HIDDEN_TAGS
            or "hidden" in a
            or a.get("aria-hidden") == "true"
            or (bool(style) and _hides(style))
        )
        bold = parent.bold or tag in _BOLD
        weight = style.get("font-weight", "")
        if weight:
            bold = weight == "bold" or (weight.isdigit() and int(weight) >= 700)
        size = parent.size * _HEADING_SCALE.get(tag, 1.0)
        if "font-size" in style:
            size = _size(style["font-size"], parent.size) or size
        lang = parent.lang or (self.in_body and a.get("lang", "") not in ("", "und"))
        return _Box(tag, classes, id_, colour, background, size, bold, hidden, lang)

    def _by_tag(self, tag: str) -> bool:
        """Whether a stylesheet rule may match `tag` whatever its classes."""
        if not self.rules:
            return False
        index = self._rule_index()
        return tag in index or "" in index

    def _rule_index(self) -> dict[str, list[Rule]]:
        """The stylesheet rules by what their last compound needs: an id, a class or a tag."""
        if self._index is None:
            self._index = {}
            for rule in self.rules:
                last = rule.chain[-1]
                key = f"#{last.id}" if last.id else min(last.classes, default="") or last.tag
                self._index.setdefault(key, []).append(rule)
        return self._index

    def _candidates(self, tag: str, classes: frozenset[str], id_: str) -> list[Rule]:
        index = self._rule_index()
        found = index.get("", _NO_RULES) + index.get(tag, _NO_RULES)
        for name in classes:
            if name in index:
                found = found + index[name]
        if id_ and f"#{id_}" in index:
            found = found + index[f"#{id_}"]
        return found

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
                    describe("img", a),
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
                    describe("table", a),
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
                f"<{box.tag}> {clip(text)!r}",
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


@functools.lru_cache(maxsize=4096)
def _inline(style: str) -> dict[str, str]:
    """An inline style's declarations; email HTML repeats the same few many times over.
    The dict is shared: never changed."""
    return declarations(style)


def _hides(style: dict[str, str]) -> bool:
    return (
        style.get("display", "") == "none"
        or style.get("visibility", "") == "hidden"
        or style.get("opacity", "1").strip() in ("0", "0.0")
        or (style.get("max-height", "") in ("0", "0px") and "overflow" in style)
    )


def describe(tag: str, a: dict[str, str]) -> str:
    keys = ("id", "class", "src", "href", "lang")
    shown = " ".join(f'{k}="{clip(a[k], 50)}"' for k in keys if a.get(k))
    return f"<{tag}{' ' + shown if shown else ''}>"


def clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
