"""Writes the Excel 97-2003 (.xls) samples the tests read. xlwt is not a dependency of gisgrid (it only writes,
and is no longer maintained): the .xls files are committed; run this with a Python that has ``xlwt`` to make them
again: ``python tests/excel_samples/make_samples.py``."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import xlwt

HERE = Path(__file__).parent
DEPT = "990000000000000012"
#: Three points of the tests' small district (tests.test_components_store.inside_points(3, seed=11)); 01999 is no
#: class, so the second row is refused.
COMPONENTS = [
    ("01037", DEPT, 113.67405659786911, 34.746625078721436),
    ("01999", DEPT, 113.67892488926925, 34.743817082781185),
    ("01037", DEPT, 113.68026729249357, 34.74282193883926),
]


def sheet_of(book: xlwt.Workbook, name: str, rows: list[list[object]]) -> None:
    sheet = book.add_sheet(name)
    dates = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    stamps = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, dt.datetime):
                sheet.write(r, c, value, stamps if value.time() != dt.time() else dates)
            else:
                sheet.write(r, c, value)


def main() -> None:
    book = xlwt.Workbook(encoding="utf-8")
    sheet_of(
        book,
        "部件",
        [
            ["class_code", " 经度 ", "lat", "CSRQ", "note", None, "note"],
            ["01037", 113.7, 34.75, dt.datetime(2024, 5, 6), 12.0, None, "a"],
            [None, None, None, None, None, None, None],
            ["01037", 113.25, 34, dt.datetime(2024, 5, 6, 8, 30), True, "x", None],
            ["990000000000000012", 9.9e17, None, None, None, None, None],
        ],
    )
    sheet_of(book, "井盖", [["b"], ["2"], ["3"]])
    book.save(HERE / "types.xls")

    book = xlwt.Workbook(encoding="utf-8")
    sheet_of(book, "部件", [["class_code", "ZGBMDM", "lon", "lat"], *[list(r) for r in COMPONENTS]])
    book.save(HERE / "components.xls")

    with (HERE.parents[1] / "data" / "demo" / "history-sample.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows: list[list[object]] = [list(r) for r in csv.reader(fh)]
    book = xlwt.Workbook(encoding="utf-8")
    sheet_of(book, "案件", rows)
    book.save(HERE / "history-sample.xls")

    # Cell kinds a city's sheet may hold: an error (#N/A, #DIV/0!), a number formatted as a date that is none.
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("部件")
    dates = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for c, name in enumerate(["class_code", "lookup", "ratio", "CSRQ", "BGRQ"]):
        sheet.write(0, c, name)
    sheet.write(1, 0, "01037")
    sheet.row(1).set_cell_error(1, 0x2A)  # #N/A (xlwt names it only by its code)
    sheet.row(1).set_cell_error(2, "#DIV/0!")
    sheet.write(1, 3, -1, dates)
    sheet.write(1, 4, 3e6, dates)  # past 9999-12-31
    book.save(HERE / "cells.xls")

    # A workbook of Mac Excel's 1904 date system: the same date is another serial number.
    book = xlwt.Workbook(encoding="utf-8")
    book.dates_1904 = True
    sheet_of(book, "部件", [["class_code", "CSRQ"], ["01037", dt.datetime(2025, 11, 3)]])
    book.save(HERE / "dates1904.xls")


if __name__ == "__main__":
    main()
