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

Reading tables a city sends as Excel: :func:`excel_kind` tells a workbook by its first bytes (a ``.xls`` that
new Excel saved is an ``.xlsx`` inside, and the reverse), :func:`read_workbook_table` reads one sheet of an
``.xlsx`` (openpyxl) or an Excel 97-2003 ``.xls`` (xlrd) as the text a CSV of it would hold.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from gisgrid.errors import InvalidInput

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


# -- reading Excel tables ------------------------------------------------------------------------

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (and other old Office files)
#: Excel keeps 15 significant digits: a longer code typed as a number has lost its last digits.
_EXCEL_DIGITS = 15
#: Key of ``read_workbook_table``'s table ``attrs``: the header row's cells as they are (``note`` twice, not ``note``
#: and ``note.1``), for a reader that refuses a repeated column (:func:`gisgrid.cityfiles.refuse_repeated_columns`).
HEADER_CELLS = "header_cells"
#: Key of ``read_workbook_table``'s table ``attrs``: per column holding any, a mask (by row of the table) of the
#: formula cells without a saved value (a file a program wrote, never opened and saved in Excel): read as empty.
UNSAVED_FORMULAS = "excel_unsaved_formulas"
#: Key of ``read_workbook_table``'s table ``attrs``: the cells holding numbers of 16 or more digits, by column.
LONG_NUMBERS = "excel_long_numbers"


def excel_kind(path: Path) -> Literal["xlsx", "xls"] | None:
    """``"xlsx"`` or ``"xls"`` when ``path`` is an Excel workbook, by its first bytes (Excel 97-2003 whatever its
    name; a ZIP named .xlsx/.xlsm/.xls is an .xlsx), else by its extension; None for anything else."""
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        head = b""
    if head.startswith(_OLE2_MAGIC):
        return "xls"
    if suffix not in EXCEL_SUFFIXES:
        return None
    return "xlsx" if head.startswith(_ZIP_MAGIC) or suffix != ".xls" else "xls"


