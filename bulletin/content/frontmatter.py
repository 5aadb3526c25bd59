"""Reads an entry file's text within limits and parses its front matter with a bounded YAML
loader: no anchors or aliases (a 500-byte "billion laughs" would expand to gigabytes), a
limit on nesting and on the number of values, duplicate keys refused with their line.

`parse_front_matter` is a pure function of the text, so its results can be cached.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulletin.errors import Problem
from bulletin.files import ReadRefused, read_capped

if TYPE_CHECKING:  # PyYAML loads when an entry is parsed: an entry cache hit needs none
    import yaml

MAX_ENTRY_BYTES = 1024 * 1024
#: Nesting deeper than this is no entry's front matter (its fields are one or two deep).
MAX_DEPTH = 16
#: Scalars, lists and mappings in one front matter.
MAX_NODES = 5000

_DELIMITER = "---"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# Characters no email or web page can carry (XML forbids C0 controls but tab, LF and CR),
# C1 controls, and the non-characters U+FFFE/U+FFFF; tab and line feed stay allowed.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_CONTROL_NAMES = {
    0x00: "a NUL character",
    0x0B: "a vertical tab (a manual line break pasted from a word processor)",
    0x0C: "a form feed (a page break)",
    0x1B: "an escape character",
    0x7F: "a delete character",
}
_OFFSET = re.compile(r"([+-])(\d{1,2})(?::?(\d{2}))?$")


class FrontMatterError(Exception):
    """Front matter that cannot be read: a stable code, a message saying what to do, a line."""

    def __init__(self, code: str, message: str, line: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


def control_name(char: str) -> str:
    """A control character as a user would recognise it."""
    code = ord(char)
    return _CONTROL_NAMES.get(code, f"the control character U+{code:04X}")


def control_problems(text: str, shown: str, first_line: int = 1) -> list[Problem]:
    """One problem per line of `text` that holds a control character (at most ten)."""
    problems = []
    for number, line in enumerate(text.split("\n"), first_line):
        found = CONTROL.search(line)
        if found:
            problems.append(
                Problem(
                    shown,
                    "control-character",
                    f"the line holds {control_name(found.group())}, which emails and web "
                    "pages cannot carry; delete it or replace it with a space or a line break",
                    number,
                )
            )
            if len(problems) == 10:
                break
    return problems


def read_entry_text(path: Path, shown: str, root: Path) -> tuple[str | None, list[Problem]]:
    """The file's text with line endings made "\\n", or the problems that stop it being
    read: outside the site `root`, not a regular file, too large, not UTF-8."""
    try:
        raw = read_capped(path, MAX_ENTRY_BYTES, root=root)
    except ReadRefused as exc:
        if "allowed" in str(exc):
            message = f"the file is too large: {exc}. Move large material to a linked page"
            return None, [Problem(shown, "file-too-large", message)]
        return None, [Problem(shown, "file-unreadable", f"bulletin will not read this file: {exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [
            Problem(
                shown,
                "not-utf8",
                f"byte 0x{raw[exc.start]:02x} is not UTF-8; save the file as UTF-8",
                line,
            )
        ]
    # Windows (CR LF) and old Mac (CR alone) line endings read as Unix ones.
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n"), []


def split_front_matter(text: str) -> tuple[str, str, int] | None:
    """(front matter, body, line the body starts on), or None without front matter."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != _DELIMITER:
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip() == _DELIMITER:
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    return None


