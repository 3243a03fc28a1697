"""Excel tables a city sends (review27 D11): an .xlsx or Excel 97-2003 .xls sheet is imported as the CSV saved
from it — the same columns, checks and row numbers — and what cannot be read is refused in one line, never with a
traceback. The .xls samples are committed (tests/excel_samples/make_samples.py made them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from gisgrid.boundaries import BoundaryOptions, read_boundaries
from gisgrid.components import DIGITS_LOST_REASON, read_component_file
from gisgrid.errors import InvalidInput
from gisgrid.grids.workflows import import_staff
from gisgrid.history_import import read_history_csv
from gisgrid.settings import PROJECT_ROOT, Settings
from gisgrid.spreadsheet import excel_kind, read_workbook_table
from gisgrid.vectorio import read_layer_any
from tests.fixtures import DISTRICT, load_small_district
from tests.test_cli_exit_codes import count, gisgrid
from tests.test_components_store import LAMP, inside_points, run, write_csv

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DEPT = "990000000000000012"
SAMPLES = Path(__file__).parent / "excel_samples"


@pytest.fixture
def district(clean_db: Engine, tmp_path: Path) -> Engine:
    load_small_district(clean_db, tmp_path)
    return clean_db


def workbook(path: Path, rows: list[list[object]], *, sheets: dict[str, list[list[object]]] | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "部件"
    for r in rows:
        sheet.append(r)
    for name, extra in (sheets or {}).items():
        other = book.create_sheet(name)
        for r in extra:
            other.append(r)
    book.save(path)
    return path


def old_xls(path: Path) -> Path:
    """The first bytes of an Excel 97-2003 workbook (an OLE2 compound file) and nothing of one: not readable."""
    path.write_bytes(OLE2 + bytes(504))
    return path


# -- reading a sheet --------------------------------------------------------------------------------------


#: The cells of tests/excel_samples/types.xls's first sheet, 部件 (its second, 井盖, is b / 2 / 3).
TYPES_ROWS: list[list[object]] = [
    ["class_code", " 经度 ", "lat", "CSRQ", "note", None, "note"],
    ["01037", 113.7, 34.75, dt.datetime(2024, 5, 6), 12.0, None, "a"],
    [None, None, None, None, None, None, None],  # a blank row: dropped, its number kept
    ["01037", 113.25, 34, dt.datetime(2024, 5, 6, 8, 30), True, "x", None],
    ["990000000000000012", 9.9e17, None, None, None, None, None],
]


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
def test_a_sheet_reads_as_the_text_its_csv_would_hold(tmp_path: Path, kind: str) -> None:
    if kind == "xlsx":
        path = workbook(tmp_path / "t.xlsx", TYPES_ROWS, sheets={"井盖": [["b"], ["2"], ["3"]]})
    else:
        path = SAMPLES / "types.xls"
    assert excel_kind(path) == kind
    table, notes = read_workbook_table(path)
    assert notes == [
        f"{path.name}: read the first sheet '部件' of 2; name another with --layer",
        f"{path.name}: column '经度' holds numbers of 16 or more digits: Excel keeps 15, so a code typed as a "
        "number has lost its last digits; format the column as text (文本) and type them again",
    ]
    assert list(table.columns) == ["_row", "class_code", "经度", "lat", "CSRQ", "note", "Unnamed: 5", "note.1"]
    assert table["_row"].tolist() == [2, 4, 5]
    assert table.drop(columns="_row").to_dict("records") == [
        {"class_code": "01037", "经度": "113.7", "lat": "34.75", "CSRQ": "2024-05-06", "note": "12",
         "Unnamed: 5": "", "note.1": "a"},
        {"class_code": "01037", "经度": "113.25", "lat": "34", "CSRQ": "2024-05-06 08:30:00", "note": "TRUE",
         "Unnamed: 5": "x", "note.1": ""},
        {"class_code": DEPT, "经度": "990000000000000000", "lat": "", "CSRQ": "", "note": "",
         "Unnamed: 5": "", "note.1": ""},
    ]  # fmt: skip
    table, notes = read_workbook_table(path, "井盖")
    assert (table["b"].tolist(), table["_row"].tolist(), notes) == (["2", "3"], [2, 3], [])


def test_the_first_sheet_is_read_unless_one_is_named(tmp_path: Path) -> None:
    path = workbook(tmp_path / "t.xlsx", [["a"], ["1"]], sheets={"井盖": [["b"], ["2"], ["3"]]})
    table, notes = read_workbook_table(path)
    assert table["a"].tolist() == ["1"]
    assert notes == ["t.xlsx: read the first sheet '部件' of 2; name another with --layer"]
    table, notes = read_workbook_table(path, "井盖")
    assert (table["b"].tolist(), table["_row"].tolist(), notes) == (["2", "3"], [2, 3], [])
    with pytest.raises(InvalidInput) as exc:
        read_workbook_table(path, "路灯")
    assert exc.value.message == f"{path}: no sheet '路灯'; sheets: 部件, 井盖"


def test_codes_excel_shortened_to_15_digits_are_noted(tmp_path: Path) -> None:
    path = workbook(tmp_path / "t.xlsx", [["ZGBMDM", "id"], [9.9e17, "41990101037000001"]])
    table, notes = read_workbook_table(path)
    assert table["ZGBMDM"].tolist() == ["990000000000000000"]
    assert notes == [
        "t.xlsx: column 'ZGBMDM' holds numbers of 16 or more digits: Excel keeps 15, so a code typed as a number "
        "has lost its last digits; format the column as text (文本) and type them again"
    ]


def test_excel_kind_goes_by_the_first_bytes(tmp_path: Path) -> None:
    xlsx = workbook(tmp_path / "t.xlsx", [["a"]])
    renamed = tmp_path / "new.xls"  # what new Excel writes when told .xls, and the reviewer's comp_bad.xls
    renamed.write_bytes(xlsx.read_bytes())
    csv = tmp_path / "c.csv"
    csv.write_text("a\n1\n", encoding="utf-8")
    named_csv = old_xls(tmp_path / "old.csv")
    kinds = [excel_kind(p) for p in (xlsx, renamed, old_xls(tmp_path / "old.xls"), named_csv, csv)]
    assert kinds == ["xlsx", "xlsx", "xls", "xls", None]


def test_an_unreadable_workbook_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(path)
    assert exc.value.message.startswith(f"{path}: not a readable .xlsx workbook (")
    empty = workbook(tmp_path / "empty.xlsx", [])
    with pytest.raises(InvalidInput) as exc:
        read_component_file(empty)
    assert exc.value.message == f"{empty}: sheet '部件' has no header in row 1"


# -- components ---------------------------------------------------------------------------------------------


def component_rows() -> list[dict[str, object]]:
    xs, ys = inside_points(3, seed=11)
    return [
        {"class_code": LAMP, "ZGBMDM": DEPT, "lon": float(xs[0]), "lat": float(ys[0])},
        {"class_code": "01999", "ZGBMDM": DEPT, "lon": float(xs[1]), "lat": float(ys[1])},  # unknown class
        {"class_code": LAMP, "ZGBMDM": DEPT, "lon": float(xs[2]), "lat": float(ys[2])},
    ]


def as_workbook(path: Path, rows: list[dict[str, object]]) -> Path:
    return workbook(path, [list(rows[0]), *(list(r.values()) for r in rows)])


def test_an_xlsx_component_sheet_imports_as_its_csv_does(district: Engine, tmp_path: Path) -> None:
    rows = component_rows()
    sheet = run(district, as_workbook(tmp_path / "c.xlsx", rows), dry_run=True)
    csv = run(district, write_csv(tmp_path / "c.csv", rows), dry_run=True)
    assert (sheet.read, sheet.inserted, sheet.refused) == (csv.read, csv.inserted, csv.refused) == (3, 2, 1)
    assert sheet.errors.to_dict("records") == csv.errors.to_dict("records")
    assert sheet.errors[["row", "field"]].to_dict("records") == [{"row": 3, "field": "class_code"}]
    written = run(district, as_workbook(tmp_path / "c.xlsx", rows))
    assert (written.inserted, written.refused) == (2, 1)
    assert count(district, "components") == 2


def test_the_cli_imports_an_xlsx_and_refuses_an_xls_in_one_line(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    rows = component_rows()
    src = as_workbook(tmp_path / "c.xlsx", rows)
    r = gisgrid(settings, tmp_path, "components", "import", str(src), "--all-or-nothing")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "read 3, inserted 0, updated 0, unchanged 0, refused 1" in r.stdout
    assert "Traceback" not in r.stderr
    assert count(loaded, "components") == 0
    r = gisgrid(settings, tmp_path, "components", "import", str(src))
    assert r.returncode == 3, r.stdout + r.stderr  # two rows imported, one refused
    assert count(loaded, "components") == 2

    xls = old_xls(tmp_path / "c.xls")
    r = gisgrid(settings, tmp_path, "components", "import", str(xls))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: {xls}: not a readable Excel 97-2003 (.xls) workbook (")
    assert r.stderr.endswith("); save it as .xlsx or as CSV UTF-8\n") and r.stderr.count("\n") == 1
    assert count(loaded, "components") == 2


def test_an_xls_component_sheet_imports_as_its_csv_does(district: Engine, tmp_path: Path) -> None:
    rows = component_rows()
    sheet = run(district, SAMPLES / "components.xls", dry_run=True)
    csv = run(district, write_csv(tmp_path / "c.csv", rows), dry_run=True)
    assert (sheet.read, sheet.inserted, sheet.refused) == (csv.read, csv.inserted, csv.refused) == (3, 2, 1)
    assert sheet.errors.to_dict("records") == csv.errors.to_dict("records")
    written = run(district, SAMPLES / "components.xls")
    assert (written.inserted, written.refused) == (2, 1)
    with district.connect() as conn:
        stored = conn.execute(
            text("SELECT class_code, round(ST_X(geom)::numeric, 6), round(ST_Y(geom)::numeric, 6) FROM components "
                 "ORDER BY ST_X(geom)")
        ).all()  # fmt: skip
    assert [tuple(map(str, r)) for r in stored] == [
        ("01037", "113.674057", "34.746625"),
        ("01037", "113.680267", "34.742822"),
    ]


def as_excel_number(identifier: str) -> float:
    """What Excel keeps of an identifier typed into a number column: 15 significant digits."""
    return float(identifier[:15] + "0" * (len(identifier) - 15))


def test_identifiers_excel_turned_into_numbers_are_refused_row_by_row(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review38 D1: the digits read are another stored component's identifier or a made-up one; refused, not
    an update of the other component nor an insert under the made-up identifier."""
    xs, ys = inside_points(4, seed=5)
    a, b = f"{DISTRICT}{LAMP}000101", f"{DISTRICT}{LAMP}000100"
    stored = [
        {"GLBJBSM": i, "class_code": LAMP, "lon": float(x), "lat": float(y)}
        for i, x, y in zip((a, b), xs[:2], ys[:2], strict=True)
    ]
    run(loaded, write_csv(tmp_path / "a.csv", stored))
    header = ["GLBJBSM", "class_code", "lon", "lat", "BZ"]
    src = workbook(
        tmp_path / "idnum.xlsx",
        [
            header,
            [as_excel_number(a), LAMP, float(xs[0]), float(ys[0]), "moved"],  # reads as b: would move b onto a
            [as_excel_number(f"{DISTRICT}{LAMP}000777"), LAMP, float(xs[2]), float(ys[2]), None],  # made up: …000700
            [b, LAMP, float(xs[1]), float(ys[1]), None],  # a text cell: unchanged
            [as_excel_number(b), LAMP, float(xs[3]), float(ys[3]), None],  # exact by chance, still refused
        ],
    )
    refused = [
        {"row": 2, "field": "GLBJBSM", "value": b, "reason": DIGITS_LOST_REASON},
        {"row": 3, "field": "GLBJBSM", "value": f"{DISTRICT}{LAMP}000700", "reason": DIGITS_LOST_REASON},
        {"row": 5, "field": "GLBJBSM", "value": b, "reason": DIGITS_LOST_REASON},
    ]
    errors = tmp_path / "refused.csv"
    summary = run(loaded, src, errors_path=errors)
    assert (summary.read, summary.inserted, summary.updated, summary.unchanged, summary.refused) == (4, 0, 0, 1, 3)
    assert summary.errors[["row", "field", "value", "reason"]].to_dict("records") == refused
    assert pd.read_csv(errors, dtype={"row": int, "value": str}, encoding="utf-8-sig").to_dict("records") == refused
    with loaded.connect() as conn:
        now = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom), note FROM components ORDER BY id")).all()
    assert [tuple(r) for r in now] == [(b, float(xs[1]), float(ys[1]), None), (a, float(xs[0]), float(ys[0]), None)]
    # --all-or-nothing refuses the file for them; a file of only such rows writes nothing and exits 1.
    whole = run(loaded, src, all_or_nothing=True)
    assert (whole.refused, whole.unchanged, whole.written) == (3, 0, False)
    only = workbook(tmp_path / "only.xlsx", [header, [as_excel_number(a), LAMP, float(xs[0]), float(ys[0]), None]])
    r = gisgrid(settings, tmp_path, "components", "import", str(only))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"first refusal: row 2 field GLBJBSM: {DIGITS_LOST_REASON}\n" in r.stdout
    assert count(loaded, "components") == 2


