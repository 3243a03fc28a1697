"""``gisgrid boundaries``: import administrative boundaries (区 / 街道乡镇 / 社区村)."""

from __future__ import annotations

from pathlib import Path

import typer

from gisgrid.boundaries import LEVEL_ZH
from gisgrid.cli import boundary_options as bo
from gisgrid.cli.common import echo, run_recode, run_refusable, settings_of
from gisgrid.errors import GisgridError
from gisgrid.grids import store
from gisgrid.grids.workflows import import_boundaries, recode_unit, remove_unit, replace_unit_boundary
from gisgrid.settings import Settings
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
    src_encoding: str | None = bo.SrcEncodingOpt,
    district_code: str | None = bo.DistrictCodeOpt,
    district_name: str | None = bo.DistrictNameOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; write nothing."),
) -> None:
    """Import boundaries: repair invalid geometry, report overlaps/gaps/outside areas in m², store.

    A unit under a code not stored that covers the place of a stored unit with a 临时编码 provisional code (95 % of
    the area) is refused, nothing written: replace the provisional code with gisgrid boundaries recode OLD NEW
    first. So is a file with a unit overlapping a stored unit of its level under another code by more than 1 m² (a
    point there would be located in either): the message names both units and the area; --dry-run says the same."""
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
        src_encoding,
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
    if provisional:
        echo(f"{len(units)} unit(s) with provisional codes" if units else "no unit has a provisional code")
    else:
        echo(f"{len(units)} unit(s)")


def _provisional_text(unit: dict[str, object]) -> str:
    """Which part of the code was numbered: its own (临时编码), or only its street's (上级临时编码)."""
    if unit["code_assigned"]:
        return "临时编码 provisional"
    if unit["code_provisional"]:
        return f"上级临时编码 provisional street part {str(unit['code'])[:9]}"
    return ""


@app.command("recode")
def recode(
    ctx: typer.Context,
    old: str = typer.Argument(..., help="The 临时编码 provisional code gisgrid numbered (9 or 12 digits)."),
    new: str = typer.Argument(..., help="The official code: same level, same parent (street/district) part."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be rewritten; write nothing."),
) -> None:
    """Replace a 临时编码 provisional code (--assign-codes) with the official one, everywhere, in one transaction.

    Renames the unit and its children (a street's communities) and every code that contains it: tier grids (网格长/
    网格员 kept), unit grids, components (with a history entry), cases — finished ones too (结案/不予立案/作废):
    the provisional code was a placeholder for the same place, so their record follows it — and the 提级 records of
    the case log. The unit's code is official afterwards. Routing rules are data files and are not rewritten: a
    loaded rule that names the old code is warned about. Refused with exit status 3, nothing written: OLD not
    stored or not provisional (an official code is never rewritten), NEW not of OLD's level and parent, or NEW
    already in use. Several codes: recode a street before its communities (their codes start with the street's).
    """
    settings = settings_of(ctx)
    result = run_recode(settings, old, new, lambda engine: recode_unit(engine, old, new, dry_run=dry_run))
    what = "would rewrite" if dry_run else "rewrote"
    echo(f"{result.level} {result.name}: {old} → {new} (official); {what}:")
    echo(result.counts.to_text())
    _warn_rules(settings, old, new)
    if dry_run:
        echo("dry run: nothing written")


@app.command("replace")
def replace(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="The stored unit's code (gisgrid boundaries list)."),
    file: Path = typer.Argument(..., help="A boundary file holding the unit's new boundary under the same code."),
    layer: str | None = bo.LayerOpt,
    level: bo.Level | None = bo.LevelOpt,
    code_field: str = bo.CodeFieldOpt,
    name_field: str = bo.NameFieldOpt,
    level_field: str = bo.LevelFieldOpt,
    parent_field: str = bo.ParentFieldOpt,
    parent_name_field: str = bo.ParentNameFieldOpt,
    src_crs: str | None = bo.SrcCrsOpt,
    src_datum: bo.SrcDatum | None = bo.SrcDatumOpt,
    src_encoding: str | None = bo.SrcEncodingOpt,
    district_code: str | None = bo.DistrictCodeOpt,
    district_name: str | None = bo.DistrictNameOpt,
    reshape_parent: bool = typer.Option(
        False,
        "--reshape-parent",
        help="Make the parent the union of its children afterwards (as an import synthesises a district from its "
        "streets), so that an area the unit gives up leaves the parent too instead of becoming a gap in it.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; write nothing."),
) -> None:
    """Replace one stored unit's boundary by the file's unit of the same code, in one transaction.

    The file is read as boundaries import reads it (the same options); only the unit CODE is taken from it. Its
    name, level, parent and code flags stay; its tier 1/2 grid follows. Its unit grids were cut from the old
    boundary: re-cut them with gisgrid grids generate (cases and components in them are located again). Refused
    with exit status 3, nothing written: CODE not in the file or not stored (unit_not_found), the new boundary
    overlapping a stored unit of its level (overlaps_stored_unit). A file that cannot be read exits 1, as for
    boundaries import. Areas outside its parent, or of its children outside it, are warned about (as an import
    reports gaps and overlaps), not refused; so is a gap it opens in its parent — the part of the parent it gave up
    that no sibling covers, in m² with a point in it: no unit grid is cut there, and components and case reports
    there are refused. Cover it by replacing a sibling's boundary, or pass --reshape-parent to make the parent the
    union of its children (what an import does for a district the file lacks: the warning says when the parent's
    boundary was that union before). An overlap with a sibling is refused (overlaps_stored_unit)."""
    bo.existing_file(file)
    opts = bo.boundary_options(
        layer,
        level,
        code_field,
        name_field,
        level_field,
        parent_field,
        parent_name_field,
        False,
        src_crs,
        src_datum,
        district_code,
        district_name,
        src_encoding,
    )
    from gisgrid.boundaries import read_boundaries

    bset = read_boundaries(file, opts)  # a file that cannot be read is an import's error (exit 1), not a refusal
    r = run_refusable(
        settings_of(ctx),
        f"replace {code}",
        lambda engine: replace_unit_boundary(engine, code, file, bset, dry_run=dry_run, reshape_parent=reshape_parent),
    )
    what = "would be replaced" if dry_run else "replaced"
    echo(f"{r.level} {r.code} {r.name}: boundary {what}, area {r.area_before_m2:,.1f} m² → {r.area_after_m2:,.1f} m²")
    if reshape_parent and r.reshaped is None:
        typer.echo(f"warning: {r.code} has no parent unit: --reshape-parent changed nothing", err=True)
    if r.reshaped is not None:
        parent, p_before, p_after = r.reshaped
        echo(
            f"上级 {parent} 边界改为其下级的并集 / parent {parent}: boundary {what} by the union of its children, "
            f"area {p_before:,.1f} m² → {p_after:,.1f} m²"
        )
    for where, m2 in r.outside:  # reported, as an import reports gaps and overlaps: the analyst decides
        said = "outside its parent" if where == r.code else f"of its child {where} outside the new boundary"
        typer.echo(f"warning: {m2:,.1f} m² {said}", err=True)
    for gap in (r.gap, r.parent_gap):
        if gap is not None:
            typer.echo(_gap_warning(gap, r.parent_was_union and gap is r.gap), err=True)
    grids = r.references.unit_grids.count
    if grids:
        echo(
            f"its {grids} unit grid(s) were cut from the old boundary: re-cut them with gisgrid grids generate "
            f"--district {r.code[:6]} (the cases and components in them are located again)"
        )
    if dry_run:
        echo("dry run: nothing written")


