"""Keeps each list's subscribers in the database: CSV import and export, and lookups.

The reader's own actions from the web service (sign-up, confirmation, unsubscribe,
preferences, access, erasure) are in `memberships`; the proof of consent in `consent`.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from bulletin.config.model import Config
from bulletin.errors import ConfigError, Problem, display_path
from bulletin.store import consent, returns
from bulletin.store.database import subscribers
from bulletin.store.spreadsheets import csv_text, unescaped
from bulletin.store.statuses import SubscriberStatus

T = TypeVar("T")
MAX_CSV_BYTES = 50 * 1024 * 1024
#: The longest name kept: the `name` column's size; a longer one is a mistake in the file.
MAX_NAME = 200
# Bidirectional overrides would show a name (and its To: line) reversed or reordered.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
PENDING, ACTIVE = SubscriberStatus.PENDING, SubscriberStatus.ACTIVE
UNSUBSCRIBED, SUPPRESSED = SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED


@dataclass(frozen=True)
class Subscriber:
    email: str
    name: str = ""
    language: str = ""


@dataclass
class ImportReport:
    added: int
    updated: int
    problems: list[Problem]


def normalise_address(address: str) -> str:
    """The address as stored: validated, domain lowercased. Raises ValueError."""
    try:
        valid = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    if not valid.ascii_email:  # international domains become punycode; local parts cannot
        raise ValueError("letters outside ASCII before the @ need SMTPUTF8, not supported yet")
    return valid.ascii_email


# A lowercase dot-atom local part (RFC 5322 3.2.3) and an ASCII domain: validation keeps
# such a local part as it is, so only the domain needs checking, once per domain.
_PLAIN_ADDRESS = re.compile(
    r"([a-z0-9_!#$%&'*+\-/=?^`{|}~]+(?:\.[a-z0-9_!#$%&'*+\-/=?^`{|}~]+)*)@([A-Za-z0-9.-]+)"
)
_MAX_ADDRESS = 254  # octets (RFC 5321 4.5.3.1.3)


class _Addresses:
    """`normalise_address` for the many addresses of one file: an address of the plain kind
    whose domain was seen in an address validated in full is the same local part and that
    domain as stored, without validating it all again (the domain is most of the cost)."""

    def __init__(self) -> None:
        self._domains: dict[str, str] = {}  # the domain as written → as stored

    def normalise(self, address: str) -> str:
        address = address.strip()
        plain = _PLAIN_ADDRESS.fullmatch(address)
        if plain and len(address) <= _MAX_ADDRESS:
            domain = self._domains.get(plain[2])
            if domain is not None:
                return f"{plain[1]}@{domain}"
        stored = normalise_address(address)
        # Not an IDNA domain: its Unicode form, whose length is checked too, is another.
        if plain and "xn--" not in plain[2].lower():
            self._domains[plain[2]] = stored.rpartition("@")[2]
        return stored


def clean_name(name: str) -> str:
    """A name as stored and put in To: one line, no control characters (NUL, tab, line
    breaks, ESC…) or bidirectional overrides, spaces collapsed."""
    kept = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS else c
        for c in name
    )
    return " ".join(kept.split())


def subscriber_list(config: Config, list_key: str) -> None:
    """Raise ConfigError unless `list_key` is a subscriber list of this site."""
    mailing_list = config.lists.get(list_key)
    if mailing_list is None:
        known = ", ".join(k for k, v in config.lists.items() if not v.external) or "none"
        raise ConfigError(f"no list {list_key!r} in bulletin.toml (subscriber lists: {known})")
    if mailing_list.external:
        raise ConfigError(
            f"lists.{list_key} is an external list ({mailing_list.address}); "
            "its members are kept by its own list server, not imported here"
        )


def read_csv(path: Path, shown: str) -> tuple[list[tuple[int, Subscriber]], list[Problem]]:
    """Rows of a subscriber CSV with their line numbers, and a problem per bad row.

    Cells that `export` escaped (a leading apostrophe before =, +, -, @…) are read back
    as they were; names lose their control characters and may not exceed MAX_NAME.
    """
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_CSV_BYTES // 2**20} MB; split it")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text; save it as UTF-8 CSV") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "email" not in fields:
        raise ConfigError(
            f"{shown}:1: the header row needs an 'email' column (found: "
            f"{', '.join(fields) or 'nothing'})"
        )
    reader.fieldnames = fields
    rows: list[tuple[int, Subscriber]] = []
    problems: list[Problem] = []
    addresses = _Addresses()
    for record in reader:
        line = reader.line_num
        email = unescaped((record.get("email") or "").strip())
        name = clean_name(unescaped(record.get("name") or ""))
        language = (record.get("language") or "").strip().lower()
        if not email and not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue
        try:
            email = addresses.normalise(email)
        except ValueError as exc:
            problems.append(
                Problem(
                    shown,
                    "address-invalid",
                    f"{email!r} is not a valid address ({exc}); fix or remove the row",
                    line,
                )
            )
            continue
        if language and not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", language):
            problems.append(
                Problem(
                    shown,
                    "language-invalid",
                    f"language {language!r} is not a code like en, ro or bg",
                    line,
                )
            )
            continue
        if len(name) > MAX_NAME:
            problems.append(
                Problem(
                    shown,
                    "name-too-long",
                    f"the name has {len(name)} characters; at most {MAX_NAME} are kept in "
                    "the database and the To: line. Shorten it",
                    line,
                )
            )
            continue
        rows.append((line, Subscriber(email, name, language)))
    return rows, problems


def import_csv(
    engine: sa.Engine, config: Config, path: Path, list_key: str, by: str = ""
) -> ImportReport:
    """Add or update the good rows of `path` on the list; report the bad ones by line.

    Each address added gets a consent record naming the file, its SHA-256, the row's line
    and `by` (who imported it): the consent itself was collected outside bulletin.

    One transaction, its rows written IMPORT_BATCH to a statement (a million-row file takes
    a minute or two, not half an hour). An address twice in the file is added once, with
    the first row's line in its consent, and updated by the later rows, as if the rows had
    been imported one after the other.
    """
    subscriber_list(config, list_key)
    shown = display_path(path, config.root)
    rows, problems = read_csv(path, shown)
    file_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as db:
        existing = {
            row.email.lower(): row.id
            for row in db.execute(
                sa.select(subscribers.c.id, subscribers.c.email).where(
                    subscribers.c.list_name == list_key
                )
            )
        }
        added: dict[str, _Added] = {}  # new addresses, in the file's order
        changed: dict[int, dict[str, Any]] = {}  # subscriber id → the values it takes
        updated = 0
        for line, subscriber in rows:
            values = {"name": subscriber.name}
            if subscriber.language:
                values["language"] = subscriber.language
            key = subscriber.email.lower()
            if key in added:
                added[key].values.update(values)
                updated += 1
            elif key in existing:
                changed.setdefault(existing[key], {}).update(values)
                updated += 1
            else:
                added[key] = _Added(subscriber.email, line, subscriber.language, values)
        del rows
        _update(db, changed, now)
        given = functools.partial(
            consent.Given, consent.Method.IMPORT, shown, made_by=by, source_sha256=file_sha256
        )
        for batch in _batched(added.values(), IMPORT_BATCH):
            db.execute(
                subscribers.insert(),
                [
                    {"list_name": list_key, "email": new.email, "status": ACTIVE,
                     "created_at": now, "updated_at": now, "language": "", **new.values}
                    for new in batch
                ],
            )  # fmt: skip
            consent.record_many(
                db,
                [(new.email, list_key, given(new.language, line=new.line)) for new in batch],
                now,
            )
    return ImportReport(len(added), updated, problems)


#: Rows written per statement by `import_csv`: large enough that the per-statement cost
#: vanishes, small enough that a million-row file is never held as parameters at once.
IMPORT_BATCH = 5000


@dataclass
class _Added:
    """An address new to the list: its first row's line and language, its latest values."""

    email: str
    line: int
    language: str
    values: dict[str, str]


