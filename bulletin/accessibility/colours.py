"""Colours as CSS writes them, WCAG contrast between them, and the few stylesheet rules
(tag, class and id selectors, descendant chains) a template's <style> block uses."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

Rgb = tuple[float, float, float]

NAMED: dict[str, str] = {
    "black": "#000000", "white": "#ffffff", "gray": "#808080", "grey": "#808080",
    "silver": "#c0c0c0", "lightgray": "#d3d3d3", "lightgrey": "#d3d3d3",
    "darkgray": "#a9a9a9", "darkgrey": "#a9a9a9", "dimgray": "#696969", "dimgrey": "#696969",
    "gainsboro": "#dcdcdc", "whitesmoke": "#f5f5f5", "red": "#ff0000", "maroon": "#800000",
    "yellow": "#ffff00", "olive": "#808000", "lime": "#00ff00", "green": "#008000",
    "aqua": "#00ffff", "teal": "#008080", "blue": "#0000ff", "navy": "#000080",
    "fuchsia": "#ff00ff", "purple": "#800080", "orange": "#ffa500",
}  # fmt: skip
_HEX = re.compile(r"#([0-9a-f]{3,8})\b")
_RGB = re.compile(r"rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:[\s,/]+([\d.]+%?))?\s*\)")
_WORD = re.compile(r"[a-z]+")


@functools.lru_cache(maxsize=1024)
def parse_colour(value: str) -> Rgb | None:
    """The first colour in a CSS value (`#fff`, `rgb(…)`, a name); None for none or
    `transparent`, and for a colour so transparent that the backdrop shows through."""
    value = value.strip().lower()
    if match := _HEX.search(value):
        digits = match.group(1)
        if len(digits) in (3, 4):
            digits = "".join(d * 2 for d in digits)
        if len(digits) not in (6, 8):
            return None
        if len(digits) == 8 and int(digits[6:], 16) < 128:
            return None
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    if match := _RGB.search(value):
        alpha = match.group(4)
        if alpha is not None:
            level = float(alpha.rstrip("%")) / (100 if alpha.endswith("%") else 1)
            if level < 0.5:
                return None
        r, g, b = (float(match.group(i)) for i in (1, 2, 3))
        return (r, g, b)
    for word in _WORD.findall(value):
        if word in NAMED:
            return parse_colour(NAMED[word])
    return None


def _channel(value: float) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: Rgb) -> float:
    r, g, b = (_channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@functools.lru_cache(maxsize=1024)
def contrast(a: Rgb, b: Rgb) -> float:
    """The WCAG 2 contrast ratio, 1 to 21."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hex_of(rgb: Rgb) -> str:
    return "#" + "".join(f"{round(v):02x}" for v in rgb)


def declarations(style: str) -> dict[str, str]:
    """`a: b; c: d` → {"a": "b", "c": "d"}, names lower-cased, `!important` dropped."""
    found = {}
    for part in style.split(";"):
        name, colon, value = part.partition(":")
        if colon:
            found[name.strip().lower()] = value.replace("!important", "").strip()
    return found


@dataclass(frozen=True)
class Compound:
    """One simple selector: `td`, `.entry`, `a.home`, `#main`."""

    tag: str
    classes: frozenset[str]
    id: str

    def matches(self, tag: str, classes: frozenset[str], id_: str) -> bool:
        return (
            (not self.tag or self.tag == tag)
            and self.classes <= classes
            and (not self.id or self.id == id_)
        )


_COMPOUND = re.compile(r"^([a-z][a-z0-9]*|\*)?((?:[.#][\w-]+)*)$")
_RULE = re.compile(r"([^{}@]+)\{([^{}]*)\}")
_MEDIA = re.compile(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", re.S)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def _compound(text: str) -> Compound | None:
    match = _COMPOUND.match(text)
    if match is None:
        return None
    tag = match.group(1) or ""
    parts = re.findall(r"[.#][\w-]+", match.group(2))
    classes = frozenset(p[1:] for p in parts if p[0] == ".")
    ids = [p[1:] for p in parts if p[0] == "#"]
    return Compound("" if tag == "*" else tag, classes, ids[0] if ids else "")


@dataclass(frozen=True)
class Rule:
    """A stylesheet rule: a descendant chain of compounds (last = the element itself)."""

    chain: tuple[Compound, ...]
    declarations: dict[str, str]


def stylesheet(css: str) -> list[Rule]:
    """The colour and font rules of a <style> block that apply on every screen: rules inside
    @media (dark mode, narrow screens) and selectors beyond tags, classes, ids and
    descendants (pseudo-classes, attributes, child combinators) are left out."""
    css = _MEDIA.sub("", _COMMENT.sub("", css))
    rules = []
    for selectors, body in _RULE.findall(css):
        found = {
            k: v
            for k, v in declarations(body).items()
            if k in ("color", "background", "background-color", "font-size", "font-weight")
        }
        if not found:
            continue
        for selector in selectors.split(","):
            parts = selector.strip().lower().split()
            chain = [_compound(p) for p in parts]
            if chain and all(c is not None for c in chain):
                rules.append(Rule(tuple(c for c in chain if c is not None), found))
    return rules