_CHILDREN = {"district": ("街道", "street", "streets"), "street": ("社区", "community", "communities")}


def _gap_warning(gap: store.OpenedGap, was_union: bool) -> str:
    """A gap the replace opened in a parent: its area and a point in it, what it means and what to do."""
    zh_kind, en_kind, en_kinds = _CHILDREN.get(gap.parent_level, ("下级区划", "child", "children"))
    at = f"{gap.lon:.6f},{gap.lat:.6f}"
    level = LEVEL_ZH.get(gap.parent_level, "")
    if was_union:
        why_zh = f"该{level}边界原为其{zh_kind}的并集,与导入时由街道合成的区相同"
        why_en = f"its boundary was the union of its {en_kinds}, as an import synthesises a district from its streets"
    else:
        why_zh, why_en = "其边界保持不变", "its own boundary is kept"
    return (
        f"warning: 上级{level} {gap.parent_code} {gap.parent_name} 内有 {gap.area_m2:,.1f} m² "
        f"不属于任何{zh_kind}(缺口,约在 {at}):该处不会划分单元网格,部件导入与案件上报将被拒绝;请修改相邻{zh_kind}边界"
        f"以覆盖该处,或加 --reshape-parent 使上级边界改为其{zh_kind}的并集({why_zh}) / a gap of {gap.area_m2:,.1f} m² "
        f"in the parent {gap.parent_level} {gap.parent_code} is covered by no {en_kind} (near {at}): no unit grid is "
        f"cut there, and components and case reports there are refused; replace a neighbouring {en_kind}'s boundary "
        f"to cover it, or pass --reshape-parent to make the parent the union of its {en_kinds} ({why_en})"
    )


@app.command("remove")
def remove(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="The stored unit's code (gisgrid boundaries list)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check what names the unit; write nothing."),
) -> None:
    """Remove one stored unit (and its own tier 1/2 grid), in one transaction.

    Refused with exit status 3, nothing written: CODE not stored (unit_not_found), or still named by a child unit,
    a unit grid, a tier-3 grid, a case — finished ones too, their codes are the record of who answered for them —
    or a component (unit_in_use: the message says how many of each and the first codes). --dry-run checks the
    same and writes nothing."""
    r = run_refusable(settings_of(ctx), f"remove {code}", lambda engine: remove_unit(engine, code, dry_run=dry_run))
    grid = f" and its tier-{1 if r.level == 'street' else 2} grid" if r.management_grids else ""
    echo(f"{'would remove' if dry_run else 'removed'} {r.level} {r.code} {r.name}{grid}")
    if dry_run:
        echo("dry run: nothing written")


def _warn_rules(settings: Settings, old: str, new: str) -> None:
    from gisgrid.cases import load_rules

    try:
        rules = load_rules(settings)
    except GisgridError as exc:  # the recode stands; the rules' own problems are for the rules file
        typer.echo(f"warning: routing rules not checked for {old}: {exc.message}", err=True)
        return
    for r in rules.naming_area(old):
        named = r.area_prefix if r.area_prefix.startswith(old) else r.tier_grid
        typer.echo(
            f"warning: routing rule {r.rule_id} ({r.source}) names {named}, inside the old code {old}: it no longer "
            f"matches; edit it to {new}{named[len(old) :]} (rule files are not rewritten)",
            err=True,
        )