def test_an_xlsx_with_an_encoding_is_refused(tmp_path: Path) -> None:
    path = as_workbook(tmp_path / "c.xlsx", component_rows())
    with pytest.raises(InvalidInput) as exc:
        read_component_file(path, encoding="gbk")
    assert exc.value.message == (
        f"{path}: a text encoding applies to CSV and Shapefiles only; an Excel workbook says its own"
    )


# -- the other importers ------------------------------------------------------------------------------------


def test_a_history_sheet_reads_as_its_csv(tmp_path: Path) -> None:
    sample = PROJECT_ROOT / "data" / "demo" / "history-sample.csv"
    table = pd.read_csv(sample, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    path = workbook(tmp_path / "h.xlsx", [list(table.columns), *table.to_numpy().tolist()])
    from_sheet, sheet_notes = read_history_csv(path)
    from_csv, csv_notes = read_history_csv(sample)
    pd.testing.assert_frame_equal(from_sheet, from_csv)
    assert sheet_notes == csv_notes


def test_a_history_xls_reads_as_its_csv() -> None:
    from_sheet, sheet_notes = read_history_csv(SAMPLES / "history-sample.xls")
    from_csv, csv_notes = read_history_csv(PROJECT_ROOT / "data" / "demo" / "history-sample.csv")
    pd.testing.assert_frame_equal(from_sheet, from_csv)
    assert sheet_notes == csv_notes


def test_history_refuses_an_unreadable_xls_in_one_line(tmp_path: Path) -> None:
    path = old_xls(tmp_path / "h.xls")
    with pytest.raises(InvalidInput) as exc:
        read_history_csv(path)
    assert exc.value.message.startswith(f"{path}: not a readable Excel 97-2003 (.xls) workbook (")


@pytest.mark.parametrize("name", ["staff.xlsx", "staff.xls"])
def test_staff_refuses_a_workbook_in_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".xlsx"):
        workbook(path, [["grid_code", "role", "name", "phone"]])
    else:
        old_xls(path)
    with pytest.raises(InvalidInput) as exc:
        import_staff(None, path)  # type: ignore[arg-type]  # refused before the database is asked
    assert exc.value.message == f"{path}: Excel workbooks are not read as a staff file; save it as CSV UTF-8 (逗号分隔)"


