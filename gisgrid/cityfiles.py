"""A city's own files — catalogues, routing rules, search terms, reason texts, the calendar, staff lists, the
evaluation rules: how every one of them is read, and what kind of file an extra file is.

Reading (:func:`read_text`, :func:`read_csv`), the same for every such file:

* UTF-8, with or without a BOM (the BOM never becomes part of the first column's name);
* else GB18030 — what Excel on Chinese Windows saves as "CSV" (GBK is a subset of it);
* anything else is refused in one line naming the file and what it is: UTF-16/UTF-32 (Excel's "Unicode 文本"),
  an Excel workbook, or bytes that are neither UTF-8 nor GB18030.

A CSV may end its lines in CRLF, have empty columns after the last named one (Excel adds them) and blank rows;
header names and values are stripped. Rows are numbered by their line in the file (the header is line 1). A row
with a value beyond the header's columns (a comma too many, a cell shifted right) is refused in one line naming
the line and the counts (:func:`too_many_cells`) — by this reader and by the pandas-read imports alike
(:func:`read_frame`: components, history, staff) — rather than read with its cells shifted or cut. Those imports
also refuse a header naming a column twice (:func:`refuse_repeated_columns`, case-insensitively).

The components and history imports share their tabular-source reading here: :func:`read_table_csv` (a CSV decoded
as above, as text columns with its line numbers), :func:`find_field` (a field's column among its aliases),
:class:`RowRefusals` (their per-row refusals) and :func:`coordinate_text` (a coordinate as a refusal shows it).

Kinds (:func:`file_kind`, :func:`extra_files`): ``GISGRID_CATALOGUE_EXTRA`` lists files of several kinds, and a
file's kind is decided by its header alone — never by its name. Each kind has its columns (:func:`kinds`); a
file is of a kind when its header has every column of that kind, where a kind whose columns all belong to a
larger kind that also fits gives way to it (an event-classes header has every component-classes column), and
when it has no column that only another kind has (an event-classes file short of a column is not taken for a
component-classes file). Other columns (a city's 备注) are left alone. A header that fits no kind, or more than
one, is refused in one line naming the file, the kinds and their columns. The kinds the extra list does not take
(search terms, reason texts, the calendar, the evaluation rules, the export fields) are recognised too, and
refused with where they go instead.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gisgrid.errors import GisgridError, InvalidInput
from gisgrid.texts import bilingual

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

#: How to save a file so that it is read (Excel's own words for its CSV UTF-8 format).
SAVE_AS = 'save it as "CSV UTF-8(逗号分隔)" (or CSV in GBK)'
SEARCH_TERMS_COLUMNS = ("term", "finds")
REASON_TEXTS_COLUMNS = ("code", "zh")
#: The columns :func:`gisgrid.evaluation.load_evaluation_rules` needs, stated here (the lower module: evaluation
#: imports this one) so that the kinds below recognise the file and do not take it for another kind when it is put
#: in the extra list.
EVALUATION_COLUMNS = ("kind", "subject", "key", "source", "lower", "upper", "value")

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE: its BOM begins with that one's
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _refuse(error: type[GisgridError], path: Path, what: str) -> GisgridError:
    return error(f"{path}: {what}", detail={"file": str(path)})


def decode(
    raw: bytes, path: Path, error: type[GisgridError] = InvalidInput, *, nul_ok: bool = False
) -> tuple[str, str]:
    """``raw`` (the bytes of ``path``) as text, and the encoding it was read in (``UTF-8`` or ``GB18030``).
    ``nul_ok``: a NUL byte is text (the components and history imports refuse the row holding one, naming it),
    not a sign of UTF-16 without a BOM."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise _refuse(error, path, f'{name} text (Excel\'s "Unicode 文本"), not UTF-8 or GB18030: {SAVE_AS}')
    if raw.startswith(b"PK\x03\x04"):
        raise _refuse(error, path, f"an Excel workbook (.xlsx) or another zip file, not CSV text: {SAVE_AS}")
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise _refuse(error, path, f"an Excel 97–2003 workbook (.xls), not CSV text: {SAVE_AS}")
    if not nul_ok and b"\x00" in raw:
        raise _refuse(error, path, f"holds NUL bytes (UTF-16 without a BOM, or not text): {SAVE_AS}")
    try:
        return raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError as exc:
        at = exc.start
    try:
        return raw.decode("gb18030"), "GB18030"
    except UnicodeDecodeError:
        raise _refuse(
            error, path, f"neither UTF-8 nor GB18030 text (byte 0x{raw[at]:02X} at offset {at} is not UTF-8): {SAVE_AS}"
        ) from None


