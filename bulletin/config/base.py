"""What every table of bulletin.toml shares: frozen dataclasses that refuse unknown keys and
control characters, and the checks of URLs and addresses that several tables use.

The tables are plain dataclasses, so that a configuration kept from an earlier command is
used without the validation library; `bulletin.config.validation` makes a pydantic model of
each table when bulletin.toml has to be checked again. A table's keys are its fields; a
field's metadata holds its numeric limits (`ge`, `gt`, `le`), its name in bulletin.toml
when that is no Python name (`alias`) and whether the JSON form leaves it out (`exclude`).
A table's checks of single values are its `@checks(...)` functions.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar, dataclass_transform
from urllib.parse import urlsplit

#: Control characters: a line break in a value that becomes a header injects headers.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
LINE_TEXT_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tab and LF allowed

Check = TypeVar("Check", bound=Callable[..., Any])


def checks(*names: str) -> Callable[[Check], Check]:
    """Marks a function of a table as the check of the keys `names`: it takes the value
    and returns it (perhaps normalised), or raises ValueError saying what to write."""

    def mark(function: Check) -> Check:
        function.checks = names  # type: ignore[attr-defined]
        return function

    return mark


class Section:
    """A table of bulletin.toml, as checked: immutable values, made with keywords.

    What a frozen, keyword-only dataclass has, written once here for every table: the
    dataclass decorator compiles these methods again for each class when it is imported,
    which costs a command more than the rest of its configuration (see `table`)."""

    #: Fields of running text, which may hold line breaks and tabs.
    _running_text: ClassVar[frozenset[str]] = frozenset()
    #: the table's keys (its dataclass fields), in order
    _keys: ClassVar[tuple[dataclasses.Field[Any], ...]] = ()
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __init__(self, **values: Any) -> None:
        for key in self._keys:
            if key.name in values:
                value = values.pop(key.name)
            elif key.default is not dataclasses.MISSING:
                value = key.default
            elif key.default_factory is not dataclasses.MISSING:
                value = key.default_factory()
            else:
                raise TypeError(f"{type(self).__name__}() needs the keyword {key.name!r}")
            object.__setattr__(self, key.name, value)
        if values:
            raise TypeError(f"{type(self).__name__}() has no keyword {next(iter(values))!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, key.name) for key in self._keys)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{key.name}={getattr(self, key.name)!r}" for key in self._keys)
        return f"{type(self).__name__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def model_dump_json(self) -> str:
        """The values as one JSON document (keys excluded from it left out): what a cache
        keyed by the configuration hashes."""
        return json.dumps(_plain(self), ensure_ascii=False, separators=(",", ":"))


Table = TypeVar("Table", bound=type[Section])


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field,)
)
def table(cls: Table) -> Table:
    """A table of bulletin.toml: a frozen, keyword-only dataclass of `Section`, whose
    methods are Section's (only the fields are the dataclass decorator's work)."""
    dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    cls._keys = dataclasses.fields(cls)
    names = {key.name for key in cls._keys}
    for name, value in vars(cls).items():  # a check that would not run is a mistake here
        keys = getattr(getattr(value, "__func__", value), "checks", None)
        if keys and not (isinstance(value, staticmethod) and set(keys) <= names):
            raise TypeError(f"{cls.__name__}.{name}: a check is a staticmethod of its keys")
    return cls


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return {
            field.name: _plain(getattr(value, field.name))
            for field in value._keys
            if not field.metadata.get("exclude")
        }
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def control_character_problem(text: str, running: bool) -> str | None:
    """What is wrong with a control character in `text`, or None (in running text, line
    breaks and tabs are allowed)."""
    found = (LINE_TEXT_CONTROL if running else CONTROL).search(text)
    if not found:
        return None
    kind = "a line break" if found.group() in "\r\n" else "a control character"
    return (
        f"holds {kind} (U+{ord(found.group()):04X}); write the value on one line "
        "without control characters"
    )


def http_url(value: str, *, site: bool) -> str:
    """`value` if it is an absolute http(s) URL that every header, feed and HTTP client can
    carry; ValueError saying what to write otherwise. A site URL takes no query, fragment
    or user info (links are made by appending to it)."""
    example = "https://news.example.org/" if site else "https://partner.example/hooks/bulletin"
    if re.search(r"\s", value):
        raise ValueError("holds a space or line break; write the URL without them")
    if not value.isascii():
        raise ValueError(_non_ascii_advice(value))
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc}); write it like {example}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http(s) URL such as {example}")
    if site and (parts.query or parts.fragment or parts.username is not None):
        raise ValueError(
            f"must be the plain address of the site, without ?query, #fragment or "
            f"user:password@, such as {example}"
        )
    return value


def _non_ascii_advice(value: str) -> str:
    advice = "holds characters outside ASCII; percent-encode them in the path"
    try:
        host = urlsplit(value).hostname or ""
        if not host.isascii():
            advice += f", and write the host name as {host.encode('idna').decode()}"
    except (ValueError, UnicodeError):
        advice += ", and write an international host name in its xn-- (punycode) form"
    return advice


def email_address(value: str, example: str) -> str:
    """`value` if it is one address (with or without a display name) that SMTP can carry."""
    from email.utils import getaddresses

    found = getaddresses([value])
    if len(found) != 1 or "@" not in found[0][1]:
        raise ValueError(f"{value!r} is not an email address like {example}")
    address = found[0][1]
    if not address.isascii():
        raise ValueError(
            f"{address!r} holds characters outside ASCII, which not every mail server "
            "accepts; write the domain in its xn-- (punycode) form and use an ASCII mailbox"
        )
    local, _, domain = address.rpartition("@")
    if not local or not re.fullmatch(
        r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9-]+)+", domain
    ):
        raise ValueError(f"{address!r} is not an email address like {example}")
    return value
