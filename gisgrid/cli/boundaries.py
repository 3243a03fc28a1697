"""``gisgrid boundaries``: import administrative boundaries (区 / 街道乡镇 / 社区村)."""

from __future__ import annotations

from pathlib import Path

import typer

from gisgrid.cli import boundary_options as bo
from gisgrid.cli.common import echo, settings_of
from gisgrid.grids.workflows import import_boundaries
from gisgrid.storage.database import make_engine, prepare_database

app = typer.Typer(help="Administrative boundaries 行政区划边界.", no_args_is_help=True)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="GeoJSON, Shapefile, GeoPackage — anything GDAL reads."),
    layer: str | None = bo.LayerOpt,
    level: bo.Level | None = bo.LevelOpt,
    code_field: str = bo.CodeFieldOpt,
    name_field: str = bo.NameFieldOpt,
    level_field: str = bo.LevelFieldOpt,
    parent_field: str = bo.ParentFieldOpt,
    parent_name_field: str = bo.ParentNameFieldOpt,
    assign_codes: bool = bo.AssignOpt,
    src_crs: str | None = bo.SrcCrsOpt,
    src_datum: bo.SrcDatum | None = bo.SrcDatumOpt,
    district_code: str | None = bo.DistrictCodeOpt,
    district_name: str | None = bo.DistrictNameOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; write nothing."),
) -> None:
    """Import boundaries: repair invalid geometry, report overlaps/gaps/outside areas in m², store."""
    bo.existing_file(file)
    opts = bo.boundary_options(
        layer,
        level,
        code_field,
        name_field,
        level_field,
        parent_field,
        parent_name_field,
        assign_codes,
        src_crs,
        src_datum,
        district_code,
        district_name,
    )
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    try:
        result = import_boundaries(engine, file, opts, dry_run=dry_run)
    finally:
        engine.dispose()
    units = result.boundaries.units
    counts = units["level"].value_counts().to_dict()
    echo(
        f"read {len(units)} units: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("district", "street", "community"))
        + f"; metric CRS EPSG:{result.metric_epsg}"
    )
    echo(result.boundaries.report.to_text())
    if result.summary is None:
        echo("dry run: nothing written")
    else:
        echo(f"stored: {result.summary.inserted} inserted, {result.summary.updated} updated")
