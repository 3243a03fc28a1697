"""Exports a spreadsheet opens never carry a formula from the data (review24 #3).

Every writer — the evaluation table (CLI ``--out .csv/.xlsx``, ``GET /evaluation?format=csv`` and the risks CSV),
the components CSV export, the components import's refusals and warnings, the history import's refusals, any
layer written as CSV — quotes formula-like text in CSV (``'=…``) and stores it as a string cell in XLSX; numbers
are left alone. gisgrid's own CSV exports read back unchanged."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.main import create_app
from api.routers.evaluation import table_response
from gisgrid import cases as svc
from gisgrid import history, spreadsheet
from gisgrid.cli import app
from gisgrid.components_store import ImportOptions, catalogue_for, import_components
from gisgrid.evaluation_service import write_table
from gisgrid.settings import Settings
from gisgrid.vectorio import read_layer_any, write_layer
from tests.test_components_roundtrip import export
from tests.test_components_store import LAMP, inside_points, write_csv
from tests.test_evaluation_as_of import HEADER, R1

HYPERLINK = '=HYPERLINK("http://x","y")'
CMD = "+cmd|' /C calc'!A0"
AT = "@SUM(1)"
MINUS = "-2+3"
TAB, CR = "\tx", "\r=1+1"
FORMULAS = [HYPERLINK, CMD, AT, MINUS, TAB, CR]
QUOTED = ["'" + v for v in FORMULAS]


def cells(data: str) -> list[list[str]]:
    """The CSV's cells exactly as a spreadsheet reads them (BOM dropped)."""
    return list(csv.reader(io.StringIO(data.removeprefix("\ufeff"), newline="")))


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig")  # not read_text: it would turn a CR inside a cell into a new line


def column(rows: list[list[str]], name: str) -> list[str]:
    i = rows[0].index(name)
    return [r[i] for r in rows[1:]]


def frame() -> pd.DataFrame:
    n = len(FORMULAS) + 1
    return pd.DataFrame(
        {
            "subject": [*FORMULAS, "监督员甲"],
            "score": [-1.5, *([2.0] * (n - 1))],  # a real negative number
            "rank_change": pd.array([-3, *([None] * (n - 1))], dtype="Int64"),
            "note": ["-", "'=already quoted", "a-b", "= with space", None, "", "'正常"],
        }
    )


# -- the one rule ----------------------------------------------------------------------------------------


def test_the_rule_quotes_formula_like_text_only_and_reads_it_back() -> None:
    table = frame()
    safe = spreadsheet.csv_safe(table)
    assert safe["subject"].tolist() == [*QUOTED, "监督员甲"]
    assert safe["score"].tolist() == table["score"].tolist() and safe["score"].dtype == float
    assert safe["rank_change"].tolist()[0] == -3 and str(safe["rank_change"].dtype) == "Int64"
    assert safe["note"].fillna("NA").tolist() == ["'-", "''=already quoted", "a-b", "'= with space", "NA", "", "'正常"]
    assert table["subject"].tolist() == [*FORMULAS, "监督员甲"]  # the caller's frame untouched
    back = spreadsheet.csv_unquote(safe.copy())
    assert back["subject"].tolist() == table["subject"].tolist()
    assert back["note"].fillna("NA").tolist() == table["note"].fillna("NA").tolist()
    # a quote before anything else is kept (it is part of the text)
    assert spreadsheet.csv_unquote_text("'abc") == "'abc" and spreadsheet.csv_unquote_text("'") == "'"
    assert spreadsheet.csv_unquote_text(-2) == -2


# -- the evaluation table ---------------------------------------------------------------------------------