def parse_front_matter(front: str, first_line: int = 2) -> tuple[Any, dict[str, int]]:
    """The front matter's value, and the line of each top-level key; FrontMatterError for
    YAML that is invalid or outside the limits. `first_line` is the line `front` starts on."""
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(front)
        try:
            try:
                node = loader.get_single_node()
            except RecursionError as exc:  # PyYAML without libyaml composes recursively
                raise FrontMatterError(
                    "yaml-too-deep", "front matter nests lists or mappings too deep", None
                ) from exc
            if node is None:
                return None, {}
            _check_tree(node, first_line)
            try:
                value = loader.construct_document(node)
            except ValueError as exc:  # a value shaped like a date that is none
                raise _bad_timestamp(node, first_line) from exc
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontMatterError(
            "yaml-invalid",
            f"front matter is not valid YAML: {reason}; fix the YAML on that line "
            "(put text that contains ': ' or '#' in quotes)",
            mark.line + first_line if mark is not None else None,
        ) from exc
    lines = {}
    if isinstance(node, yaml.MappingNode):
        lines = {str(key.value): key.start_mark.line + first_line for key, _ in node.value}
    return value, lines


def _check_tree(root: yaml.Node, first_line: int) -> None:
    """Refuse aliases, deep nesting, too many values and repeated keys, before any value
    is built. Composing expands nothing (an alias is the anchored node, met again), so
    this walk visits each node of the text once, however the aliases multiply."""
    import yaml

    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        line = node.start_mark.line + first_line
        if id(node) in seen:
            raise FrontMatterError(
                "yaml-alias",
                "YAML anchors and aliases (&name, *name) are not allowed in front matter; "
                "write the value out in full",
                line,
            )
        seen.add(id(node))
        if len(seen) > MAX_NODES:
            raise FrontMatterError(
                "yaml-too-large",
                f"front matter holds more than {MAX_NODES} values; entry fields are plain "
                "values or short lists",
                line,
            )
        if isinstance(node, yaml.ScalarNode):
            continue
        if depth >= MAX_DEPTH:
            raise FrontMatterError(
                "yaml-too-deep",
                f"front matter nests lists or mappings more than {MAX_DEPTH} deep; entry "
                "fields are plain values or short lists",
                line,
            )
        if isinstance(node, yaml.SequenceNode):
            stack += [(item, depth + 1) for item in node.value]
        elif isinstance(node, yaml.MappingNode):
            _check_keys(node, first_line)
            for key, value in node.value:
                stack += [(key, depth + 1), (value, depth + 1)]


def _check_keys(node: yaml.MappingNode, first_line: int) -> None:
    """Refuse a key given twice in one mapping (YAML would keep the last one silently)."""
    import yaml

    seen: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        line = key.start_mark.line + first_line
        earlier = seen.get((key.tag, key.value))
        seen[key.tag, key.value] = line
        if earlier is not None:
            raise FrontMatterError(
                "yaml-duplicate-key",
                f"field {key.value!r} is given twice (also on line {earlier}); keep one of them",
                line,
            )


def _bad_timestamp(root: yaml.Node, first_line: int) -> FrontMatterError:
    """The error for the top-level field whose date or time YAML could not construct."""
    import yaml

    if isinstance(root, yaml.MappingNode):
        constructor = yaml.SafeLoader("")
        try:
            for key, value in root.value:
                if value.tag != _TIMESTAMP:
                    continue
                try:
                    constructor.construct_yaml_timestamp(value)
                except ValueError:
                    return _timestamp_error(
                        str(key.value), value.value, value.start_mark.line + first_line
                    )
        finally:
            constructor.dispose()
    return FrontMatterError("date-invalid", "a value is not a real date; write YYYY-MM-DD", None)


def _timestamp_error(name: str, text: str, line: int) -> FrontMatterError:
    offset = _OFFSET.search(text) if "T" in text.upper() or " " in text.strip() else None
    if offset and (int(offset.group(2)) > 23 or int(offset.group(3) or 0) > 59):
        return FrontMatterError(
            "datetime-invalid",
            f"{name}: the time zone offset {offset.group()} is out of range (offsets run "
            "from -23:59 to +23:59); write a real one, such as +02:00",
            line,
        )
    return FrontMatterError(
        "date-invalid",
        f"{name} is {text!r}, not a real date; write it as YYYY-MM-DD",
        line,
    )
