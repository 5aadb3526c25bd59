"""One pass over a rendered HTML output: the colours, sizes and visibility of every text
(from inline styles, `bgcolor` and the output's own <style> rules), its links, headings
and images, and the element-level findings (alt, layout tables, contrast) on the way; and,
in the same pass, what the EU-notice gate reads (its images and visible text).

Every build walks thousands of pages made from the same templates, so what an element
looks like (its box) is worked out once: boxes are shared, each remembering the boxes of
the children met under it, by what decides them (the stylesheet in force, the tag and the
attributes that change how text looks). A page's own elements (an entry's article, its
id) are worked out as they come and then share their children's boxes with other pages.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from bulletin.accessibility.boxes import _Box, _Context, _context, _hides, _inline, _Raw, _size
from bulletin.accessibility.colours import Rgb, Rule, parse_colour
from bulletin.content.markup import normalise_space
from bulletin.htmlscan import HtmlReader, Image, Page, following

_VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr".split()  # noqa: SIM905
)
_HIDDEN_TAGS = frozenset(("head", "style", "script", "title", "template", "noscript"))
#: what the EU-notice gate does not read: a reader never sees it
_CONCEALED = frozenset(("style", "script", "head", "title"))
LANG = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$")
_HEADINGS = frozenset(f"h{n}" for n in range(1, 7))
_HEADING_SCALE = {"h1": 2.0, "h2": 1.5, "h3": 1.17}
_BOLD = _HEADINGS | {"b", "strong", "th"}
_NONE: frozenset[str] = frozenset()
_NO_RULES: tuple[Rule, ...] = ()
_NO_STYLE: dict[str, str] = {}
_NO_ATTRS: dict[str, str] = {}
#: The attributes that decide what an element's text looks like (with its tag, its
#: parent's box and the stylesheet); the others (href, src, alt…) never do.
_STYLING = frozenset(("class", "id", "style", "color", "bgcolor", "hidden", "aria-hidden", "lang"))
#: Start tags the walk notes beyond their box; end tags likewise.
_NOTED = _HEADINGS | _CONCEALED | {"html", "body", "meta", "img", "table", "a"}
_NOTED_END = _HEADINGS | _CONCEALED | {"a"}
WHITE: Rgb = (255.0, 255.0, 255.0)
BLACK: Rgb = (0.0, 0.0, 0.0)
LINK_BLUE: Rgb = (0.0, 0.0, 238.0)
#: Shared boxes beyond this many (some tens of megabytes), the memory starts afresh: a build of
#: 10,000 entries has about 12,000 (an article of its own per entry page).
_SHARED_LIMIT = 20_000


@dataclass(frozen=True)
class Finding:
    """One element that breaks one rule."""

    rule: str
    element: str  # how to find it: `<a href="…">Read online</a>`
    message: str


class _Shared:
    """The root of the shared boxes, and how many there are under it."""

    def __init__(self) -> None:
        self.root = _Box("", _NONE, "", BLACK, WHITE, 16.0, False, False, False)
        self.count = 0


_SHARED = _Shared()


@dataclass
class Link:
    href: str
    label: str  # aria-label or title
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)

    @property
    def start(self) -> str:
        """The link's start tag, as a finding shows it."""
        return describe("a", self.attrs)


@dataclass(frozen=True)
class Heading:
    level: int
    attrs: dict[str, str] = field(hash=False)

    @property
    def element(self) -> str:
        """The heading's start tag, as a finding shows it."""
        return describe(f"h{self.level}", self.attrs)


