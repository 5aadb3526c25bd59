"""One pass of libxml2's HTML parser (C, no tree) over a rendered output, calling a
reader's `handle_starttag`, `handle_endtag` and `handle_data` as it goes: what the
EU-notice gate and the accessibility gate read pages and emails with (both from the same
pass: see accessibility.scan)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: how much of the visible text after an image the EU-notice gate reads (characters)
FOLLOWING = 400


@dataclass
class Image:
    src: str
    alt: str
    following: str = ""  # the visible text that comes right after the image


@dataclass
class Page:
    """What a reader sees of an HTML output, as the EU-notice gate reads it: its images and
    its visible text (all but <head>, <title>, <style> and <script>), white space
    collapsed."""

    images: list[Image] = field(default_factory=list)
    text: str = ""


def following(texts: list[str], start: int) -> str:
    """The visible text from `texts[start]` on, until it holds FOLLOWING characters."""
    parts: list[str] = []
    length = -1
    for text in texts[start:]:
        parts.append(text)
        length += len(text) + 1
        if length >= FOLLOWING:
            break
    return " ".join(parts)


class HtmlReader:
    """Subclasses handle tags (lower case, attributes as a dict) and text; `read` feeds
    them a document. Text comes whole: libxml2 splits it at entities, it is joined here.
    (A subclass may take libxml2's calls, `start`, `end`, `data` and `close`, itself.)"""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._parser: object = None  # set up on the first read; a reader that is reset reuses it

    def read(self, html: str) -> None:
        import lxml.etree  # only commands that render pages or emails need it

        if not html.strip():
            return  # an empty document: nothing to read
        parser = self._parser
        if parser is None:
            parser = self._parser = lxml.etree.HTMLParser(target=self)
        try:
            parser.feed(html)  # type: ignore[attr-defined]
            parser.close()  # type: ignore[attr-defined]
        except BaseException:
            self._parser = None  # in whatever state the error left it: not used again
            self._pending.clear()
            raise

    def handle_starttag(self, tag: str, attrs: dict[str, str]) -> None:
        """A start tag, and the element's attributes."""

    def handle_endtag(self, tag: str) -> None:
        """An end tag (libxml2 closes every element, void ones included)."""

    def handle_data(self, data: str) -> None:
        """The text between two tags, entities decoded."""

    # libxml2's parser target interface
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self._flush()
        self.handle_starttag(tag.lower(), dict(attrib))

    def end(self, tag: str) -> None:
        self._flush()
        self.handle_endtag(tag.lower())

    def data(self, data: str) -> None:
        self._pending.append(data)

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.handle_data(text)
