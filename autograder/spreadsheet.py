"""CSV text that a spreadsheet opens as data, never as formulas: the one writer of every CSV file.

Excel, LibreOffice and Google Sheets evaluate a cell whose first character is ``=``, ``+``, ``-``
or ``@`` (a tab or carriage return first can lead to the same), so a student id or a roster cell
such as ``=HYPERLINK("http://...")`` would run when the instructor opens grades.csv. Following
OWASP's advice on CSV injection, such a cell is written behind a single quote, which spreadsheets
read as "this is text". Numbers stay numbers: ``-3`` is a negative score, not a formula.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""

NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
"""A plain decimal number, which a spreadsheet reads as that number even with a leading sign."""


def formula_like(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as a formula: its first character is one of FORMULA_STARTS.

    Only the first character matters, so ``alice@uni.edu`` or ``jean-luc`` are plain text."""
    return text.startswith(FORMULA_STARTS)


def cell(value: object) -> str:
    """``value`` as one CSV cell: None empty, numbers as written, formula-like text behind a single quote."""
    text = "" if value is None else str(value)
    if formula_like(text) and not NUMBER.match(text):
        return "'" + text
    return text


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """The CSV text of ``rows`` (header row first), every cell passed through :func:`cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([cell(value) for value in row] for row in rows)
    return out.getvalue()