class Walker(HtmlReader):
    """What one HTML document holds for the rules, and what the EU-notice gate reads of it
    (`page()`); `feed` it once (`walker()` gives one to feed, reset)."""

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Ready for another document (everything read of the last is left to its reader)."""
        self.findings: list[Finding] = []
        #: the open elements' boxes, each with its classes and id where the box leaves
        #: some out (see _new_box)
        self.stack: list[tuple[_Box, _Raw]] = [(_SHARED.root, None)]
        self._css: tuple[str, ...] = ()
        self._ctx = _context((), False)
        self.html_attrs: dict[str, str] = {}
        self.color_scheme = False
        self.links: list[Link] = []
        self.link: Link | None = None
        self.headings: list[Heading] = []
        self.heading: list[str] | None = None
        self.texts: list[str] = []  # visible text, in order
        self.hidden_texts: list[tuple[int, str]] = []  # (visible texts before it, text)
        self.unlabelled_text = ""
        self.in_body = False
        self.seen_contrast: set[tuple[str, str]] = set()
        self._style: list[str] | None = None
        # what the EU-notice gate reads: every image (and where the text stood then), and
        # the text outside <head>, <title>, <style> and <script>
        self._images: list[tuple[str, str, int]] = []
        self._visible: list[str] = []
        self._concealed = 0

    def feed(self, html: str) -> None:
        # libxml2 parses and calls the handlers below as it goes (a C parser and no tree:
        # the gate must stay a small part of check's time); an empty document has nothing,
        # which the lang rule reports.
        self.read(html)

    def page(self) -> Page:
        """What the EU-notice gate reads of the document."""
        texts = self._visible
        images = [Image(src, alt, following(texts, at)) for src, alt, at in self._images]
        return Page(images, " ".join(texts))

    # libxml2's parser target interface, taken directly: it is called for every element
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self._pending:
            self._flush()
        tag = tag.lower()
        a = attrib or _NO_ATTRS
        if tag in _NOTED:
            self._note(tag, a)
        if tag in _VOID:
            return  # never pushed on the stack
        parent = self.stack[-1][0]
        if a:
            styling = tuple([item for item in a.items() if item[0] in _STYLING])
            key: tuple[object, ...] = (self._ctx, tag, styling) if styling else (self._ctx, tag)
        else:
            key = (self._ctx, tag)
        known = parent.children.get(key)
        if known is None:
            known = self._new_box(parent, key, tag, a)
        self.stack.append(known)

    def end(self, tag: str) -> None:
        if self._pending:
            self._flush()
        tag = tag.lower()
        if tag in _VOID:
            return  # never pushed on the stack
        if tag in _NOTED_END:
            self._note_end(tag)
        self.stack.pop()  # libxml2 nests every element properly

    def _note(self, tag: str, a: dict[str, str]) -> None:
        if tag in _CONCEALED:
            self._concealed += 1
        if tag == "html":
            self.html_attrs = dict(a)
        elif tag == "body":
            self.in_body = True
            self._ctx = _context(self._css, True)
        elif tag == "style":
            self._style = []
        elif tag == "meta" and a.get("name", "").lower() == "color-scheme":
            self.color_scheme = True
        if tag == "img":
            self._images.append((a.get("src") or "", a.get("alt") or "", len(self._visible)))
            self._image(a)
        elif tag == "table":
            self._table(a)
        elif tag == "a" and "href" in a:
            self.link = Link(a["href"], a.get("aria-label") or a.get("title", ""), a)
        elif tag in _HEADINGS:
            self.heading = []
            self.headings.append(Heading(int(tag[1]), a))

    def _note_end(self, tag: str) -> None:
        if tag in _CONCEALED:
            self._concealed = max(0, self._concealed - 1)
        if tag == "style" and self._style is not None:
            css = "".join(self._style)
            self._css = (*self._css, css)
            self._restyled(_context(self._css, self.in_body))
            self.color_scheme = self.color_scheme or "color-scheme" in css
            self._style = None
        if tag == "a" and self.link is not None:
            self.links.append(self.link)
            self.link = None
        if tag in _HEADINGS and self.heading is not None:
            self.heading = None

    def _restyled(self, ctx: _Context) -> None:
        """New rules are in force: the open elements whose boxes leave out a class or an id
        they name get boxes of their own that keep them (and so do the elements inside)."""
        self._ctx = ctx
        for depth, (_, raw) in enumerate(self.stack):
            if raw is not None and (raw[0] & ctx.classes or raw[1] in ctx.ids):
                for below in range(depth, len(self.stack)):
                    box, kept = self.stack[below]
                    classes, id_ = kept or (box.classes, box.id)
                    self.stack[below] = (box.copy(classes, id_), None)
                return

    def data(self, data: str) -> None:
        self._pending.append(data)

    def close(self) -> None:
        if self._pending:
            self._flush()

    def _flush(self) -> None:
        pending = self._pending
        data = pending[0] if len(pending) == 1 else "".join(pending)
        pending.clear()
        if self._style is not None:
            self._style.append(data)
            return
        if data.isspace():
            return  # between tags, most often: nothing to read
        text = normalise_space(data)
        if not text:
            return
        if not self._concealed:
            self._visible.append(text)
        if not self.in_body:
            return
        box = self.stack[-1][0]
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
        if box.poor is not None:
            self._contrast(box, box.poor, text)

    def _new_box(
        self, parent: _Box, key: tuple[object, ...], tag: str, a: dict[str, str]
    ) -> tuple[_Box, _Raw]:
        """The box of an element not met before under `parent` in this context: worked
        out, then shared with every element that looks the same (whatever the classes and
        id no rule names)."""
        ctx = self._ctx
        box = self._box(parent, tag, a)
        classes = box.classes & ctx.classes if box.classes else _NONE
        id_ = box.id if box.id in ctx.ids else ""
        raw = (box.classes, box.id) if (classes != box.classes or id_ != box.id) else None
        same = (ctx, tag, classes, id_, box.colour, box.background, box.size, box.bold,
                box.hidden, box.lang)  # fmt: skip
        shared = parent.canonical.get(same)
        if shared is None:
            shared = parent.canonical[same] = box if raw is None else box.copy(classes, id_)
        known = parent.children[key] = (shared, raw)
        global _SHARED
        _SHARED.count += 1
        if _SHARED.count > _SHARED_LIMIT:
            _SHARED = _Shared()  # the walks under way keep the boxes they hold
        return known

    def _box(self, parent: _Box, tag: str, a: dict[str, str]) -> _Box:
        if parent.hidden:  # nothing inside hidden content is read or seen
            return _Box(tag, _NONE, "", parent.colour, parent.background, parent.size,
                        parent.bold, True, parent.lang)  # fmt: skip
        ctx = self._ctx
        classes = frozenset(a["class"].lower().split()) if "class" in a else _NONE
        id_ = a.get("id", "").lower()
        style = _inline(a["style"]) if "style" in a else _NO_STYLE
        if ctx.rules:
            matched = [
                r for r in ctx.candidates(tag, classes, id_) if self._matches(r, tag, classes, id_)
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
        lang = parent.lang or (ctx.in_body and a.get("lang", "") not in ("", "und"))
        return _Box(tag, classes, id_, colour, background, size, bold, hidden, lang)

    def _matches(self, rule: Rule, tag: str, classes: frozenset[str], id_: str) -> bool:
        *ancestors, last = rule.chain
        if not last.matches(tag, classes, id_):
            return False
        depth = len(self.stack) - 1
        stack = self.stack
        for compound in reversed(ancestors):
            while depth > 0 and not compound.matches(
                stack[depth][0].tag, stack[depth][0].classes, stack[depth][0].id
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

    def _contrast(self, box: _Box, poor: tuple[float, float, tuple[str, str]], text: str) -> None:
        ratio, needed, key = poor
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


_THREAD = threading.local()


def walker() -> Walker:
    """A Walker ready for one document: the same one each time in a thread, reset, so that
    its parser is set up once (that costs more than reading a small page)."""
    known: Walker | None = getattr(_THREAD, "walker", None)
    if known is None:
        known = _THREAD.walker = Walker()
    else:
        known.reset()
    return known


def describe(tag: str, a: dict[str, str]) -> str:
    keys = ("id", "class", "src", "href", "lang")
    shown = " ".join(f'{k}="{clip(a[k], 50)}"' for k in keys if a.get(k))
    return f"<{tag}{' ' + shown if shown else ''}>"


def clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