def read_text(
    path: Path, what: str = "file", error: type[GisgridError] = InvalidInput, *, nul_ok: bool = False
) -> tuple[str, str]:
    """The text of a city file and the encoding it was read in; ``what`` names the file in a refusal
    (``"{path}: {what} not found"``); ``nul_ok`` as for :func:`decode`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _refuse(error, path, f"{what} not found") from None
    except OSError as exc:
        raise _refuse(error, path, f"{what} cannot be read ({exc.strerror or exc})") from None
    return decode(raw, path, error, nul_ok=nul_ok)


@dataclass(frozen=True)
class CsvTable:
    path: Path
    #: Stripped column names, without the empty ones after the last named column.
    header: list[str]
    #: (line, {column: stripped value}) of every row with a value in a named column.
    rows: list[tuple[int, dict[str, str]]]
    encoding: str


def read_csv(path: Path, what: str = "file", error: type[GisgridError] = InvalidInput) -> CsvTable:
    """A city CSV file read as the module docstring says."""
    path = Path(path)
    text, encoding = read_text(path, what, error)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        while header and not header[-1]:
            header.pop()
        for record in reader:
            cells = max((i + 1 for i, v in enumerate(record) if v.strip()), default=0)
            # Empty cells after the last column are Excel's; a value there is shifted (a blank header line is left
            # to the loaders' "missing columns").
            if header and cells > len(header):
                raise too_many_cells(path, reader.line_num, cells, len(header), error)
            values = {name: (record[i].strip() if i < len(record) else "") for i, name in enumerate(header) if name}
            if any(values.values()):
                rows.append((reader.line_num, values))
    except csv.Error as exc:
        raise _refuse(error, path, f"not a readable CSV (line {reader.line_num}: {exc})") from None
    return CsvTable(path, header, rows, encoding)


#: pandas' words for a row with more cells than the header (its C parser's; the line counts rows, as the imports do).
_PANDAS_TOO_MANY = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def too_many_cells(
    path: Path, line: int, cells: int, header: int, error: type[GisgridError] = InvalidInput
) -> GisgridError:
    """The one-line refusal of a row with more cells than the header, zh-CN first, as a row refusal is worded."""
    return error(
        f"{path}: "
        + bilingual(
            f"第 {line} 行有 {cells} 列,表头只有 {header} 列", f"line {line} has {cells} cells, the header {header}"
        ),
        detail={"file": str(path), "row": line, "cells": cells, "header": header},
    )


def repeated_columns(
    path: Path,
    first: str,
    second: str,
    at: tuple[int, int],
    field: str | None = None,
    error: type[GisgridError] = InvalidInput,
) -> GisgridError:
    """The one-line refusal of a header naming one column twice (``field``: two names of one field), zh-CN first:
    which of the two holds the values is not the reader's to guess (review43 D5: the second was kept, renamed
    ``lon.1``, as a custom attribute)."""
    i, j = at
    if field is None and first != second:  # the readers match names case-insensitively
        zh = f"列 {first} 和 {second}(第 {i} 列和第 {j} 列)是同一列(不区分大小写),请只保留一列"
        en = f"columns {first} and {second} (columns {i} and {j}) are one column (case is ignored); keep one"
    elif field is None:
        zh = f"列 {first} 出现了两次(第 {i} 列和第 {j} 列),请只保留一列"
        en = f"column {first} appears twice (columns {i} and {j}); keep one"
    else:
        zh = f"列 {first} 和 {second}(第 {i} 列和第 {j} 列)是同一字段 {field},请只保留一列"
        en = f"columns {first} and {second} (columns {i} and {j}) are both the field {field}; keep one"
    return error(
        f"{path}: " + bilingual(zh, en),
        detail={"file": str(path), "columns": [first, second], "positions": [i, j], "field": field},
    )


def refuse_repeated_columns(path: Path, header: Sequence[str], error: type[GisgridError] = InvalidInput) -> None:
    """Refuse (:func:`repeated_columns`) a header with a name twice — case-insensitively, surrounding spaces
    ignored, as the readers match column names; empty names (Excel's trailing columns) are not names."""
    seen: dict[str, int] = {}
    for j, name in enumerate(header, start=1):
        key = str(name).strip().casefold()
        if not key:
            continue
        if key in seen:
            i = seen[key]
            raise repeated_columns(path, str(header[i - 1]).strip(), str(name).strip(), (i, j), error=error)
        seen[key] = j


#: How pandas renames a repeated header name (``lon`` → ``lon.1``): then the header is read again as it is.
_PANDAS_RENAMED = re.compile(r"\.\d+$")


def _header_cells(source: Any, options: dict[str, Any]) -> list[str]:
    """The first row of ``source`` as its cells (pandas' header names without its renaming of repeated ones)."""
    import pandas as pd

    if hasattr(source, "seek"):
        source.seek(0)
    first = pd.read_csv(source, **{**options, "header": None, "nrows": 1, "dtype": str, "keep_default_na": False})
    return [str(v) for v in first.iloc[0]] if len(first) else []


def read_frame(source: Any, path: Path, error: type[GisgridError] = InvalidInput, **options: Any) -> pd.DataFrame:
    """``pandas.read_csv(source, **options)`` for a city's table (``path`` names it in a refusal): a row with more
    cells than the header is refused by :func:`too_many_cells` — pandas' own text (``Error tokenizing data. C error:
    …\n``) otherwise, or for the first row no error at all: it takes an extra first cell for the row labels and
    shifts every column — and any other parse error in one line; a header naming a column twice (case-insensitively)
    by :func:`refuse_repeated_columns`. Decoding and empty-file errors are the caller's."""
    import pandas as pd

    try:
        frame = pd.read_csv(source, **options)
    except pd.errors.ParserError as exc:
        found = _PANDAS_TOO_MANY.search(str(exc))
        if found:
            header, line, cells = (int(g) for g in found.groups())
            raise too_many_cells(path, line, cells, header, error) from None
        text = " ".join(str(exc).split())
        raise error(
            f"{path}: " + bilingual("无法读取的 CSV", f"not a readable CSV ({text})"), detail={"file": str(path)}
        ) from None
    if not isinstance(frame.index, pd.RangeIndex):  # the first row had one cell more: pandas made it the labels
        raise too_many_cells(path, 2, len(frame.columns) + 1, len(frame.columns), error)
    names = [str(c) for c in frame.columns]
    if any(_PANDAS_RENAMED.search(name) for name in names):
        names = _header_cells(source, options)
    refuse_repeated_columns(path, names, error)
    return frame


# -- tabular sources: the components and history imports ----------------------------------------------------------


def read_table_csv(path: Path, encoding: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """A CSV of rows to import (components, history) as text columns with ``_row`` (the line in the file, the
    header being line 1), and notes (the GB18030 fallback). Decoded as every city file (:func:`read_text`: UTF-8
    with or without a BOM, else GB18030, else a one-line refusal) unless ``encoding`` names the file's own; parsed
    by :func:`read_frame`. Stripped column names; ``'=…`` cells as gisgrid's CSV export wrote a formula-like text
    read back as that text (:func:`gisgrid.spreadsheet.csv_unquote`); blank lines and lines of only commas
    dropped (their line numbers kept)."""
    import numpy as np
    import pandas as pd

    from gisgrid.spreadsheet import csv_unquote

    notes: list[str] = []
    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "skip_blank_lines": False}
    try:
        if encoding:
            try:
                df = read_frame(path, path, encoding=encoding, **options)
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"{path}: not a readable CSV ({exc})", detail={"path": str(path)}) from exc
        else:
            text, found = read_text(path, "CSV file", nul_ok=True)  # a NUL refuses its row
            df = read_frame(io.StringIO(text, newline=""), path, **options)
            if found == "GB18030":  # Excel on Chinese Windows saves "CSV" in GBK; GB18030 is its superset
                notes.append(f"{path.name}: not UTF-8, read as GBK (GB18030)")
                log.info("%s", notes[-1])
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"{path}: empty file", detail={"path": str(path)}) from exc
    df.columns = [str(c).strip() for c in df.columns]
    csv_unquote(df)
    df.insert(0, "_row", np.arange(len(df), dtype=np.int64) + 2)  # header is line 1
    values = df.drop(columns="_row")
    # Blank lines (kept so that line numbers stay right) and lines of only commas are dropped.
    blank = (values == "").all(axis=1) if len(values.columns) else pd.Series(True, index=df.index)
    return df.loc[~blank].reset_index(drop=True), notes


