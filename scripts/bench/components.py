"""Benchmark: import synthetic components over Z区, beside a plain COPY + UPDATE … FROM baseline; query latency.

    .venv/bin/python scripts/bench/components.py [--rows 1000000] [--queries 500]

Both sides read the same CSV (class_code, lon, lat, status) of ``--rows`` points inside the demo district:
- gisgrid: ``gisgrid components import`` (read, check every row, generate identifiers, assign unit grids,
  upsert, history) into the real ``components`` table with its indexes;
- baseline: ``COPY`` into a bare table, ``UPDATE … SET geom``, ``UPDATE … FROM unit_grids`` (grid
  assignment by ST_Intersects), then a GiST index — no checks, no identifiers, no history.
Then nearest-k (k=10) and 200 m radius latency over random points, at that table size.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_database, describe

from gisgrid.components_store import ComponentQuery, ImportOptions, catalogue_for, import_components
from gisgrid.constants import STORAGE_SRID
from gisgrid.demo import demo_components_points, make_demo_district
from gisgrid.settings import Settings
from gisgrid.storage.database import psycopg2_connection

CLASSES = ["01037", "03005", "01001", "01004", "01007", "02014", "04002", "03001"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    n = args.rows
    tmp = Path(tempfile.mkdtemp(prefix="gisgrid-bench-"))
    district = make_demo_district()
    lon, lat = demo_components_points(n, 42, district)
    rng = np.random.default_rng(42)
    frame = pd.DataFrame(
        {
            "class_code": rng.choice(CLASSES, n),
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "status": rng.choice(["完好", "破损"], n, p=[0.95, 0.05]),
        }
    )
    csv = tmp / "components.csv"
    frame.to_csv(csv, index=False)
    print(f"{n} synthetic components over Z区 → {csv} ({csv.stat().st_size / 1e6:.0f} MB)")

    with bench_database("gisgrid_bench_components", folder=tmp) as (engine, _url):
        catalogue = catalogue_for(Settings())
        t0 = time.perf_counter()
        summary = import_components(engine, csv, catalogue, ImportOptions(actor="bench"))
        t_import = time.perf_counter() - t0
        assert summary.inserted == n, summary.to_text()

        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE baseline (class_code text, lon float8, lat float8, status text, "
                    f"geom geometry(Point, {STORAGE_SRID}), unit_grid_code text)"
                )
            )
        raw = engine.raw_connection()
        try:
            t0 = time.perf_counter()
            with psycopg2_connection(raw).cursor() as cur, csv.open() as fh:
                cur.copy_expert("COPY baseline (class_code, lon, lat, status) FROM STDIN WITH (FORMAT csv, HEADER)", fh)
                cur.execute(f"UPDATE baseline SET geom = ST_SetSRID(ST_MakePoint(lon, lat), {STORAGE_SRID})")
                cur.execute(
                    "UPDATE baseline b SET unit_grid_code = g.code FROM unit_grids g "
                    "WHERE ST_Intersects(g.geom, b.geom)"
                )
                cur.execute("CREATE INDEX ON baseline USING gist (geom)")
            raw.commit()
            t_base = time.perf_counter() - t0
        finally:
            raw.close()

        with engine.connect() as conn:
            conn.execute(text("ANALYZE components"))
            agree = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT unit_grid_code, count(*) FROM components GROUP BY 1) a "
                    "FULL JOIN (SELECT unit_grid_code, count(*) FROM baseline GROUP BY 1) b USING (unit_grid_code) "
                    "WHERE a.count IS DISTINCT FROM b.count"
                )
            ).scalar_one()
        print(f"gisgrid import : {t_import:7.1f} s = {n / t_import:9.0f} rows/s  ({summary.to_text().splitlines()[0]})")
        print(f"baseline SQL   : {t_base:7.1f} s = {n / t_base:9.0f} rows/s  (COPY + UPDATE … FROM unit_grids + GiST)")
        print(f"ratio          : {t_import / t_base:7.2f}×   (goals: ≥ 20,000 rows/s and ≤ 2× the baseline)")
        print(f"grid assignment disagreements per grid between the two: {agree}")

        from gisgrid.components_store import query_components

        random.seed(1)
        idx = [random.randrange(n) for _ in range(args.queries)]
        nearest_ms, radius_ms, radius_hits = [], [], []
        with engine.connect() as conn:
            for i in idx[:20]:  # warm-up
                query_components(conn, ComponentQuery(near=(lon[i] + 1e-4, lat[i]), nearest=10))
            for i in idx:
                p = (float(lon[i]) + 1e-4, float(lat[i]))
                t0 = time.perf_counter()
                query_components(conn, ComponentQuery(near=p, nearest=10))
                nearest_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                _, hits = query_components(conn, ComponentQuery(near=p, radius_m=200, limit=100))
                radius_ms.append((time.perf_counter() - t0) * 1000)
                radius_hits.append(hits)
        print(f"nearest-10 at {n} rows: {describe(nearest_ms)}   (goal p95 ≤ 20 ms)")
        print(
            f"radius 200 m (count + first 100) at {n} rows: {describe(radius_ms)}; "
            f"median matches {int(np.median(radius_hits))}"
        )


if __name__ == "__main__":
    main()
