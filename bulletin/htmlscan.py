"""One pass of libxml2's HTML parser (C, no tree) over a rendered output, calling a
reader's `handle_starttag`, `handle_endtag` and `handle_data` as it goes: what the
EU-notice gate and the accessibility gate read pages and emails with."""

from __future__ import annotations


class HtmlReader:
    """Subclasses handle tags (lower case, attributes as a dict) and text; `read` feeds
    them a document. Text comes whole: libxml2 splits it at entities, it is joined here."""

    def __init__(self) -> None:
        self._pending: list[str] = []

    def read(self, html: str) -> None:
        import lxml.etree  # only commands that render pages or emails need it

        if not html.strip():
            return  # an empty document: nothing to read
        parser = lxml.etree.HTMLParser(target=self)
        parser.feed(html)
        parser.close()

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
