"""Writes and reads CSV cells so that a spreadsheet never runs one as a formula (OWASP's
advice against CSV injection): a cell that starts like a formula gets a leading apostrophe,
which import takes off again; a cell holding a comma, quote or line break is quoted, its
quotes doubled, so no cell spills into the next.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

#: What spreadsheets read as the start of a formula (OWASP "CSV Injection"), and the
#: full-width forms some of them also accept.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def safe_cell(value: object) -> str:
    """The cell as written: text starting like a formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def unescaped(text: str) -> str:
    """A cell as `safe_cell` wrote it, read back: the apostrophe it added comes off."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def csv_text(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """Rows as CSV, every cell escaped, one line each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(header))
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue()