def _update(db: sa.Connection, changed: dict[int, dict[str, Any]], now: dt.datetime) -> None:
    """Rows already on the list take the file's values: grouped by the columns they set."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for subscriber_id, values in changed.items():
        groups.setdefault(tuple(sorted(values)), []).append(
            {"_id": subscriber_id, **{f"_{c}": v for c, v in values.items()}}
        )
    for columns, params in groups.items():
        statement = (
            subscribers.update()
            .where(subscribers.c.id == sa.bindparam("_id"))
            .values({**{c: sa.bindparam(f"_{c}") for c in columns}, "updated_at": now})
        )
        for batch in _batched(params, IMPORT_BATCH):
            db.execute(statement, batch)


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (itertools.batched, from Python 3.12 on)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def export_csv(engine: sa.Engine, config: Config, list_key: str) -> str:
    """The list as CSV: email, name, language, status, reason, since; escaped so that no
    cell opens as a formula in a spreadsheet (`spreadsheets.safe_cell`). An address that
    bounced for good is `bounced`, one that complained `complained`, each with the reason
    and the date (`store.returns`)."""
    subscriber_list(config, list_key)
    with engine.connect() as db:
        rows = list(
            db.execute(
                sa.select(subscribers)
                .where(subscribers.c.list_name == list_key)
                .order_by(subscribers.c.email)
            )
        )
        came_back = returns.returned(db, (row.email for row in rows))

    def cells(row: Any) -> list[str]:
        back = came_back.get(row.email.lower())
        if back is None:
            return [row.email, row.name, row.language, row.status, "", ""]
        since = back.since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [row.email, row.name, row.language, back.state, back.reason, since]

    return csv_text(
        ["email", "name", "language", "status", "reason", "since"], (cells(r) for r in rows)
    )


def active(db: sa.Connection, list_key: str) -> list[Subscriber]:
    """The subscribers of a list who receive editions, in a stable order."""
    rows = db.execute(
        sa.select(subscribers.c.email, subscribers.c.name, subscribers.c.language)
        .where(subscribers.c.list_name == list_key, subscribers.c.status == ACTIVE)
        .order_by(subscribers.c.id)
    )
    return [Subscriber(r.email, r.name, r.language) for r in rows]


def open_lists(config: Config) -> dict[str, str]:
    """The lists a subscriber can join on the web (not the external ones): key → name."""
    return {key: item.name for key, item in config.lists.items() if not item.external}


def rows_of(
    db: sa.Connection, email: str, list_keys: Iterable[str] | None = None
) -> list[sa.Row[Any]]:
    """The address's rows (on `list_keys`, else on every list), whatever their status."""
    query = sa.select(subscribers).where(sa.func.lower(subscribers.c.email) == email.lower())
    if list_keys is not None:
        query = query.where(subscribers.c.list_name.in_(list(list_keys)))
    return list(db.execute(query.order_by(subscribers.c.list_name)))
