"""The ledger owns its tables: no module of bulletin but bulletin/store/ledger/ writes
`editions`, `edition_entries`, `deliveries`, `suppressions`, `delivery_attempts` or
`approvals`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bulletin

LEDGER_TABLES = frozenset(
    {"editions", "edition_entries", "deliveries", "suppressions", "delivery_attempts", "approvals"}
)
PACKAGE = Path(bulletin.__file__).parent
#: The ledger itself; the tables' definitions; the migrations that make them.
ALLOWED = ("store/ledger/", "store/database.py", "store/migrations/")

_WRITES = ("insert", "update", "delete")
_RAW_SQL = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+[\"`]?(" + "|".join(LEDGER_TABLES) + r")\b",
    re.IGNORECASE,
)


def ledger_writes(source: str) -> list[str]:
    """Each write to a ledger table in a module's source, as `line N: what`.

    Found: SQLAlchemy's `table.insert()` / `.update()` / `.delete()` (the table by its name,
    an alias of it, or an attribute such as `database.deliveries`), `sa.insert(table)` and
    the like, and raw SQL in any string but a docstring.
    """
    tree = ast.parse(source)
    aliases = {name: name for name in LEDGER_TABLES}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for name in node.names:
                if name.name in LEDGER_TABLES:
                    aliases[name.asname or name.name] = name.name
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))

    def table(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return aliases.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in LEDGER_TABLES:
            return node.attr
        return None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _WRITES and table(func.value):
                found.append(f"line {node.lineno}: {table(func.value)}.{func.attr}()")
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _WRITES and node.args and table(node.args[0]):
                found.append(f"line {node.lineno}: {name}({table(node.args[0])})")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and (match := _RAW_SQL.search(node.value))
        ):
            found.append(f"line {node.lineno}: SQL {match.group(0)!r}")
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_ledger_writes_the_ledger_tables():
    offenders = {
        str(path.relative_to(PACKAGE)): writes
        for path in _modules()
        if not path.relative_to(PACKAGE).as_posix().startswith(ALLOWED)
        and (writes := ledger_writes(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "write these tables through bulletin.store.ledger"


def test_the_check_sees_the_ledgers_own_writes():
    """The scan reads real code: the ledger's writes, the hot path's raw SQL among them."""
    found = [
        write
        for path in (PACKAGE / "store" / "ledger").glob("*.py")
        for write in ledger_writes(path.read_text(encoding="utf-8"))
    ]
    text = "\n".join(found)
    for expected in (
        "deliveries.update()",
        "deliveries.insert()",
        "editions.insert()",
        "edition_entries.insert()",
        "suppressions.insert()",
        "suppressions.delete()",
        "SQL 'UPDATE deliveries'",
    ):
        assert expected in text


@pytest.mark.parametrize(
    "snippet",
    [
        "db.execute(deliveries.update().where(deliveries.c.id == 1).values(status='sent'))",
        "db.execute(suppressions.insert().values(email='a@example.org'))",
        "from bulletin.store.database import editions as e\ndb.execute(e.delete())",
        "from bulletin.store import database\ndatabase.edition_entries.delete()",
        "import sqlalchemy as sa\ndb.execute(sa.update(deliveries).values(status='sent'))",
        "from sqlalchemy import insert\ndb.execute(insert(suppressions))",
        "cursor.execute('UPDATE deliveries SET status=? WHERE id=?', (1, 2))",
        'db.exec_driver_sql("insert into suppressions (email) values (%s)", ("a",))',
        "sql = (\n    'DELETE FROM '\n    'editions WHERE id = ?'\n)",
        "def f():\n    '''Docstring.'''\n    return f\"UPDATE deliveries SET status='{s}'\"",
    ],
)
def test_the_check_finds_a_write_outside_the_ledger(snippet):
    assert ledger_writes(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "db.execute(subscribers.update().values(status='active'))",
        "db.execute(sa.select(deliveries.c.status).where(deliveries.c.id == 1))",
        "db.execute(subscribers.delete().where(subscribers.c.email == 'a'))",
        "cursor.execute('UPDATE subscribers SET status=? WHERE id=?', (1, 2))",
        "def f():\n    '''Marks deliveries: see UPDATE deliveries in the ledger.'''",
        "deliveries_update = {'update': 1}",
    ],
)
def test_the_check_lets_other_code_be(snippet):
    assert ledger_writes(snippet) == []