def test_the_evaluation_csv_and_xlsx_keep_text_as_text(tmp_path: Path) -> None:
    write_table(frame(), tmp_path / "t.csv", "2025-09 监督员", "supervisor")
    rows = cells(read(tmp_path / "t.csv"))
    assert column(rows, "subject") == [*QUOTED, "监督员甲"]
    assert column(rows, "score")[0] == "-1.5" and column(rows, "rank_change")[0] == "-3"

    write_table(frame(), tmp_path / "t.xlsx", "2025-09 监督员", "supervisor")
    book = openpyxl.load_workbook(tmp_path / "t.xlsx")
    sheet = book["2025-09 监督员"]
    subjects = [c for c in next(sheet.iter_cols(min_row=2, max_col=1))]
    # exactly the text, no quote added (XML reads a CR as a line feed: still text, never a formula)
    assert [c.value for c in subjects] == [*FORMULAS[:-1], "\n=1+1", "监督员甲"]
    assert [c.data_type for c in subjects] == ["s"] * 7  # no formula cell ('f')
    assert [c.quotePrefix for c in subjects] == [True] * 6 + [False]  # and it stays text when edited
    score, change = sheet.cell(row=2, column=2), sheet.cell(row=2, column=3)
    assert (score.value, score.data_type, change.value, change.data_type) == (-1.5, "n", -3, "n")
    assert all(c.data_type != "f" for ws in book.worksheets for row in ws.iter_rows() for c in row)


def test_the_api_csv_quotes_formula_like_text() -> None:
    answer = table_response(frame(), "csv", "evaluation-supervisor-2025-09")
    rows = cells(answer.body.decode("utf-8"))
    assert column(rows, "subject") == [*QUOTED, "监督员甲"]
    assert column(rows, "score")[0] == "-1.5" and column(rows, "rank_change")[0] == "-3"
    assert column(rows, "note") == ["'-", "''=already quoted", "a-b", "'= with space", "", "", "'正常"]