def find_column(columns: list[str], aliases: tuple[str, ...], taken: set[str]) -> str | None:
    """The first of ``columns`` (case and surrounding spaces ignored) named by the first of ``aliases`` (lower
    case) that names one not ``taken``; None when none does."""
    lowered = {c.strip().lower(): c for c in reversed(columns)}  # first occurrence wins
    for alias in aliases:
        column = lowered.get(alias)
        if column is not None and column not in taken:
            return column
    return None


def find_field(path: Path, columns: list[str], field: str, aliases: tuple[str, ...], taken: set[str]) -> str | None:
    """:func:`find_column`, refusing the file (:func:`repeated_columns`) when two of its columns are names of this
    one field (``lon`` and ``lng``, ``GLBJMC`` and ``name``): which one holds the values is not ours to guess, and
    the other would be read as a custom attribute."""
    named = [i for i, c in enumerate(columns) if c not in taken and c.strip().lower() in aliases]
    if len(named) > 1:
        i, j = named[:2]
        raise repeated_columns(path, columns[i], columns[j], (i + 1, j + 1), field)
    return find_column(columns, aliases, taken)


def coordinate_text(value: float) -> str:
    """A coordinate as a refusal shows it: up to 7 decimals (about 1 cm), no trailing zeros; "" when not finite."""
    return f"{value:.7f}".rstrip("0").rstrip(".") if math.isfinite(value) else ""