@pytest.mark.parametrize("name", ["b.xlsx", "b.xls"])
def test_boundaries_refuse_a_workbook_in_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".xlsx"):
        workbook(path, [["code", "name", "wkt"], ["419901", "Z区", "POINT (113.7 34.7)"]])
    else:
        old_xls(path)
    with pytest.raises(InvalidInput) as exc:
        read_boundaries(path, BoundaryOptions())
    assert exc.value.message == (
        f"{path}: an Excel workbook is a table without geometry; give a GeoPackage, Shapefile, GeoJSON or a CSV "
        "with a 'wkt' column"
    )


def test_a_layer_without_geometry_is_refused_in_one_line(tmp_path: Path) -> None:
    """A .dbf alone (or any table GDAL reads) has no geometry: refused, not an AttributeError further on."""
    import geopandas as gpd
    import shapely

    gpd.GeoDataFrame({"code": ["1"]}, geometry=[shapely.Point(113.7, 34.7)], crs=4490).to_file(tmp_path / "t.shp")
    (tmp_path / "t.shp").unlink()
    (tmp_path / "t.shx").unlink()
    with pytest.raises(InvalidInput) as exc:
        read_layer_any(tmp_path / "t.dbf")
    assert exc.value.message == f"{tmp_path / 't.dbf'}: layer 't' has no geometry (a table)"


