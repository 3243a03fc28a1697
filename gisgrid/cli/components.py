"""``gisgrid components``: import, export and query city components (部件)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import get_args

import numpy as np
import typer

from gisgrid import geodesy
from gisgrid.cli.boundary_options import SrcDatum
from gisgrid.cli.common import EXIT_FAILED, EXIT_REFUSED, check_option_point, echo, settings_of, stage_progress
from gisgrid.components_store import (
    ComponentQuery,
    ImportOptions,
    catalogue_for,
    export_components,
    import_components,
    query_components,
)
from gisgrid.constants import STORAGE_CRS
from gisgrid.errors import InvalidInput
from gisgrid.paging import MAX_LIMIT, MAX_OFFSET
from gisgrid.storage.database import make_engine, prepare_database
from gisgrid.vectorio import Format as VectorFormat

app = typer.Typer(help="City components 城市部件: import, export, query.", no_args_is_help=True)


class Scheme(StrEnum):
    gbt47678 = "gbt47678"
    cjt214 = "cjt214"


#: The export formats, as gisgrid.vectorio names them (one list: a format added there is an option here).
Format = StrEnum("Format", {f: f for f in get_args(VectorFormat)})  # type: ignore[misc]


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV, Excel .xlsx/.xls (a sheet), GeoJSON, Shapefile or GeoPackage."),
    scheme: Scheme = typer.Option(Scheme.gbt47678, "--scheme", help="gbt47678 (17-digit ids) or cjt214 (16)."),
    layer: str | None = typer.Option(
        None, "--layer", help="Layer of a multi-layer file; sheet of a workbook (default: the first)."
    ),
    src_crs: str | None = typer.Option(None, "--src-crs", help="CRS of projected x/y, e.g. EPSG:4547."),
    src_datum: SrcDatum | None = typer.Option(None, "--src-datum", help="wgs84, cgcs2000, gcj02 or bd09."),
    src_encoding: str | None = typer.Option(
        None,
        "--src-encoding",
        help="Text encoding of a CSV/Shapefile, e.g. gbk, big5. Default: CSV UTF-8 else GB18030; Shapefile its "
        ".cpg or DBF language driver, with neither UTF-8 if valid else GB18030 (noted).",
    ),
    lon_field: str | None = typer.Option(None, "--lon-field", help="Longitude column."),
    lat_field: str | None = typer.Option(None, "--lat-field", help="Latitude column."),
    x_field: str | None = typer.Option(None, "--x-field", help="Projected x column (with --src-crs)."),
    y_field: str | None = typer.Option(None, "--y-field", help="Projected y column (with --src-crs)."),
    class_field: str | None = typer.Option(None, "--class-field", help="Class code column."),
    district: str | None = typer.Option(None, "--district", help="District code when several are loaded."),
    errors: Path | None = typer.Option(
        None, "--errors", help="Write refused rows (row, field, value, reason); warnings beside it, NAME.warnings.csv."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row; write nothing."),
    all_or_nothing: bool = typer.Option(
        False, "--all-or-nothing", help="Refuse the whole file if any row fails (exit 1; also when every row fails)."
    ),
    actor: str = typer.Option("import", "--actor", help="Who is importing (kept in the history)."),
) -> None:
    """Bulk import: every row checked; refusals listed by row/field/reason; accepted rows upserted by id. Exit 0:
    every row imported; 3: some rows refused, the others imported; 1: nothing imported (the file refused).

    A component is refused by row when no unit grid covers its place (不在任何单元网格内 / covered by no unit grid:
    a gap between street boundaries, or grids not re-cut since a boundary change), as long as the district has unit
    grids; before any are generated, components are stored unlocated and gisgrid grids generate locates them."""
    if not file.exists():
        raise InvalidInput(f"{file} does not exist")
    settings = settings_of(ctx)
    catalogue = catalogue_for(settings)
    engine = make_engine(prepare_database(settings, echo))
    opts = ImportOptions(
        scheme=scheme.value,
        layer=layer,
        lon_field=lon_field,
        lat_field=lat_field,
        x_field=x_field,
        y_field=y_field,
        src_crs=src_crs,
        src_datum=src_datum.value if src_datum else None,
        src_encoding=src_encoding,
        class_field=class_field,
        district=district,
        errors_path=errors,
        dry_run=dry_run,
        all_or_nothing=all_or_nothing,
        actor=actor,
    )
    with stage_progress() as progress:
        try:
            summary = import_components(engine, file, catalogue, opts, progress=progress)
        finally:
            engine.dispose()
    echo(summary.to_text())
    # Exit 1 when the file was refused: in part under --all-or-nothing, or every row (nothing to import); 3 when
    # some rows were refused and the others imported, so that a script tells a partial import from a clean one.
    if summary.refused and (all_or_nothing or summary.inserted + summary.updated + summary.unchanged == 0):
        raise typer.Exit(EXIT_FAILED)
    if summary.refused:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def export(
    ctx: typer.Context,
    out: Path = typer.Option(
        ..., "--out", help="Output path (.gpkg, .shp, .geojson, .csv, .xlsx: a table for Excel, codes as text)."
    ),
    fmt: Format | None = typer.Option(None, "--format", help="Override the format given by the extension."),
    encoding: str = typer.Option(
        "utf-8",
        "--encoding",
        help="Shapefile encoding: utf-8, gbk or gb18030 (GBK's superset: rare place-name characters GBK lacks).",
    ),
    crs: str | None = typer.Option(
        None, "--crs", help="Reproject, checked as for grids export (the zone that covers the data; EPSG:4490 default)."
    ),
    within: str | None = typer.Option(
        None,
        "--within",
        help="Only the components of one district, street, community, tier-3 grid or unit grid (its code: 6, 9, "
        "12, 14 or 15 digits).",
    ),
) -> None:
    """Export components (Shapefile: ASCII fields ≤ 10 bytes, .cpg)."""
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    notes: list[str] = []
    try:
        with engine.connect() as conn:
            files = export_components(
                conn, out, fmt=fmt.value if fmt else None, encoding=encoding, crs=crs, notes=notes, within=within
            )
    finally:
        engine.dispose()
    for note in notes:
        echo(f"warning: {note}")
    echo("wrote " + ", ".join(str(p) for p in files) + f" (coordinates in {crs or STORAGE_CRS})")


@app.command("list")
def list_(
    ctx: typer.Context,
    bbox: str | None = typer.Option(None, "--bbox", help="minLon,minLat,maxLon,maxLat"),
    grid: str | None = typer.Option(None, "--grid", help="Unit grid code (15 digits)."),
    tier_grid: str | None = typer.Option(None, "--tier-grid", help="Tier 1/2/3 grid code (9/12/14 digits)."),
    lon: float | None = typer.Option(None, "--lon"),
    lat: float | None = typer.Option(None, "--lat"),
    datum: SrcDatum = typer.Option(SrcDatum.wgs84, "--datum"),
    radius: float | None = typer.Option(None, "--radius", help="Metres around --lon/--lat."),
    nearest: int | None = typer.Option(None, "--nearest", help="The k nearest to --lon/--lat, with distances."),
    class_code: str | None = typer.Option(None, "--class"),
    department: str | None = typer.Option(None, "--department"),
    status: str | None = typer.Option(None, "--status"),
    limit: int = typer.Option(20, "--limit", help=f"Components per page, 1–{MAX_LIMIT}."),
    offset: int = typer.Option(0, "--offset", help=f"Components to skip, 0–{MAX_OFFSET}."),
) -> None:
    """Query components; prints GeoJSON."""
    import json

    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"--limit: must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"--offset: must be between 0 and {MAX_OFFSET}, got {offset}")

    check_option_point(lon, lat)
    near = None
    if lon is not None and lat is not None:
        x, y = geodesy.to_storage(np.array([lon]), np.array([lat]), datum.value)
        near = (float(x[0]), float(y[0]))
    box = geodesy.parse_bbox(bbox, "--bbox") if bbox else None  # as the API and cases list parse it
    q = ComponentQuery(
        bbox=box,
        unit_grid=grid,
        tier_grid=tier_grid,
        near=near,
        radius_m=radius,
        nearest=nearest,
        class_code=class_code,
        department=department,
        status=status,
        limit=limit,
        offset=offset,
    )
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    try:
        with engine.connect() as conn:
            features, matched = query_components(conn, q)
    finally:
        engine.dispose()
    fc = {"type": "FeatureCollection", "numberMatched": matched, "features": features}
    echo(json.dumps(fc, ensure_ascii=False, indent=1, default=str))