def _cell_text(value: Any) -> str:
    """A cell as the text a CSV saved by Excel would hold: numbers without a trailing .0, dates ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():  # 9.9e17 as its digits: a code, shortened (the caller notes it)
            # Past 15 digits as Excel shows them (its 15 significant digits, then zeros), not the binary value's
            # own digits: 41990101037000100 is held as 41990101037000096.
            return str(int(Decimal(f"{value:.15g}"))) if abs(value) >= 10**_EXCEL_DIGITS else str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _is_long_number(value: Any) -> bool:
    """A number cell of 16 or more digits (Excel writes them as floats; another writer may give an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 10**_EXCEL_DIGITS


def _unique_headers(cells: list[Any]) -> list[str]:
    """Header names as a CSV reader makes them: empty → ``Unnamed: i``, a repeated name → ``name.1`` …"""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = _cell_text(cell).strip() or f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def _chosen_sheet(path: Path, names: list[str], sheet: str | None) -> str:
    if sheet is not None and sheet not in names:
        raise InvalidInput(
            f"{path}: no sheet {sheet!r}; sheets: {', '.join(names)}", detail={"sheet": sheet, "available": names}
        )
    if not names:
        raise InvalidInput(f"{path}: the workbook has no sheet", detail={"path": str(path)})
    return sheet or names[0]


def _xlsx_rows(path: Path, sheet: str | None) -> tuple[list[str], str, list[list[Any]]]:
    import openpyxl  # only for Excel input
    from openpyxl.utils.datetime import to_excel

    try:
        with path.open("rb") as fh:
            book = openpyxl.load_workbook(fh, read_only=True, data_only=True)
            try:
                names = book.sheetnames
                name = _chosen_sheet(path, names, sheet)
                epoch = book.epoch

                def value(v: Any) -> Any:
                    # a negative number formatted as a date: Excel shows #####, no date — its number, as for .xls
                    if isinstance(v, dt.datetime) and v < epoch:
                        return float(to_excel(v, epoch))
                    return v

                return names, name, [[value(v) for v in r] for r in book[name].iter_rows(values_only=True)]
            finally:
                book.close()
    except InvalidInput:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise InvalidInput(f"{path}: not a readable .xlsx workbook ({exc})", detail={"path": str(path)}) from None


def _unsaved_formulas(path: Path, sheet: str, rows: list[list[Any]]) -> set[tuple[int, int]]:
    """(row, column) indexes of an .xlsx sheet's formula cells that hold no saved value (``rows`` as
    :func:`_xlsx_rows` read them: such a cell is None). Only read again when the sheet has an empty cell and its XML a
    formula (``<f>``), so that a sheet of plain values is read once."""
    import openpyxl

    if not any(v is None for r in rows[1:] for v in r):
        return set()
    book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        part = getattr(book[sheet], "_worksheet_path", None)
        if part is not None:
            with zipfile.ZipFile(path) as archive, archive.open(part) as fh:
                tail, found = b"", False
                while chunk := fh.read(1 << 20):
                    text = tail + chunk
                    if b"<f>" in text or b"<f " in text:
                        found = True
                        break
                    tail = text[-3:]
            if not found:
                return set()
        return {
            (i, j)
            for i, r in enumerate(book[sheet].iter_rows(values_only=True))
            for j, v in enumerate(r)
            if isinstance(v, str) and v.startswith("=") and i < len(rows) and j < len(rows[i]) and rows[i][j] is None
        }
    finally:
        book.close()


def _xls_rows(path: Path, sheet: str | None) -> tuple[list[str], str, list[list[Any]]]:
    """An Excel 97-2003 sheet's cells as openpyxl gives an .xlsx's: None, str, float, bool, datetime."""
    import struct

    import xlrd  # only for Excel 97-2003 input

    # What xlrd raises on an OLE2 file that is no workbook (a .doc), a password-protected or a damaged one — at
    # opening or, the sheets being read on demand, when the sheet is read (review31 D2: a traceback then).
    unreadable = (
        xlrd.XLRDError,
        xlrd.compdoc.CompDocError,
        struct.error,
        AssertionError,
        IndexError,
        KeyError,
        ValueError,
        UnicodeError,
        OSError,
    )
    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
        try:
            names = book.sheet_names()
            name = _chosen_sheet(path, names, sheet)
            table = book.sheet_by_name(name)

            def value(cell: Any) -> Any:
                if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    return None
                if cell.ctype == xlrd.XL_CELL_DATE:
                    if cell.value < 0:  # Excel shows ##### for it: no date, its number (xlrd would give 1899)
                        return cell.value
                    try:
                        return xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
                    except (xlrd.xldate.XLDateError, ValueError, OverflowError):
                        return cell.value  # a number formatted as a date that is none: its number
                if cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    return bool(cell.value)
                if cell.ctype == xlrd.XL_CELL_ERROR:
                    return xlrd.error_text_from_code.get(cell.value, "#ERR")  # #N/A, #DIV/0! as Excel shows them
                return cell.value

            return names, name, [[value(c) for c in table.row(r)] for r in range(table.nrows)]
        finally:
            book.release_resources()
    except InvalidInput:
        raise
    except unreadable as exc:
        raise InvalidInput(
            f"{path}: not a readable Excel 97-2003 (.xls) workbook ({type(exc).__name__}: {exc}); save it as .xlsx "
            "or as CSV UTF-8",
            detail={"path": str(path)},
        ) from None


def read_workbook_table(path: Path, sheet: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One sheet of an .xlsx or .xls workbook (``sheet``, else the first) as text columns named by its first row,
    with ``_row`` (the sheet's row number: header = row 1, as a CSV's line) and the notes (which sheet was read,
    codes Excel shortened). Blank rows are dropped, as a CSV's are. InvalidInput when it cannot be read.

    ``table.attrs[LONG_NUMBERS]``: per column holding any, a mask (by row of the table) of the cells that are
    numbers of 16 or more digits, whose last digits Excel has lost."""
    read = _xls_rows if excel_kind(path) == "xls" else _xlsx_rows
    names, name, rows = read(path, sheet)
    notes: list[str] = []
    if sheet is None and len(names) > 1:
        notes.append(f"{path.name}: read the first sheet {name!r} of {len(names)}; name another with --layer")
    if not rows or not any(v is not None for v in rows[0]):
        raise InvalidInput(f"{path}: sheet {name!r} has no header in row 1", detail={"sheet": name})
    width = max(len(r) for r in rows)
    rows = [r + [None] * (width - len(r)) for r in rows]
    # Columns with neither a header nor a value (formatting Excel extends the sheet with) are not columns.
    while width and all(r[width - 1] is None for r in rows):
        width -= 1
    header = _unique_headers(rows[0][:width])
    body = [r[:width] for r in rows[1:]]
    table = pd.DataFrame([[_cell_text(v) for v in r] for r in body], columns=header, dtype=object)
    long_numbers: dict[str, np.ndarray] = {}
    for i, column in enumerate(header):
        long = np.array([_is_long_number(r[i]) for r in body], dtype=bool)
        if long.any():
            long_numbers[column] = long
            notes.append(
                f"{path.name}: column {column!r} holds numbers of 16 or more digits: Excel keeps 15, so a code "
                "typed as a number has lost its last digits; format the column as text (文本) and type them again"
            )
    table.insert(0, "_row", np.arange(len(table), dtype=np.int64) + 2)
    blank = (table[header] == "").all(axis=1).to_numpy() if header else np.ones(len(table), dtype=bool)
    table = table.loc[~blank].reset_index(drop=True)
    # Which cells those are, by the rows kept: a reader that knows a column holds identifiers refuses them.
    table.attrs[LONG_NUMBERS] = {column: long[~blank] for column, long in long_numbers.items()}
    table.attrs[HEADER_CELLS] = [_cell_text(v).strip() for v in rows[0][:width]]  # before the renaming
    unsaved = _unsaved_formulas(path, name, rows) if excel_kind(path) == "xlsx" else set()
    masks = {
        column: np.array([(i + 1, j) in unsaved for i in range(len(body))], dtype=bool)[~blank]
        for j, column in enumerate(header)
        if any(i > 0 and jj == j for i, jj in unsaved)
    }
    table.attrs[UNSAVED_FORMULAS] = masks
    return table, notes


#: The sheet an .xlsx export writes its CRS on (``crs`` | ``EPSG:4547`` in its first row): read back on import.
CRS_SHEET = "CRS"


def workbook_crs(path: Path, sheet: str | None = None) -> str | None:
    """The CRS a workbook states on its :data:`CRS_SHEET` (as this project's .xlsx export writes it), when the
    table read (``sheet``, else the first) is another sheet; None when it states none."""
    read = _xls_rows if excel_kind(path) == "xls" else _xlsx_rows
    try:
        names, _, rows = read(path, CRS_SHEET)  # that sheet's rows only
    except InvalidInput:  # no such sheet
        return None
    if (sheet or names[0]) == CRS_SHEET:
        return None
    first = rows[0] if rows else []
    if len(first) < 2 or first[0] != "crs" or not isinstance(first[1], str) or first[1] in ("", "unknown"):
        return None
    return first[1].strip()


def refuse_excel(path: Path, what: str) -> None:
    """InvalidInput in one line when ``path`` is an Excel workbook, for a reader of CSV only (``what`` it reads)."""
    if excel_kind(path) is not None:
        raise InvalidInput(
            f"{path}: Excel workbooks are not read as {what}; save it as CSV UTF-8 (逗号分隔)",
            detail={"path": str(path)},
        )