def test_a_region_named_like_a_formula_through_the_cli_and_the_api(
    loaded: Engine, services: svc.CaseServices, settings: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "r1.csv"
    src.write_text(HEADER + "\n" + R1, encoding="utf-8")
    options = history.HistoryImportOptions(errors_path=tmp_path / "r1.errors.csv")
    assert history.import_history(loaded, src, services, options).imported_cases == 1
    with loaded.begin() as conn:
        street = conn.execute(
            text("UPDATE management_grids SET name = :n WHERE code = (SELECT street_code FROM cases) RETURNING code"),
            {"n": HYPERLINK},
        ).scalar_one()
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    base = ["evaluate", "--period", "2025-09", "--level", "tier1"]
    for name in ("t1.csv", "t1.xlsx"):
        r = CliRunner().invoke(app, [*base, "--out", str(tmp_path / name)], env=env)
        assert r.exit_code == 0, r.output
    rows = cells(read(tmp_path / "t1.csv"))
    # the other street is listed too (no case: 不参评, review49 F5)
    assert column(rows, "subject")[0] == street and column(rows, "name")[0] == "'" + HYPERLINK
    cell = openpyxl.load_workbook(tmp_path / "t1.xlsx")["2025-09 一级网格(街道)"]["B3"]  # below title and header
    assert (cell.value, cell.data_type) == (HYPERLINK, "s")

    with TestClient(create_app(settings)) as client:
        answer = client.get("/evaluation", params={"period": "2025-09", "level": "tier1", "format": "csv"})
    assert answer.status_code == 200, answer.text
    rows = cells(answer.text)
    assert column(rows, "subject")[0] == street and column(rows, "name")[0] == "'" + HYPERLINK


# -- components: export, re-import, refusals and warnings -------------------------------------------------


def test_components_named_like_formulas_export_quoted_and_reimport_unchanged(loaded: Engine, tmp_path: Path) -> None:
    catalogue = catalogue_for(Settings())
    xs, ys = inside_points(len(FORMULAS) + 1, seed=11)
    names = [*FORMULAS[:4], "= 1", "路灯 -1"]  # TAB and CR do not survive a CSV import's trimming: not names here
    notes = [AT, "", MINUS, "", CMD, HYPERLINK]
    rows = [
        {"class_code": LAMP, "lon": x, "lat": y, "name": n, "note": note}
        for x, y, n, note in zip(xs, ys, names, notes, strict=False)
    ]
    first = import_components(loaded, write_csv(tmp_path / "in.csv", rows), catalogue, ImportOptions())
    assert (first.inserted, first.refused) == (6, 0), first.to_text()
    with loaded.connect() as conn:
        before = conn.execute(text("SELECT * FROM components ORDER BY id")).all()
    assert sorted(r.name for r in before) == sorted(names)

    out = export(loaded, tmp_path / "c.csv")
    rows_out = cells(read(out))
    by_id = dict(
        zip(
            column(rows_out, "GLBJBSM"),
            zip(column(rows_out, "GLBJMC"), column(rows_out, "BZ"), strict=True),
            strict=True,
        )
    )
    quoted = {r.id: (spreadsheet.csv_text(r.name), spreadsheet.csv_text(r.note or "")) for r in before}
    assert by_id == quoted
    assert {v for pair in by_id.values() for v in pair} >= {"'" + HYPERLINK, "'" + CMD, "'" + AT, "'" + MINUS}
    assert "路灯 -1" in column(rows_out, "GLBJMC") and "'= 1" in column(rows_out, "GLBJMC")

    again = import_components(loaded, out, catalogue, ImportOptions(actor="roundtrip"))
    assert (again.read, again.inserted, again.updated, again.unchanged, again.refused) == (6, 0, 0, 6, 0), (
        again.to_text()
    )
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT * FROM components ORDER BY id")).all() == before


def test_the_components_refusals_and_warnings_files_quote_formula_like_values(loaded: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(3, seed=12)
    rows = [
        {"class_code": HYPERLINK, "lon": xs[0], "lat": ys[0]},  # refused: unknown class
        {"class_code": LAMP, "lon": xs[1], "lat": ys[1], "status": CMD},  # refused: unknown status
        {"class_code": LAMP, "lon": xs[2], "lat": ys[2], "ZGBMDM": "990000000000000012", "ZGBMMC": AT},  # warned
    ]
    summary = import_components(
        loaded, write_csv(tmp_path / "in.csv", rows), catalogue_for(Settings()),
        ImportOptions(errors_path=tmp_path / "refused.csv"),
    )  # fmt: skip
    assert (summary.inserted, summary.refused, len(summary.warnings)) == (1, 2, 1), summary.to_text()
    refused = cells(read(tmp_path / "refused.csv"))
    assert rows_of(refused, "row", "field", "value") == [
        ["2", "class_code", "'" + HYPERLINK],
        ["3", "status", "'" + CMD],
    ]
    warned = cells(read(tmp_path / "refused.warnings.csv"))
    assert rows_of(warned, "row", "field", "value") == [["4", "ZGBMMC", "'" + AT]]


def rows_of(rows: list[list[str]], *names: str) -> list[list[str]]:
    return [list(t) for t in zip(*(column(rows, n) for n in names), strict=True)]


# -- the history import's refusals --------------------------------------------------------------------------


def test_the_history_refusals_file_quotes_formula_like_values(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    src = tmp_path / "h.csv"
    src.write_text(HEADER + "\n" + R1.replace(",06010,", f',"{HYPERLINK.replace(chr(34), 2 * chr(34))}",', 1))
    options = history.HistoryImportOptions(errors_path=tmp_path / "h.errors.csv")
    summary = history.import_history(loaded, src, services, options)
    assert (summary.imported_cases, summary.refused_cases) == (0, 1), summary.to_text()
    refused = cells(read(tmp_path / "h.errors.csv"))
    assert rows_of(refused, "row", "field", "value")[0] == ["2", "class_code", "'" + HYPERLINK]
    assert column(refused, "reason")[0] == (
        "事件类别在 gbt47678 编码标准中不存在 / unknown event class for scheme gbt47678"
    )


# -- any layer as CSV (grids, components) ---------------------------------------------------------------------


def test_a_layer_written_as_csv_quotes_text_and_reads_back_unchanged(tmp_path: Path) -> None:
    layer = gpd.GeoDataFrame(
        {"code": ["001", "002", "003"], "name": [HYPERLINK, MINUS, "金水区"], "area": [-1.25, 2.0, 3.0]},
        geometry=[shapely.Point(113.0, 34.0), shapely.Point(113.1, 34.1), shapely.Point(113.2, 34.2)],
        crs=4490,
    )
    path, *_ = write_layer(layer, tmp_path / "g.csv")  # with its .csvt and .prj
    rows = cells(read(path))
    assert column(rows, "name") == ["'" + HYPERLINK, "'" + MINUS, "金水区"]
    assert column(rows, "area") == ["-1.25", "2.0", "3.0"]
    back = read_layer_any(path)
    assert back["name"].tolist() == layer["name"].tolist() and back["code"].tolist() == ["001", "002", "003"]
    assert back["area"].tolist() == [-1.25, 2.0, 3.0]
