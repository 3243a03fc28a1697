"""The cost of the 考核表 XLSX over HTTP (review54 F2): the unit grids' table of the current month on the loaded
district (``gisgrid demo load --components 2000 --history-days 5``), written as a workbook at 684 and at 5,000
rows (``XLSX_MAX_ROWS_HTTP``). Run: ``.venv/bin/python scripts/bench/evaluation_xlsx.py``."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import time

from gisgrid.cases import load_services
from gisgrid.evaluation_service import indicators, parse_period, write_xlsx
from gisgrid.settings import Settings
from gisgrid.storage.database import make_engine


def main() -> None:
    url = subprocess.check_output([sys.executable, "-m", "gisgrid", "db", "url"], text=True).strip()
    engine = make_engine(url)
    period = parse_period(dt.date.today().strftime("%Y-%m"))
    start = time.perf_counter()
    table = indicators(engine, load_services(Settings()), period, "region", "unit_grid")
    print(f"indicators: {len(table)} rows, {time.perf_counter() - start:.1f} s")
    for rows in (684, 5000):
        part = table.head(rows).copy()
        part.attrs = table.attrs
        start = time.perf_counter()
        buf = io.BytesIO()
        write_xlsx(part, buf, "unit grids", "region")
        took = time.perf_counter() - start
        print(f"xlsx: {rows} rows × {len(table.columns)} columns, {took:.1f} s, {len(buf.getvalue())} B")


if __name__ == "__main__":
    main()