def test_a_population_file_refuses_a_workbook_and_bad_text_in_one_line(tmp_path: Path) -> None:
    from gisgrid.grids.workflows import cell_weights

    book = workbook(tmp_path / "pop.xlsx", [["code", "population"]])
    with pytest.raises(InvalidInput) as exc:
        cell_weights(None, None, "population", book)  # type: ignore[arg-type]  # refused before either is used
    assert exc.value.message == (
        f"{book}: Excel workbooks are not read as a population file; save it as CSV UTF-8 (逗号分隔)"
    )
    utf16 = tmp_path / "pop.csv"
    utf16.write_text("code,population\n419901001001001,10\n", encoding="utf-16")
    with pytest.raises(InvalidInput) as exc:
        cell_weights(None, None, "population", utf16)  # type: ignore[arg-type]
    assert exc.value.message == (
        f'{utf16}: UTF-16 text (Excel\'s "Unicode 文本"), not UTF-8 or GB18030: save it as "CSV UTF-8(逗号分隔)" '
        "(or CSV in GBK)"
    )


def test_a_population_file_saved_by_chinese_excel_is_read_as_gb18030(tmp_path: Path) -> None:
    """review28 D4: the population file is read as every city file (cityfiles): GB18030 as well as UTF-8, rows
    numbered by their line (a blank line counted)."""
    from gisgrid.grids.workflows import cell_weights

    cells = pd.DataFrame({"code": ["419901001001001", "419901001001002"]})
    pop = tmp_path / "pop_gbk.csv"
    pop.write_bytes("code,population,备注\r\n419901001001001,120,社区\r\n".encode("gb18030"))
    weights = cell_weights(None, cells, "population", pop)  # type: ignore[arg-type]
    assert weights is not None and weights.tolist() == [120.0, 0.0]
    pop.write_bytes(
        "code,population,备注\r\n419901001001001,120,社区\r\n\r\n419901001001002,约三百,\r\n".encode("gb18030")
    )
    with pytest.raises(InvalidInput) as exc:
        cell_weights(None, cells, "population", pop)  # type: ignore[arg-type]
    assert exc.value.message == f"{pop}: row 4: population must be a number ≥ 0"
    pop.write_bytes("编码,人口\r\n419901001001001,120\r\n".encode("gb18030"))
    with pytest.raises(InvalidInput) as exc:
        cell_weights(None, cells, "population", pop)  # type: ignore[arg-type]
    assert exc.value.message == f"{pop}: expected columns code,population; found 编码, 人口"


