"""Importing a large subscriber CSV: in batches, each domain validated once, and with the
same result as importing the rows one at a time."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bulletin.config import load_config
from bulletin.store import subscribers as store
from bulletin.store.consent import Method
from bulletin.store.database import connect, consents, subscribers

ADDRESSES = [
    "ana@example.org",
    "Bob@Example.ORG",  # the domain as stored: lowercased
    "carol@EXAMPLE.org",
    "postmaster@example.org",
    "PostMaster@example.org",  # a mailbox name kept in lowercase
    "d.e+news@sub.example.org",
    "x@xn--bcher-kva.example",  # an IDNA domain: validated every time
    "y@bücher.example",
    "z@localhost",  # special-use: refused every time
    "w@example",  # no dot: refused
    "a" * 64 + "@example.org",
    "b" * 240 + "@example.org",  # too long: refused, with the domain known
    "two@@example.org",
    "  spaced@example.org  ",
    "ünïcode@example.org",
    '"quoted"@example.org',
]


def _one_by_one(address: str) -> str:
    try:
        return store.normalise_address(address)
    except ValueError as exc:
        return f"invalid: {exc}"


def test_known_domains_are_not_validated_again_and_give_the_same_addresses():
    addresses = store._Addresses()
    for address in ADDRESSES * 2:  # the second round finds every domain known
        try:
            got = addresses.normalise(address)
        except ValueError as exc:
            got = f"invalid: {exc}"
        assert got == _one_by_one(address), address


def test_a_known_domain_skips_the_validation(monkeypatch):
    addresses = store._Addresses()
    addresses.normalise("first@example.org")
    calls = []
    monkeypatch.setattr(store, "normalise_address", lambda a: calls.append(a) or a)
    assert addresses.normalise("second@example.org") == "second@example.org"
    assert addresses.normalise("Third@example.org") == "Third@example.org"  # not plain
    assert calls == ["Third@example.org"]


@pytest.fixture
def config(site):
    return load_config(site)


def test_import_in_batches_adds_updates_and_records_consent_as_row_by_row(
    site, config, monkeypatch
):
    monkeypatch.setattr(store, "IMPORT_BATCH", 3)  # several batches from a short file
    engine = connect(config.database_url)
    first = site / "first.csv"
    first.write_text(
        "email,name,language\n"
        + "".join(f"reader{i}@example.org,Reader {i},en\n" for i in range(7))
        + "reader1@example.org,Reader One,\n"  # twice in one file: added once, then updated
        + "reader2@example.org,Reader Two,ro\n"
        + "bad@localhost,Bad,\n",
        encoding="utf-8",
    )
    report = store.import_csv(engine, config, first, "news", by="tester")
    assert (report.added, report.updated) == (7, 2)
    assert [p.line for p in report.problems] == [11]

    second = site / "second.csv"
    second.write_text(
        "email,name,language\n"
        "reader3@example.org,Reader Three,\n"  # known: the name changes, the language stays
        "reader4@example.org,Reader Four,bg\n"
        "reader4@example.org,Reader 4,\n"  # known, twice: the last name, the given language
        "new@example.org,New,\n",
        encoding="utf-8",
    )
    again = store.import_csv(engine, config, second, "news", by="tester")
    assert (again.added, again.updated) == (1, 3)

    with engine.connect() as db:
        rows = {
            r.email: (r.name, r.language)
            for r in db.execute(sa.select(subscribers).where(subscribers.c.list_name == "news"))
        }
        given = list(
            db.execute(
                sa.select(consents.c.email, consents.c.source_line, consents.c.method)
                .where(consents.c.made_by == "tester")
                .order_by(consents.c.id)
            )
        )
    assert rows["reader1@example.org"] == ("Reader One", "en")
    assert rows["reader2@example.org"] == ("Reader Two", "ro")
    assert rows["reader3@example.org"] == ("Reader Three", "en")
    assert rows["reader4@example.org"] == ("Reader 4", "bg")
    assert rows["new@example.org"] == ("New", "")
    assert "bad@localhost" not in rows
    # One consent per address added, naming the row that added it.
    assert [(r.email, r.source_line) for r in given] == [
        *((f"reader{i}@example.org", i + 2) for i in range(7)),
        ("new@example.org", 5),
    ]
    assert {r.method for r in given} == {Method.IMPORT}
