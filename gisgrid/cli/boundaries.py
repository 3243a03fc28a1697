"""``gisgrid boundaries``: import administrative boundaries (区 / 街道乡镇 / 社区村)."""

from __future__ import annotations

from pathlib import Path

import typer

from gisgrid.cli import boundary_options as bo
from gisgrid.cli.common import echo, settings_of
from gisgrid.grids import store
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
        if result.provisional_stored:
            echo(
                f"临时编码 provisional: {result.provisional_stored} stored unit(s) have a code gisgrid numbered "
                "(theirs or their street's); list them with gisgrid boundaries list --provisional"
            )


@app.command("list")
def list_(
    ctx: typer.Context,
    level: bo.Level | None = typer.Option(None, "--level", help="Only units of this level."),
    provisional: bool = typer.Option(
        False, "--provisional", help="Only units whose code contains a part gisgrid numbered (--assign-codes)."
    ),
) -> None:
    """List the stored units: code, level, name, parent; 临时编码 provisional marks codes gisgrid numbered."""
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    try:
        with engine.connect() as conn:
            units = store.list_admin_units(conn, level=level.value if level else None, provisional_only=provisional)
    finally:
        engine.dispose()
    for u in units:
        echo("\t".join([u["code"], u["level"], u["name"], u["parent_code"] or "-", _provisional_text(u)]).rstrip())
    echo(f"{len(units)} unit(s)" + (", all with provisional codes" if provisional else ""))


def _provisional_text(unit: dict[str, object]) -> str:
    """Which part of the code was numbered: its own (临时编码), or only its street's (上级临时编码)."""
    if unit["code_assigned"]:
        return "临时编码 provisional"
    if unit["code_provisional"]:
        return f"上级临时编码 provisional street part {str(unit['code'])[:9]}"
    return ""
