"""Benchmark: ``GET /evaluation/map`` over the demo district's 38,415 unit grids (review35 D6).

    .venv/bin/python scripts/bench/evaluation_map.py [--level unit_grid] [--indicator score] [--runs 5]

Uses the database ``GISGRID_DB_NAME`` (default ``bench_evaluation_map``), loading the demo district into it when
it has no unit grids (``gisgrid demo load``: Z区, 38,415 unit grids, 20,000 components, ~8,600 cases over the last
60 days; ~40 s). Then prints, for the month the demo's cases fall in:

* the first answer (the regions read, simplified and kept: ``maps.choropleth.region_shapes``) and the next
  ``--runs`` (median; the regions' fingerprint read, the kept geometry put in), each with its size;
* the parts: the evaluation alone (the region table), the regions' fingerprint alone.

Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from gisgrid.cases import load_services
from gisgrid.settings import Settings
from gisgrid.storage.database import database_url, make_engine
from maps import choropleth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", default="unit_grid")
    parser.add_argument("--indicator", default="score")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("GISGRID_DB_NAME", "bench_evaluation_map")
    settings = Settings()
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "gisgrid", "db", "up"], check=True, capture_output=True)
    engine = make_engine(database_url(settings))
    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
    if not grids:
        print("loading the demo district …", flush=True)
        subprocess.run([bin_dir / "gisgrid", "demo", "load"], check=True)
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(created_at) FROM cases")).scalar_one()
        grids = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
        cases = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    period = (newest.astimezone(dt.timezone(dt.timedelta(hours=8))) - dt.timedelta(days=15)).strftime("%Y-%m")
    services = load_services(settings)
    print(f"{grids:,} unit grids, {cases:,} cases; period {period}, level {args.level}, indicator {args.indicator}")

    def answer() -> tuple[float, int]:
        t = time.perf_counter()
        body = choropleth.indicator_map_json(
            engine, services, period=period, indicator=args.indicator, level=args.level
        )
        return time.perf_counter() - t, len(body.encode())

    choropleth._SHAPES.clear()
    first, size = answer()
    print(f"first answer (regions read and kept): {first:.2f} s, {size / 1e6:.1f} MB")
    times = [answer()[0] for _ in range(args.runs)]
    print(f"next answers (kept regions), median of {args.runs}: {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f})")  # fmt: skip
    t = time.perf_counter()
    choropleth.indicator_table(engine, services, period, args.level, args.indicator)
    print(f"  of which the evaluation alone: {time.perf_counter() - t:.2f} s")
    with engine.connect() as conn:
        t = time.perf_counter()
        choropleth.region_fingerprint(conn, args.level)
        print(f"  the regions' fingerprint alone: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
