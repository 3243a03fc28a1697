"""``gisgrid grids``: cut, store, group into tiers, export (万米单元网格 and 三级网格)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import get_args

import typer

from gisgrid.cli import boundary_options as bo
from gisgrid.cli.common import echo, settings_of
from gisgrid.constants import STORAGE_CRS
from gisgrid.errors import InvalidInput
from gisgrid.grids import workflows
from gisgrid.grids.cutting import SIZE_BAND, CoverageReport
from gisgrid.storage.database import make_engine, prepare_database
from gisgrid.vectorio import Format as VectorFormat

app = typer.Typer(help="Unit grids 万米单元网格 and management tiers 三级网格.", no_args_is_help=True)


#: The export formats, as gisgrid.vectorio names them (one list: a format added there is an option here).
Format = StrEnum("Format", {f: f for f in get_args(VectorFormat)})  # type: ignore[misc]


class Encoding(StrEnum):
    utf8 = "utf-8"
    gbk = "gbk"
    gb18030 = "gb18030"


class TierChoice(StrEnum):
    unit = "unit"
    t1 = "1"
    t2 = "2"
    t3 = "3"


class WeightChoice(StrEnum):
    units = "units"
    components = "components"
    population = "population"


CellAreaOpt = typer.Option(10_000.0, "--cell-area", help="Cell area in m² (side = √area).")
CrsOpt = typer.Option(
    "auto",
    "--crs",
    help="CRS the cells are cut in: auto (the CGCS2000 3° Gauss–Krüger zone of the district; UTM outside China) "
    "or EPSG:… of a conformal metric CRS near true scale there. Web Mercator (EPSG:3857), equal-area and other "
    "CRSs that distort scale by more than 0.3 % over the district are refused. area_m2 is always the true "
    "(ellipsoidal, CGCS2000) area.",
)
SliverOpt = typer.Option(
    0.3, "--sliver", help="Merge pieces smaller than this share of a cell (0 up to, not including, 1) into a neighbour."
)
ReplaceTiersOpt = typer.Option(
    False,
    "--replace-tiers",
    help="Allow rebuilding or dropping tier-3 grids that have a 网格长/网格员 (their staff assignments are cleared "
    "and listed). Without it such a change is refused and nothing is written.",
)


def _coverage_text(c: CoverageReport) -> str:
    return (
        f"coverage: units {c.units_area_m2 / 1e6:.4f} km², cells {c.cells_area_m2 / 1e6:.4f} km², "
        f"difference {c.area_diff_ratio * 100:.5f} %, overlap {c.overlap_m2:.3f} m², "
        f"cells outside their unit {c.cells_outside_unit}, duplicate codes {c.duplicate_codes}"
        + (f"\n{sizes_text(c)}" if c.cells else "")
    )


def sizes_text(c: CoverageReport) -> str:
    """The cell-size line of the coverage report the grids commands print (sizes against the nominal one)."""
    band = f"{SIZE_BAND:.0%}"
    return (
        f"cell sizes: {c.cells} cells of {c.cell_area_m2:,.0f} m² nominal; {c.cells_under} under it by more than "
        f"{band} (smallest {c.smallest_m2:,.0f} m²), {c.cells_over} over it by more than {band} (largest "
        f"{c.largest_m2:,.0f} m²): --sliver sets where a boundary piece is merged into its neighbour"
    )


@app.command()
def make(
    boundary_file: Path = typer.Argument(..., help="Boundary file (GeoJSON, Shapefile, GeoPackage…)."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output file: .gpkg (default), .geojson, .shp, .csv (WKT) or .xlsx (a table, a point inside each grid).",
    ),
    cell_area: float = CellAreaOpt,
    crs: str = CrsOpt,
    sliver: float = SliverOpt,
    fmt: Format | None = typer.Option(None, "--format", help="Override the format given by the extension."),
    encoding: Encoding = typer.Option(
        Encoding.utf8, "--encoding", help="Text encoding of a Shapefile output (input: --src-encoding)."
    ),
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
    src_encoding: str | None = bo.SrcEncodingOpt,
    district_code: str | None = bo.DistrictCodeOpt,
    district_name: str | None = bo.DistrictNameOpt,
    out_crs: str | None = typer.Option(
        None,
        "--out-crs",
        help="CRS of the coordinates written (default: EPSG:4490 lon/lat), e.g. the CGCS2000 3° Gauss–Krüger "
        "zone of the district; checked as grids export --crs is. (--crs is the CRS the cells are cut in.)",
    ),
) -> None:
    """Cut unit grids from a boundary file alone (no database) and write them for analysts."""
    bo.existing_file(boundary_file)
    notes: list[str] = []
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
        src_encoding,
    )
    result = workflows.make_grids_from_file(
        boundary_file,
        opts,
        out=out,
        cell_area=cell_area,
        crs=crs,
        sliver=sliver,
        fmt=fmt.value if fmt else None,
        encoding=encoding.value,
        out_crs=out_crs,
        notes=notes,
    )
    report = result.boundaries.report.to_text()
    if report:
        echo(report)
    echo(
        f"{len(result.cells)} unit grids in {result.cells['code'].str[:12].nunique()} units "
        f"(cut in EPSG:{result.cells.attrs['metric_epsg']})"
    )
    echo(_coverage_text(result.coverage))
    for note in notes:
        echo(f"warning: {note}")
    echo("wrote " + ", ".join(str(p) for p in result.written) + f" (coordinates in {out_crs or STORAGE_CRS})")


@app.command()
def generate(
    ctx: typer.Context,
    district: str | None = typer.Option(None, "--district", help="Only this district code (default: all)."),
    cell_area: float = CellAreaOpt,
    crs: str | None = typer.Option(
        None,
        "--crs",
        help="Default: each district in its stored metric CRS (its Gauss–Krüger zone). Web Mercator and CRSs "
        "distorting scale by more than 0.3 % are refused.",
    ),
    sliver: float = SliverOpt,
    replace_tiers: bool = ReplaceTiersOpt,
) -> None:
    """Cut unit grids for the boundaries loaded in the database and store them (replaces old cells).

    A cell that comes back the same keeps its code; the others get numbers their unit never issued before, and the
    codes of cells gone are retired, never reused: how many codes were kept, newly issued and retired is reported.
    A unit that gained child units since its cut gets no cells of its own any more: all its codes are retired and
    its cells deleted, which the run reports unit by unit.
    The tier-3 grids and their 网格长/网格员 are kept: units whose unit grids come back unchanged keep their
    grouping as is; changed units are regrouped into as many tier-3 grids as before, and a grid keeps its staff
    where it comes back with the same code and area. What was kept, rebuilt and dropped is reported."""
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    try:
        r = workflows.generate_grids(
            engine, district=district, cell_area=cell_area, crs=crs, sliver=sliver, replace_tiers=replace_tiers
        )
    finally:
        engine.dispose()
    epsgs = sorted(set(r.zones.values()))
    where = (
        f"EPSG:{epsgs[0]}"
        if len(epsgs) <= 1
        else "each district in its zone: " + ", ".join(f"{d} EPSG:{e}" for d, e in r.zones.items())
    )
    echo(f"stored {r.cells} unit grids for {r.units} units ({where})")
    echo(_coverage_text(r.coverage))
    echo(r.codes.to_text())
    for unit in r.superseded:
        echo(unit.to_text())
    if r.tier3 is None:
        echo("tier 3: none stored for these units (build them with gisgrid grids tiers)")
    else:
        regrouped = f"; regrouped units with changed unit grids: {len(r.regrouped_units)}" if r.regrouped_units else ""
        echo(r.tier3.to_text() + regrouped)


@app.command()
def tiers(
    ctx: typer.Context,
    target_size: float = typer.Option(54, "--target-size", help="Unit grids per tier-3 grid (on average)."),
    weight: WeightChoice = typer.Option(WeightChoice.units, "--weight", help="Balance tier-3 grids by this."),
    population_file: Path | None = typer.Option(None, "--population-file", help="CSV code,population."),
    from_file: Path | None = typer.Option(None, "--from-file", help="Import tier-3 polygons instead of building."),
    layer: str | None = bo.LayerOpt,
    code_field: str = typer.Option(
        "code",
        "--code-field",
        help="Tier-3 code field (14 digits) in --from-file; matched exactly, else without regard to case (CODE).",
    ),
    name_field: str = typer.Option(
        "name", "--name-field", help="Tier-3 name field in --from-file; matched as --code-field is (NAME)."
    ),
    replace_tiers: bool = ReplaceTiersOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="With --from-file: check the file and report what would change; write nothing."
    ),
) -> None:
    """Build the three management tiers: 1 = street, 2 = community, 3 = contiguous balanced groups."""
    if dry_run and from_file is None:
        raise InvalidInput("--dry-run applies to --from-file only")
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    try:
        if from_file is not None:
            bo.existing_file(from_file)
            change = workflows.import_tier3_file(
                engine,
                from_file,
                layer=layer,
                code_field=code_field,
                name_field=name_field,
                replace_tiers=replace_tiers,
                dry_run=dry_run,
            )
            echo(f"{'would store' if dry_run else 'stored'} {change.stored} tier-3 grids from {from_file}")
            echo(change.to_text())
            if dry_run:
                echo("dry run: nothing written")
            return
        r = workflows.build_tiers(
            engine,
            target_size=target_size,
            weight=weight.value,
            population=population_file,
            replace_tiers=replace_tiers,
        )
    finally:
        engine.dispose()
    b = r.balance
    echo(f"tier 1: {r.tier1} streets, tier 2: {r.tier2} communities, tier 3: {r.tier3} grids")
    echo(r.change.to_text())
    if len(b):
        echo(
            f"balance (max/mean weight per community): median {b['max_over_mean'].median():.3f}, "
            f"worst {b['max_over_mean'].max():.3f}; all contiguous: {bool(b['all_contiguous'].all())}"
        )


@app.command()
def staff(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV with grid_code, role (网格长/网格员…), name, phone."),
    errors: Path | None = typer.Option(
        None, "--errors", help="Write every problem of a refused file (row, field, value, reason)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Allow the file to remove people: those of a named grid the file does not list."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and show the changes per grid; write nothing."),
) -> None:
    """Import grid leaders (网格长) and staff for management grids. The file's rows become the whole list of each
    grid it names (other grids keep theirs); the changes per grid are shown first (added, removed — by name —,
    changed), and a file that would remove anyone is refused unless --replace. A file with a bad row is refused
    whole, its problems listed (the first 20; all with --errors FILE)."""
    bo.existing_file(file)
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    notes: list[str] = []
    try:
        n = workflows.import_staff(
            engine, file, errors_path=errors, notes=notes, replace=replace, dry_run=dry_run, report=echo
        )
    finally:
        engine.dispose()
    if dry_run:
        echo(f"dry run: staff would be set for {n} grids; nothing written")
    else:
        echo(f"staff set for {n} grids")
    for note in notes:
        echo(note)


@app.command()
def export(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Output path."),
    fmt: Format | None = typer.Option(
        None, "--format", help="gpkg, shp, geojson, csv or xlsx (default: by extension)."
    ),
    tier: TierChoice = typer.Option(TierChoice.unit, "--tier", help="unit, 1, 2 or 3."),
    crs: str | None = typer.Option(
        None,
        "--crs",
        help="Reproject (default: EPSG:4490 lon/lat), e.g. to the CGCS2000 3° Gauss–Krüger zone of the district. "
        "A CRS outside whose area of use the grids lie, or distorting scale by more than 0.3 % there, is refused; "
        "an old datum PROJ reaches only by a ballpark shift (Beijing 1954, Xian 1980) is warned about.",
    ),
    encoding: Encoding = typer.Option(
        Encoding.utf8,
        "--encoding",
        help="Shapefile encoding: utf-8, gbk or gb18030 (GBK's superset: rare place-name characters GBK lacks).",
    ),
    within: str | None = typer.Option(
        None,
        "--within",
        help="Only the grids of one district, street or community (its code: 6, 9, 12 digits), or of one tier-3 "
        "grid (14) — a street office's own grids.",
    ),
) -> None:
    """Export stored grids for analysts (Shapefile: ASCII field names ≤ 10 bytes, .cpg written)."""
    engine = make_engine(prepare_database(settings_of(ctx), echo))
    notes: list[str] = []
    try:
        files = workflows.export_grids(
            engine,
            out,
            fmt=fmt.value if fmt else None,
            tier=tier.value,
            crs=crs,
            encoding=encoding.value,
            notes=notes,
            within=within,
        )
    finally:
        engine.dispose()
    for note in notes:
        echo(f"warning: {note}")
    echo("wrote " + ", ".join(str(p) for p in files) + f" (coordinates in {crs or STORAGE_CRS})")
