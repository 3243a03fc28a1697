"""Benchmark: cut the demo district's unit grids, side by side with plain PostGIS SQL.

    .venv/bin/python scripts/bench/grids.py [--repeat 5] [--boundaries FILE --src-datum gcj02 …]

Both sides start from the same community polygons (EPSG:4490) and end with cells in EPSG:4490:
- gisgrid: ``cut_unit_grids`` (square cells in EPSG:4547 aligned to the CRS origin, clipped, split parts
  exploded, slivers merged, 15-digit codes, back to 4490), in memory;
- SQL: ``ST_SquareGrid`` + ``ST_Intersection`` per community, no merging, no codes, transformed back to 4490
  and materialised in a temporary table (run on the embedded cluster or GISGRID_DATABASE_URL).
Prints the median of ``--repeat`` runs for each, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from sqlalchemy import text

from gisgrid.boundaries import BoundaryOptions, read_boundaries
from gisgrid.constants import STORAGE_SRID
from gisgrid.demo import make_demo_district
from gisgrid.grids.cutting import check_coverage, cut_unit_grids
from gisgrid.grids.store import hex_ewkb
from gisgrid.grids.workflows import lowest_units
from gisgrid.settings import Settings
from gisgrid.storage.database import (
    create_database_if_missing,
    drop_database,
    ensure_postgis,
    make_engine,
    prepare_database,
)

SQL_CUT = f"""
CREATE TEMP TABLE sql_cells AS
SELECT u.code, ST_Transform((ST_Dump(ST_Intersection(sq.geom, u.g))).geom, {STORAGE_SRID}) AS geom
FROM (SELECT code, ST_Transform(geom, :srid) AS g FROM bench_units) u
CROSS JOIN LATERAL ST_SquareGrid(:side, u.g) AS sq
WHERE ST_Intersects(sq.geom, u.g)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cell-area", type=float, default=10_000)
    ap.add_argument("--boundaries", type=Path, help="Use this boundary file instead of the demo district.")
    ap.add_argument("--src-datum", default=None)
    args = ap.parse_args()

    if args.boundaries:
        units = lowest_units(read_boundaries(args.boundaries, BoundaryOptions(src_datum=args.src_datum)).units)
        label = str(args.boundaries)
    else:
        all_units = make_demo_district()
        names = dict(zip(all_units["code"], all_units["name"], strict=True))
        units = lowest_units(all_units).copy()
        units["district_code"] = units["code"].str[:6]
        units["street_code"] = units["code"].str[:9]
        units["community_code"] = units["code"]
        units["district_name"] = units["district_code"].map(names)
        units["street_name"] = units["street_code"].map(names)
        units["community_name"] = units["name"]
        label = "demo district Z区"

    py_times = []
    cells = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        cells = cut_unit_grids(units, cell_area=args.cell_area)
        py_times.append(time.perf_counter() - t0)
    assert cells is not None
    srid = int(cells.attrs["metric_epsg"])
    cov = check_coverage(units, cells)

    settings = Settings()
    server = prepare_database(settings, echo=lambda _m: None, check=False, create=True)
    bench = server.set(database="gisgrid_bench_grids")
    drop_database(server, "gisgrid_bench_grids")
    create_database_if_missing(server, "gisgrid_bench_grids")
    engine = make_engine(bench)
    sql_times, sql_cells = [], 0
    try:
        ensure_postgis(engine)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE bench_units (code text, geom geometry(MultiPolygon, {STORAGE_SRID}))"))
            conn.execute(
                text("INSERT INTO bench_units VALUES (:c, ST_GeomFromEWKB(decode(:g, 'hex')))"),
                [{"c": c, "g": g} for c, g in zip(units["code"], hex_ewkb(units.geometry.to_numpy()), strict=True)],
            )
            conn.execute(text("SELECT ST_Transform(geom, :s) FROM bench_units LIMIT 1"), {"s": srid})  # warm PROJ
        for _ in range(args.repeat):
            with engine.begin() as conn:
                t0 = time.perf_counter()
                conn.execute(text(SQL_CUT), {"srid": srid, "side": args.cell_area**0.5})
                sql_times.append(time.perf_counter() - t0)
                sql_cells = conn.execute(text("SELECT count(*) FROM sql_cells")).scalar_one()
                conn.execute(text("DROP TABLE sql_cells"))
    finally:
        engine.dispose()
        drop_database(server, "gisgrid_bench_grids")

    area_km2 = cov.units_area_m2 / 1e6
    py, sql = statistics.median(py_times), statistics.median(sql_times)
    print(f"input: {label}: {len(units)} units, {area_km2:.1f} km², cell {args.cell_area:.0f} m², EPSG:{srid}")
    print(f"gisgrid cut_unit_grids : {py:7.3f} s  ({len(cells)} cells, slivers merged, coded)")
    print(f"PostGIS SquareGrid+Intersection : {sql:7.3f} s  ({sql_cells} pieces, no merging)")
    print(f"ratio gisgrid / SQL    : {py / sql:7.2f}×   (goal ≤ 1.5× and ≤ 5 s)")
    print(
        f"coverage: area difference {cov.area_diff_ratio * 100:.6f} %, overlap {cov.overlap_m2:.3f} m², "
        f"outside {cov.cells_outside_unit}, duplicate codes {cov.duplicate_codes}"
    )
    print(f"runs (s): gisgrid {[round(t, 3) for t in py_times]}, SQL {[round(t, 3) for t in sql_times]}")


if __name__ == "__main__":
    main()