def test_a_damaged_xls_is_refused_in_one_line_never_a_traceback(tmp_path: Path) -> None:
    """review31 D2: the sheet is read on demand, after the workbook opened; a damaged sheet raised xlrd's own
    errors (IndexError, struct.error …) from there. 200 seeded corruptions of the sample: each reads or is refused."""
    import random

    sample = (SAMPLES / "types.xls").read_bytes()
    rng = random.Random(31)
    refused = 0
    for k in range(200):
        data = bytearray(sample)
        for _ in range(3):
            data[rng.randrange(512, len(data))] = rng.randrange(256)
        path = tmp_path / f"damaged{k}.xls"
        path.write_bytes(bytes(data))
        try:
            read_workbook_table(path)
        except InvalidInput as exc:
            assert exc.message.startswith(f"{path}: not a readable Excel 97-2003 (.xls) workbook ("), exc.message
            assert exc.message.endswith("); save it as .xlsx or as CSV UTF-8") and "\n" not in exc.message
            refused += 1
    assert refused > 50  # most corruptions hit the workbook's structure


def test_xls_error_cells_numbers_that_are_no_dates_and_1904_dates_read_as_excel_shows_them() -> None:
    """review33 S14: an error cell reads as Excel shows it (#N/A, #DIV/0!); a number formatted as a date that is
    none (negative, past 9999) as its number, not a date of 1899; a workbook of Mac Excel's 1904 date system gives
    its dates, not dates 4 years and a day off."""
    table, notes = read_workbook_table(SAMPLES / "cells.xls")
    assert notes == []
    assert table.drop(columns="_row").to_dict("records") == [
        {"class_code": "01037", "lookup": "#N/A", "ratio": "#DIV/0!", "CSRQ": "-1", "BGRQ": "3000000"}
    ]
    table, _ = read_workbook_table(SAMPLES / "dates1904.xls")
    assert table["CSRQ"].tolist() == ["2025-11-03"]


def test_a_negative_number_formatted_as_a_date_in_an_xlsx_is_its_number(tmp_path: Path) -> None:
    """As for .xls: Excel shows ##### for it, openpyxl would give 1899-12-29."""
    path = workbook(tmp_path / "neg.xlsx", [["class_code", "CSRQ"], ["01037", -1], ["01037", 45964]])
    book = openpyxl.load_workbook(path)
    for cell in ("B2", "B3"):
        book["部件"][cell].number_format = "yyyy-mm-dd"
    book.save(path)
    table, _ = read_workbook_table(path)
    assert table["CSRQ"].tolist() == ["-1", "2025-11-03"]
