"""Exports a spreadsheet opens (CSV, XLSX): text from the data is never taken for a formula.

A name, a reporter or a refused value such as ``=HYPERLINK("http://…",…)`` or ``+cmd|' /C calc'!A0`` would run
as a formula in Excel or WPS when the analyst opens the file (CSV/formula injection). The one rule, for every
writer:

* **CSV** (:func:`to_csv`): a text cell that begins with ``=``, ``+``, ``-``, ``@``, TAB or CR is written with a
  single quote in front (``'=HYPERLINK(…)``, the OWASP guidance); numbers are left alone (``-2`` stays a number).
  Lines end in CRLF (RFC 4180), so a text holding a CR is quoted rather than read as the start of a new row.
  gisgrid's CSV imports read ``'`` + one of those characters back without the quote (:func:`csv_unquote`), so an
  export (components, grids) re-imports unchanged; a text that itself begins with quotes and one of them
  (``'=…``) gets one more quote, so it too reads back as it was.
* **XLSX**: such text is stored as a string cell, exactly as it is (openpyxl would make ``=…`` a formula cell),
  quote-prefixed so that it stays text when edited in Excel (:func:`xlsx_text`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: What makes a spreadsheet read a cell as a formula (or, for TAB and CR, hide a leading one).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_QUOTE = "'"


def formula_like(value: object) -> bool:
    """Text a spreadsheet would take for a formula."""
    return isinstance(value, str) and value[:1] in FORMULA_START


def _quoted_formula(value: object) -> bool:
    """Formula-like once its leading quotes are taken off (``=…``, ``'=…``, ``''=…``)."""
    return isinstance(value, str) and value.lstrip(CSV_QUOTE)[:1] in FORMULA_START


def csv_text(value: Any) -> Any:
    """``value`` as a CSV cell: formula-like text (also after leading quotes) gets one quote more; anything else
    (numbers, dates, None, other text) as it is."""
    return CSV_QUOTE + value if _quoted_formula(value) else value


def _text_columns(frame: pd.DataFrame) -> list[Any]:
    return [c for c in frame.columns if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype)]


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` to write as CSV: every formula-like text cell quoted (:func:`csv_text`)."""
    out = frame.copy()
    for c in _text_columns(out):
        values = out[c].tolist()
        if any(_quoted_formula(v) for v in values):
            out[c] = pd.Series([csv_text(v) for v in values], index=out.index, dtype=out[c].dtype)
    return out


def to_csv(frame: pd.DataFrame, target: Any = None, **options: Any) -> str | None:
    """``frame.to_csv(target, **options)`` the safe way: :func:`csv_safe`, CRLF line ends (pandas' ``\n`` leaves
    a lone CR in a text unquoted, and a spreadsheet starts a new row there)."""
    return csv_safe(frame).to_csv(target, lineterminator="\r\n", **options)


def csv_unquote_text(value: Any) -> Any:
    """A cell read from a CSV: one quote fewer on quotes + a formula character, the text gisgrid exported."""
    return value[1:] if _quoted_formula(value) and value[:1] == CSV_QUOTE else value


def csv_unquote(frame: pd.DataFrame, skip: tuple[Any, ...] = ()) -> pd.DataFrame:
    """``frame`` as read from a CSV with :func:`csv_unquote_text` applied to its text columns (in place)."""
    for c in _text_columns(frame):
        if c in skip:
            continue
        values = frame[c].tolist()
        if any(csv_unquote_text(v) is not v for v in values):
            frame[c] = pd.Series([csv_unquote_text(v) for v in values], index=frame.index, dtype=frame[c].dtype)
    return frame


def xlsx_text(book: Any) -> None:
    """Every formula-like text cell of an openpyxl workbook stored as the string it is: gisgrid writes no formulas,
    so a cell openpyxl took for one (``=…``) holds text from the data. Each such cell is also marked quote-prefixed
    (Excel's ``'`` typed before a value, not part of it), so editing it in Excel keeps it text."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
                if cell.data_type == "s" and formula_like(cell.value):
                    cell.quotePrefix = True
