"""What an element's text looks like (its box: colours, size, weight, visibility, lang),
and the stylesheet context that decides it with the parent's box and the element's own
attributes; boxes are shared between documents (see scan)."""

from __future__ import annotations

import functools
import re
from typing import TypeAlias

from bulletin.accessibility.colours import Rgb, Rule, contrast, declarations, hex_of, stylesheet

_NO_RULES: tuple[Rule, ...] = ()
_SIZE = re.compile(r"([\d.]+)\s*(px|pt|em|rem|%)?")
#: an element's classes and id, where its box leaves some out (no rule names them)
_Raw: TypeAlias = tuple[frozenset[str], str] | None


class _Context:
    """The stylesheet rules in force (those of the <style> blocks read so far) and whether
    the walk is inside <body>: with an element's parent box, tag and styling attributes,
    all that decides its box. One object per distinct context, shared by documents."""

    __slots__ = ("classes", "css", "ids", "in_body", "index", "rules")

    def __init__(self, css: tuple[str, ...], in_body: bool) -> None:
        self.css = css
        self.in_body = in_body
        self.rules: tuple[Rule, ...] = tuple(r for text in css for r in _stylesheet(text))
        #: the rules by what their last compound needs: an id, a class or a tag
        self.index: dict[str, tuple[Rule, ...]] = {}
        for rule in self.rules:
            last = rule.chain[-1]
            key = f"#{last.id}" if last.id else min(last.classes, default="") or last.tag
            self.index[key] = (*self.index.get(key, ()), rule)
        #: the classes and ids a rule names: an element's others never matter
        compounds = [c for rule in self.rules for c in rule.chain]
        self.classes = frozenset(name for c in compounds for name in c.classes)
        self.ids = frozenset(c.id for c in compounds if c.id)

    def candidates(self, tag: str, classes: frozenset[str], id_: str) -> tuple[Rule, ...]:
        index = self.index
        found = index.get("", _NO_RULES) + index.get(tag, _NO_RULES)
        for name in classes:
            if name in index:
                found = found + index[name]
        if id_ and f"#{id_}" in index:
            found = found + index[f"#{id_}"]
        return found


_CONTEXTS: dict[tuple[tuple[str, ...], bool], _Context] = {}


def _context(css: tuple[str, ...], in_body: bool) -> _Context:
    found = _CONTEXTS.get((css, in_body))
    if found is None:
        if len(_CONTEXTS) > 256:
            _CONTEXTS.clear()
        found = _CONTEXTS[(css, in_body)] = _Context(css, in_body)
    return found


@functools.lru_cache(maxsize=64)
def _stylesheet(css: str) -> tuple[Rule, ...]:
    """A <style> block's rules; every page of a site has the same few blocks."""
    return tuple(stylesheet(css))


class _Box:
    """What an element's text looks like, and the boxes of the children met under it."""

    __slots__ = (
        "background",
        "bold",
        "canonical",
        "children",
        "classes",
        "colour",
        "hidden",
        "id",
        "lang",
        "poor",
        "size",
        "tag",
    )

    def __init__(
        self,
        tag: str,
        classes: frozenset[str],
        id_: str,
        colour: Rgb,
        background: Rgb,
        size: float,
        bold: bool,
        hidden: bool,
        lang: bool,
    ) -> None:
        self.tag = tag
        self.classes = classes
        self.id = id_
        self.colour = colour
        self.background = background
        self.size = size
        self.bold = bold
        self.hidden = hidden
        self.lang = lang  # this element or an ancestor inside <body> carries lang
        #: (context, tag, styling attributes) → (child box, its classes and id if the box
        #: leaves some out: those no rule names, kept in case a later <style> does)
        self.children: dict[tuple[object, ...], tuple[_Box, _Raw]] = {}
        #: the same children by their box's own values (see _Walker._new_box)
        self.canonical: dict[tuple[object, ...], _Box] = {}
        #: (ratio, ratio needed, (text colour, background)) when its text lacks contrast
        self.poor: tuple[float, float, tuple[str, str]] | None = None
        if not hidden:
            ratio = contrast(colour, background)
            large = size >= 24 or (size >= 18.66 and bold)
            needed = 3.0 if large else 4.5
            if ratio < needed:
                self.poor = (ratio, needed, (hex_of(colour), hex_of(background)))

    def copy(self, classes: frozenset[str], id_: str) -> _Box:
        """The same box for an element of other classes or id, its children its own."""
        return _Box(self.tag, classes, id_, self.colour, self.background, self.size,
                    self.bold, self.hidden, self.lang)  # fmt: skip


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