#: The columns of a refusals frame (:meth:`RowRefusals.frame`), ``code`` after them.
REFUSAL_COLUMNS: tuple[str, ...] = ("row", "field", "value", "reason")


class RowRefusals:
    """Accumulates the refusals of an import's rows as small frames (one per check) plus the refused-row mask.
    ``rows``: the row numbers (``_row``) of the rows checked, in order."""

    def __init__(self, rows: np.ndarray) -> None:
        import numpy as np

        self.rows = rows
        self.bad = np.zeros(len(rows), dtype=bool)
        self.frames: list[pd.DataFrame] = []

    def add(self, mask: np.ndarray | pd.Series, field: str, values: Any, reason: Any, code: Any = None) -> None:
        """Refuse the rows in ``mask`` for ``field``: ``values``, ``reason`` and ``code`` (the refusal's
        :class:`~gisgrid.errors.Reason`, where it has one: the API's item code) as a value, an array or a function
        of the refused rows' positions."""
        import numpy as np
        import pandas as pd

        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        self.bad |= mask
        self.frames.append(
            pd.DataFrame(
                {
                    "row": self.rows[idx],
                    "field": field,
                    "value": _pick(values, idx),
                    "reason": _pick(reason, idx),
                    "code": _pick(code, idx),
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        """The refusals (row, field, value, reason, code), by row, then in the order the checks ran."""
        import numpy as np
        import pandas as pd

        if not self.frames:
            columns = [*REFUSAL_COLUMNS, "code"]
            return pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "row" else object) for c in columns})
        errors = pd.concat(self.frames, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
        errors["value"] = errors["value"].astype(object).where(errors["value"].notna(), "").astype(str)
        return errors


def _pick(values: Any, idx: np.ndarray) -> Any:
    import numpy as np
    import pandas as pd

    if callable(values):
        return values(idx)  # formatted only for the refused rows
    if isinstance(values, pd.Series):
        return values.to_numpy()[idx]
    if isinstance(values, np.ndarray):
        return values[idx]
    return values


# -- kinds ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    columns: tuple[str, ...]  # required
    optional: tuple[str, ...] = ()
    #: For a kind the extra list does not take: where such a file goes instead.
    elsewhere: str | None = None

    @property
    def all_columns(self) -> frozenset[str]:
        return frozenset((*self.columns, *self.optional))

    def describe(self) -> str:
        return f"{self.label} ({','.join(self.columns)})"


@functools.cache
def kinds() -> tuple[Kind, ...]:
    """Every kind of city file, with its columns (each loader's own, imported here so they are stated once)."""
    from gisgrid import calendar, catalogue, events, export_fields, routing

    return (
        Kind("departments", "departments", catalogue.DEPARTMENT_COLUMNS, catalogue.DEPARTMENT_OPTIONAL_COLUMNS),
        Kind("component_classes", "component classes", catalogue.CLASS_COLUMNS),
        Kind("class_map", "component class map", catalogue.MAP_COLUMNS),
        Kind("event_classes", "event classes", events.CLASS_COLUMNS, events.CLASS_OPTIONAL_COLUMNS),
        Kind("event_time_limits", "event time limits", events.LIMIT_COLUMNS),
        Kind("node_time_limits", "node time limits", events.NODE_COLUMNS, events.NODE_OPTIONAL_COLUMNS),
        Kind("routing_rules", "routing rules", routing.RULE_COLUMNS),
        Kind(
            "search_terms",
            "search terms",
            SEARCH_TERMS_COLUMNS,
            elsewhere="edit catalogue/search_terms.csv in the GISGRID_CATALOGUE_DIR copy",
        ),
        Kind(
            "reason_texts",
            "reason texts",
            REASON_TEXTS_COLUMNS,
            elsewhere="the reason texts are the product's and are read from the package only",
        ),
        Kind(
            "calendar",
            "working calendar",
            calendar.CALENDAR_COLUMNS,
            ("note",),
            elsewhere="name it in GISGRID_CALENDAR_FILE",
        ),
        Kind(
            "evaluation_rules",
            "evaluation rules",
            EVALUATION_COLUMNS,
            elsewhere="edit rules/evaluation.csv in the GISGRID_CATALOGUE_DIR copy",
        ),
        Kind(
            "export_fields",
            "export fields",
            tuple(export_fields.COLUMNS),
            elsewhere="the export fields are the standards' and are read from the package only",
        ),
    )


def _extra_kinds() -> list[Kind]:
    return [k for k in kinds() if k.elsewhere is None]


def _distinctive() -> dict[str, frozenset[str]]:
    """Per kind of the extra list, the columns no other such kind has."""
    extra = _extra_kinds()
    return {k.name: k.all_columns - frozenset().union(*(o.all_columns for o in extra if o is not k)) for k in extra}


def kind_of_header(path: Path, header: Sequence[str]) -> Kind:
    """The kind of a file with this ``header`` (InvalidInput naming ``path`` when none fits, or several do, or the
    kind is not read from ``GISGRID_CATALOGUE_EXTRA``)."""
    extra_kinds = "; ".join(k.describe() for k in _extra_kinds())
    if not header:
        raise _refuse(InvalidInput, path, f"empty (no header row); an extra catalogue file is one of: {extra_kinds}")
    names = set(header)
    distinctive = _distinctive()
    fitting = [k for k in _extra_kinds() if set(k.columns) <= names]
    # An event-classes header has every component-classes column: the larger kind is the file's.
    fitting = [k for k in fitting if not any(k.all_columns < o.all_columns for o in fitting)]
    # Columns only a kind that does not fit has: a file of that kind short of a column, not one of the fitting kind.
    partial = [k for k in _extra_kinds() if k not in fitting and names & distinctive[k.name]]
    if len(fitting) == 1 and not partial:
        return fitting[0]
    if len(fitting) == 1:
        other = max(partial, key=lambda k: len(names & k.all_columns))
        missing = ", ".join(c for c in other.columns if c not in names)
        raise _refuse(
            InvalidInput,
            path,
            f"the header has the columns of {fitting[0].describe()} and also "
            f"{', '.join(c for c in header if c in distinctive[other.name])} of {other.label} (missing column(s) "
            f"{missing}); a file holds one kind",
        )
    if len(fitting) > 1:
        several = "; ".join(k.describe() for k in fitting)
        raise _refuse(
            InvalidInput,
            path,
            f"the header fits more than one kind of catalogue file: {several}; give each its own file",
        )
    if not fitting:
        for kind in kinds():
            if kind.elsewhere is not None and set(kind.columns) <= names:
                raise _refuse(
                    InvalidInput,
                    path,
                    f"a file of {kind.describe()}, which GISGRID_CATALOGUE_EXTRA does not take: {kind.elsewhere}",
                )

    def nearness(k: Kind) -> tuple[bool, int, int]:
        present = sum(c in names for c in k.columns)
        return bool(names & distinctive[k.name]), present, present - len(k.columns)

    nearest = max(partial or _extra_kinds(), key=nearness)
    hint = ""
    if nearness(nearest)[1]:
        lacking = [c for c in nearest.columns if c not in names]
        hint = f" (nearest: {nearest.label}, missing column(s) {', '.join(lacking)})"
    raise _refuse(
        InvalidInput,
        path,
        f"the header {','.join(header)} fits no kind of catalogue file{hint}; "
        f"the kinds and their columns: {extra_kinds}",
    )


def file_kind(path: Path | str) -> Kind:
    """The kind of the city file at ``path``, by its header (:func:`kind_of_header`)."""
    path = Path(path)
    return kind_of_header(path, read_csv(path, "catalogue file").header)


def extra_files(paths: Iterable[Path | str], kind: str) -> list[Path]:
    """The files of ``paths`` whose header makes them of ``kind`` (a :class:`Kind` name), in their order; every
    file is classified, so one of no kind is refused whichever loader asks first."""
    if kind not in {k.name for k in kinds()}:
        raise ValueError(f"unknown kind {kind!r}")
    return [Path(p) for p in paths if file_kind(p).name == kind]
