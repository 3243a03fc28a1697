"""Use cases behind the CLI and the demo: read → check → cut → store → export.

Each function takes an Engine (or none, for the file-only ``make``) and runs its writes in one
transaction, so a refusal half-way leaves the database as it was.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from gisgrid import cityfiles, export_fields
from gisgrid.boundaries import (
    LEVEL_ZH,
    NOISE_AREA_M2,
    STORAGE_CRS,
    BoundaryOptions,
    BoundarySet,
    check_recode,
    provisional,
    read_boundaries,
)
from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.grids import store
from gisgrid.grids.cutting import CoverageReport, check_coverage, cut_unit_grids, resolve_metric_crs
from gisgrid.grids.numbering import LISTED_CODES, CodeChanges, keep_codes
from gisgrid.grids.tiers import balance_report, group_tier3
from gisgrid.runfiles import RunFiles
from gisgrid.spreadsheet import refuse_excel
from gisgrid.storage import recode
from gisgrid.texts import bilingual
from gisgrid.vectorio import WITHIN_LENGTHS, WITHIN_LENGTHS_ZH, check_within, read_layer_any, write_layer

Weight = Literal["units", "components", "population"]

#: The grid kinds of an export, as its refusals name them in Chinese.
GRID_KIND_ZH = {"unit": "单元", "tier-1": "一级", "tier-2": "二级", "tier-3": "三级"}


def lowest_units(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Units that get unit grids: those with no child in the set (community, else street, else district)."""
    parents = set(units["parent_code"].dropna())
    return units[~units["code"].isin(parents)].reset_index(drop=True)


@dataclass
class MakeResult:
    cells: gpd.GeoDataFrame
    boundaries: BoundarySet
    coverage: CoverageReport
    written: list[Path] = field(default_factory=list)


def make_grids_from_file(
    path: Path,
    opts: BoundaryOptions,
    *,
    out: Path | None,
    cell_area: float = 10_000,
    crs: str = "auto",
    sliver: float = 0.3,
    fmt: str | None = None,
    encoding: str = "utf-8",
    out_crs: str | None = None,
    notes: list[str] | None = None,
) -> MakeResult:
    """``gisgrid grids make``: a boundary file in, a unit-grid file out, no database. The file's coordinates are
    lon/lat CGCS2000 (EPSG:4490) unless ``out_crs`` names another CRS (checked as ``grids export --crs`` is)."""
    bset = read_boundaries(path, opts)
    units = lowest_units(bset.units)
    cells = cut_unit_grids(units, cell_area=cell_area, crs=crs, sliver=sliver)
    coverage = check_coverage(units, cells)
    # Whoever receives the file must see which codes embed a part numbered here (--assign-codes), not official.
    cells["code_provisional"] = provisional(cells["code"], set(bset.units.loc[bset.units["code_assigned"], "code"]))
    lengths = export_fields.text_lengths("unit_grids")  # Shapefile field widths a standard gives
    written = (
        write_layer(
            cells,
            out,
            fmt=fmt,
            layer="unit_grids",
            crs=out_crs,
            encoding=encoding,
            text_lengths=lengths,
            row_label="code",
            notes=notes,
        )
        if out
        else []
    )
    return MakeResult(cells=cells, boundaries=bset, coverage=coverage, written=written)


@dataclass
class ImportResult:
    boundaries: BoundarySet
    metric_epsg: int
    summary: store.SaveSummary | None  # None on --dry-run
    #: Stored units whose code contains a part gisgrid numbered, after the import (None on --dry-run).
    provisional_stored: int | None = None


def import_boundaries(engine: Engine, path: Path, opts: BoundaryOptions, *, dry_run: bool = False) -> ImportResult:
    bset = read_boundaries(path, opts)
    nameless = bset.units.loc[bset.units["name"].isna(), "code"].tolist()
    if nameless:
        # A district synthesised from its streets has no name unless one is given; the database needs one.
        raise InvalidInput(
            f"{path.name}: district {', '.join(nameless)} has no name (the file holds only its streets): "
            "pass --district-name NAME",
            detail={"codes": nameless, "option": "--district-name"},
        )
    metric = resolve_metric_crs("auto", bset.units.geometry.to_numpy())
    epsg = int(metric.to_epsg() or 0)
    if dry_run:
        with engine.connect() as conn:
            # Still check parents and provisional look-alikes against the database, writing nothing.
            trans = conn.begin()
            try:
                _refuse_second_unit_on_provisional(conn, path, bset)
                _refuse_overlap_with_stored(conn, path, bset.units)
                store.save_admin_units(conn, bset.units, epsg)
            finally:
                trans.rollback()
        return ImportResult(bset, epsg, None)
    with engine.begin() as conn:
        # Another import may not store an overlapping unit between the checks and the write (the lock a recode takes).
        conn.execute(text("LOCK TABLE admin_units IN SHARE ROW EXCLUSIVE MODE"))
        _refuse_second_unit_on_provisional(conn, path, bset)
        _refuse_overlap_with_stored(conn, path, bset.units)
        summary = store.save_admin_units(conn, bset.units, epsg)
        store.rebuild_tiers_1_2(conn)
        provisional = store.count_provisional(conn)
    return ImportResult(bset, epsg, summary, provisional)


def _refuse_second_unit_on_provisional(conn: Connection, path: Path, bset: BoundarySet) -> None:
    """A unit under a new code covering the place of a stored unit with a provisional code is that unit's official
    code, most likely: storing it beside would put two units on one area (a report would be located in either), so
    the import is refused and points at ``gisgrid boundaries recode``, which renames the stored unit in place."""
    same = store.provisional_same_place(conn, bset.units)
    if not same:
        return
    shown = "; ".join(
        f"{s.code} {s.name} covers stored {s.stored_code} {s.stored_name} ({s.share:.1%} shared)" for s in same[:8]
    )
    more = f" and {len(same) - 8} more" if len(same) > 8 else ""
    commands = [f"gisgrid boundaries recode {s.stored_code} {s.code}" for s in same if s.stored_assigned]
    hint = (
        "if these are the official codes of those places, replace the provisional ones first ("
        + "; ".join(commands[:8])
        + ") and import again"
        if commands
        else "their street's code is provisional: recode the street first, then import again"
    )
    raise InvalidInput(
        f"{path.name}: {len(same)} unit(s) under a code not stored cover the place of a stored unit with a "
        f"临时编码 provisional code: {shown}{more}; storing them would put two units on one area. {hint}; "
        "nothing written",
        detail=[
            {
                "field": "code",
                "value": s.code,
                "stored_code": s.stored_code,
                "share": round(s.share, 4),
                "reason": "same place as a stored unit with a provisional code",
                "code": str(Reason.MATCHES_PROVISIONAL_UNIT),
            }
            for s in same
        ],
        reason=Reason.MATCHES_PROVISIONAL_UNIT,
    )


def _refuse_overlap_with_stored(conn: Connection, path: Path, units: gpd.GeoDataFrame) -> None:
    """Units of one level must not overlap: a point in both would be located in either (``store.unit_grid_at``
    takes the lower code), so a report or a component would silently go to the wrong 区/街道/社区. An imported unit
    overlapping a stored unit of its level under another code by more than ``NOISE_AREA_M2`` refuses the whole
    file, naming both units and the area; a re-import replacing stored codes is compared with the stored units it
    does not replace only (its own units are checked against each other by the topology report)."""
    found = store.overlapping_stored(conn, units, NOISE_AREA_M2)
    if not found:
        return
    shown = "; ".join(
        f"{o.code} {o.name} × stored {o.stored_code} {o.stored_name}: {o.area_m2:.1f} m²" for o in found[:8]
    )
    more = f" and {len(found) - 8} more" if len(found) > 8 else ""
    raise InvalidInput(
        f"{path.name}: {len(found)} overlap(s) above {NOISE_AREA_M2:g} m² with a stored unit of the same level "
        f"under another code: {shown}{more}; a point there would be located in either unit. Correct the boundaries "
        "(or, if it is the same place under a corrected code, replace a 临时编码 provisional code with gisgrid "
        "boundaries recode OLD NEW); nothing written",
        detail=[
            {
                "field": "code",
                "value": o.code,
                "stored_code": o.stored_code,
                "area_m2": round(o.area_m2, 1),
                "reason": "overlaps a stored unit of the same level",
                "code": str(Reason.OVERLAPS_STORED_UNIT),
            }
            for o in found
        ],
        reason=Reason.OVERLAPS_STORED_UNIT,
    )


@dataclass
class RecodeResult:
    old: str
    new: str
    level: str
    name: str
    counts: store.RecodeCounts
    dry_run: bool


def recode_unit(engine: Engine, old: str, new: str, *, dry_run: bool = False, actor: str = "gisgrid") -> RecodeResult:
    """``gisgrid boundaries recode``: replace the provisional code ``old`` (numbered by --assign-codes) by the
    official ``new`` everywhere it is stored (``store.recode_admin_code``), in one transaction; ``dry_run`` does
    it and rolls back, so its counts are the real ones. Refused, nothing written: ``old`` not stored
    (unit_not_found), not provisional (code_not_provisional: an official code is never rewritten), ``new`` not a
    code of the same level under the same parent (code_malformed, code_other_level, code_other_parent) or already
    in use (code_exists); the grids held beyond ``storage.recode.RECODE_LOCK_WAIT_S`` (grids_busy)."""

    def busy() -> Conflict:
        return Conflict(
            f"a lock the recode needs — the grids, or a case or component of the unit — was held by another "
            f"transaction (an import, a grid generation, an action?) for more than {recode.RECODE_LOCK_WAIT_S} s, "
            "or that transaction and the recode waited for each other; run the recode again when it has finished",
            reason=Reason.GRIDS_BUSY,
        )

    with recode.recode_transaction(engine, dry_run=dry_run, busy=busy) as conn:
        # No import or other recode may store ``new`` between the check and the rename.
        conn.execute(text("LOCK TABLE admin_units IN SHARE ROW EXCLUSIVE MODE"))
        if not dry_run:
            # Nobody may write codes read before the rename: a transaction that read the grids (a component's,
            # a case action's — they take the grids before their rows: store.read_grids_first) finishes first
            # or waits and reads them renamed, and a report read before it is not inserted (its write checks
            # its unit grid is still as read: _intake_write). Reads of the grids wait the seconds it takes.
            conn.execute(text("LOCK TABLE unit_grids, management_grids IN ACCESS EXCLUSIVE MODE"))
        unit = store.stored_unit(conn, old)
        if unit is None:
            raise NotFound(f"no stored unit has the code {old!r}", reason=Reason.UNIT_NOT_FOUND)
        if not unit["code_assigned"]:
            why = (
                "district codes are GB/T 2260 codes, never numbered"
                if unit["level"] == "district"
                else "its code was taken from the boundary file (official)"
            )
            street = old[:9]
            if unit["level"] == "community" and (store.stored_unit(conn, street) or {}).get("code_assigned"):
                why = f"only its street part {street} is provisional: recode the street {street}"
            raise InvalidInput(
                f"{old} ({unit['name']}, {unit['level']}) is not a 临时编码 provisional code: {why}; "
                "recode replaces only codes gisgrid numbered",
                reason=Reason.CODE_NOT_PROVISIONAL,
            )
        check_recode(old, unit["level"], new)
        used = store.code_prefix_in_use(conn, new)
        if used is not None:
            raise Conflict(
                f"new code {new} is already in use ({used}): a recode cannot merge two units",
                reason=Reason.CODE_EXISTS,
            )
        counts = store.recode_admin_code(conn, old, new, actor=actor)
    return RecodeResult(old, new, unit["level"], unit["name"], counts, dry_run)


def _grids_busy(what: str) -> Callable[[], Conflict]:
    def busy() -> Conflict:
        return Conflict(
            f"网格数据正被其他操作占用,请待其结束后重试 / a lock the {what} needs — the boundaries or the grids — was "
            f"held by another transaction (an import, a grid generation, an action?) for more than "
            f"{recode.RECODE_LOCK_WAIT_S} s, or the two waited for each other; run it again when that has finished",
            reason=Reason.GRIDS_BUSY,
        )

    return busy


def _lock_for_unit_edit(conn: Connection, *, dry_run: bool) -> None:
    """The locks of a recode (see :func:`recode_unit`): no import stores a unit, and (for real) no report, action,
    component write or grid generation reads or writes the grids, between the checks and the write."""
    conn.execute(text("LOCK TABLE admin_units IN SHARE ROW EXCLUSIVE MODE"))
    if not dry_run:
        conn.execute(text("LOCK TABLE unit_grids, management_grids IN ACCESS EXCLUSIVE MODE"))


def _stored_or_refused(conn: Connection, code: str) -> dict[str, object]:
    unit = store.stored_unit(conn, code)
    if unit is None:
        raise NotFound(
            f"没有编码为 {code} 的行政区划 / no stored unit has the code {code!r} (gisgrid boundaries list)",
            detail=[{"field": "code", "value": code, "reason": "not stored", "code": str(Reason.UNIT_NOT_FOUND)}],
            reason=Reason.UNIT_NOT_FOUND,
        )
    return unit


@dataclass
class ReplaceResult:
    code: str
    level: str
    name: str
    area_before_m2: float
    area_after_m2: float
    #: What lies in the unit: its unit grids were cut from the old boundary (re-cut with grids generate).
    references: store.UnitReferences
    #: (code, m²): the unit's area outside its parent, its children's outside it, above NOISE_AREA_M2.
    outside: list[tuple[str, float]]
    dry_run: bool
    #: The part of its parent the unit left and no sibling covers (a gap: no unit grid will be cut there), or None.
    gap: store.OpenedGap | None = None
    #: Whether the parent's boundary was the union of its children's before (as a district synthesised at import).
    parent_was_union: bool = False
    #: With reshape_parent: (parent code, area before, area after) of the parent made the union of its children.
    reshaped: tuple[str, float, float] | None = None
    #: With reshape_parent: the gap that leaves in the parent's own parent (a community's district), or None.
    parent_gap: store.OpenedGap | None = None


def replace_unit_boundary(
    engine: Engine, code: str, path: Path, bset: BoundarySet, *, dry_run: bool = False, reshape_parent: bool = False
) -> ReplaceResult:
    """``gisgrid boundaries replace CODE FILE``: the stored unit ``code`` takes the boundary the file gives under the
    same code (``bset``: the file ``path`` read by ``read_boundaries``, as an import reads it; its name, level,
    parent and code flags stay), its tier 1/2 grid with it, in one transaction; ``dry_run`` does it and rolls
    back. Refused, nothing written: the file holds no unit ``code``, or ``code`` is not stored (unit_not_found);
    the new boundary overlapping a stored unit of its level (overlaps_stored_unit); the locks not had in time
    (grids_busy).

    Part of the parent the old boundary covered and neither the new one nor a sibling does is a gap (``gap``): no
    unit grid is cut there, so no component or case can be placed there. ``reshape_parent`` makes the parent the
    union of its children afterwards (as an import synthesises a district its file lacks), so that the area leaves
    the parent too; otherwise the gap is reported and the parent kept (a sibling's boundary may be meant to cover
    it). An overlap with a sibling is refused above, as with any stored unit of the level."""
    mine = bset.units[bset.units["code"] == code].reset_index(drop=True)
    if mine.empty:
        shown = ", ".join(sorted(bset.units["code"]))
        raise InvalidInput(
            f"{path.name} 中没有编码为 {code} 的区划 / {path.name}: no unit has the code {code} (the file holds "
            f"{shown[:200]}); replace takes the unit's new boundary under its stored code",
            detail=[{"field": "code", "value": code, "reason": "not in the file", "code": str(Reason.UNIT_NOT_FOUND)}],
            reason=Reason.UNIT_NOT_FOUND,
        )
    new = mine.iloc[0]
    with recode.recode_transaction(engine, dry_run=dry_run, busy=_grids_busy("replace")) as conn:
        _lock_for_unit_edit(conn, dry_run=dry_run)
        unit = _stored_or_refused(conn, code)
        # The level and the parent go with the code (its length, its leading digits: read_boundaries checks both).
        _refuse_overlap_with_stored(conn, path, mine)
        parent = unit["parent_code"]
        was_union = bool(parent) and store.is_union_of_children(conn, str(parent), NOISE_AREA_M2)
        old = store.unit_geometry_ewkb(conn, code)
        before, after = store.replace_unit_geometry(conn, code, new.geometry, bset.units.crs)
        gap = store.opened_gap(conn, code, old, NOISE_AREA_M2)
        reshaped, parent_gap = None, None
        if reshape_parent and parent:
            old_parent = store.unit_geometry_ewkb(conn, str(parent))
            union = store.union_of_children(conn, str(parent))
            p_before, p_after = store.replace_unit_geometry(conn, str(parent), union, STORAGE_CRS)
            reshaped = (str(parent), p_before, p_after)
            parent_gap = store.opened_gap(conn, str(parent), old_parent, NOISE_AREA_M2)
            gap = None  # the area left the parent with it
        outside = store.nesting_gaps(conn, code, NOISE_AREA_M2)
        refs = store.unit_references(conn, code, str(unit["level"]))
    return ReplaceResult(
        code,
        str(unit["level"]),
        str(unit["name"]),
        before,
        after,
        refs,
        outside,
        dry_run,
        gap=gap,
        parent_was_union=was_union,
        reshaped=reshaped,
        parent_gap=parent_gap,
    )


@dataclass
class RemoveResult:
    code: str
    level: str
    name: str
    management_grids: int  # its own tier 1/2 grid
    dry_run: bool


def remove_unit(engine: Engine, code: str, *, dry_run: bool = False) -> RemoveResult:
    """``gisgrid boundaries remove CODE``: delete the stored unit and its own tier 1/2 grid, in one transaction;
    ``dry_run`` does it and rolls back. Refused, nothing written: ``code`` not stored (unit_not_found), or named by
    a child unit, a unit grid, a tier-3 grid, a case (finished ones too: the record of who answered for it) or a
    component (unit_in_use: how many of each and the first codes); the locks not had in time (grids_busy)."""
    with recode.recode_transaction(engine, dry_run=dry_run, busy=_grids_busy("removal")) as conn:
        _lock_for_unit_edit(conn, dry_run=dry_run)
        unit = _stored_or_refused(conn, code)
        level, name = str(unit["level"]), str(unit["name"])
        refs = store.unit_references(conn, code, level)
        if refs:
            raise Conflict(
                f"{LEVEL_ZH[level]} {code} {name} 仍被引用,不能删除:{refs.zh()};请先删除或移走这些记录"
                "(有案件的区划不能删除,可用 gisgrid boundaries replace 修改其边界) / "
                f"{level} {code} ({name}) is still referenced: {refs.en()}; it cannot be removed while anything "
                "names it (a unit with cases never can: change its boundary with gisgrid boundaries replace)",
                detail=[
                    {"field": "code", "value": code, "reason": "still named", "code": str(Reason.UNIT_IN_USE), **i}
                    for i in refs.items()
                ],
                reason=Reason.UNIT_IN_USE,
            )
        _refuse_forgetting_codes(conn, code, level, name)
        grids = store.remove_unit(conn, code)
    return RemoveResult(code, level, name, grids, dry_run)


def _refuse_forgetting_codes(conn: Connection, code: str, level: str, name: str) -> None:
    """Refuse to remove a unit that has issued unit-grid codes: its highest sequence number and its retired cells
    go with its row (ON DELETE CASCADE), so the unit imported again under its code would number from 001 and give
    codes that named other places (cases, components, the 考核 history) to new cells. A unit that was ever cut has
    a unit grid to this day — every cut gives each unit a cell, and :func:`remove_unit` refuses a unit a grid
    names first — unless child units came under it since: a regeneration then retires all its cells
    (:func:`generate_grids`), and this guards the rule "a retired code is never issued again" (``grids.numbering``)."""
    issued, retired = store.issued_grid_codes(conn, code)
    if not issued and not retired:
        return
    shown = "、".join(retired[:LISTED_CODES]) + ("、…" if len(retired) > LISTED_CODES else "")
    shown_en = ", ".join(retired[:LISTED_CODES]) + (", …" if len(retired) > LISTED_CODES else "")
    raise Conflict(
        f"{LEVEL_ZH[level]} {code} {name} 已发放单元网格编码(序号至 {issued:03d},停用 {len(retired)} 个"
        f"{f':{shown}' if retired else ''}),不能删除:删除会丢失这些编号记录,同一编码的区划再次导入时将从 001 起"
        "重新编号,把曾指其他地点的编码发给新网格;请用 gisgrid boundaries replace 修改其边界 / "
        f"{level} {code} ({name}) has issued unit-grid codes (sequence up to {issued:03d}, {len(retired)} retired"
        f"{f': {shown_en}' if retired else ''}); removing it would forget them, and a unit imported again under its "
        "code would number from 001, giving codes that named other places to new cells: change its boundary with "
        "gisgrid boundaries replace",
        detail=[
            {
                "field": "code",
                "value": code,
                "reason": "unit-grid codes issued",
                "code": str(Reason.UNIT_IN_USE),
                "table": "retired_unit_grids",
                "count": len(retired),
                "first": retired[:LISTED_CODES],
                "issued": issued,
            }
        ],
        reason=Reason.UNIT_IN_USE,
    )


@dataclass
class SupersededUnit:
    """A unit cut before child units were imported under it: no longer a lowest unit, so its unit grids were
    retired (codes remembered in ``retired_unit_grids``, never issued again) and deleted; its children's cells
    cover its place now."""

    code: str
    name: str
    level: str
    retired: list[str]  # its unit-grid codes, all retired (sorted)
    #: Its area in none of its children (m², on the ellipsoid): no unit grid is cut there any more.
    uncovered_m2: float = 0.0

    def to_text(self) -> str:
        """One line, zh-CN first and English beside; an area of it outside every child (above ``NOISE_AREA_M2``)
        is named: no cell covers it now."""
        n, first, last = len(self.retired), self.retired[0], self.retired[-1]
        span_zh = f"{first}…{last}" if n > 1 else first
        gap = self.uncovered_m2 > NOISE_AREA_M2
        return (
            f"{LEVEL_ZH[self.level]} {self.code} {self.name} 已有下级单元,不再切分单元网格:其 {n} 个单元网格"
            f"({span_zh})已停用并删除,编码不再分配,由下级单元的网格取代"
            + (f";其中 {self.uncovered_m2:.0f} 平方米不在任何下级单元内,该处已无单元网格,请补全下级单元" if gap else "")
            + f" / {self.level} {self.code} ({self.name}) has child units now and gets no unit grids of its own: its "
            f"{n} unit grid(s) ({first}{f' … {last}' if n > 1 else ''}) were retired and deleted, their codes never "
            "given again; its children's cells cover its place"
            + (
                f"; {self.uncovered_m2:.0f} m² of it lie in none of its children and have no unit grid now: import "
                "the missing child units"
                if gap
                else ""
            )
        )


def _superseded_units(conn: Connection, stored: gpd.GeoDataFrame, codes: list[str]) -> list[SupersededUnit]:
    """The units no longer lowest whose stored cells (``stored``) a regeneration retired, with their names."""
    if not codes:
        return []
    rows = conn.execute(
        text(
            """
            SELECT u.code, u.name, u.level, coalesce(ST_Area(ST_Difference(u.geom, (
                SELECT ST_Union(k.geom) FROM admin_units k WHERE k.parent_code = u.code))::geography), 0)
            FROM admin_units u WHERE u.code = ANY(:c)
            """
        ),
        {"c": codes},
    )
    units = {str(r[0]): (str(r[1]), str(r[2]), float(r[3])) for r in rows}
    cells = stored.groupby("unit_code")["code"].agg(sorted)
    return [SupersededUnit(c, *units[c][:2], [str(x) for x in cells[c]], units[c][2]) for c in codes]


@dataclass
class GenerateResult:
    cells: int
    units: int
    metric_epsg: int
    coverage: CoverageReport
    #: What happened to the tier-3 layer (None when no tier-3 grids were stored for these units).
    tier3: store.Tier3Change | None = None
    #: Units whose unit grids changed, so their tier-3 grids were regrouped (others kept their grouping as is).
    regrouped_units: list[str] = field(default_factory=list)
    #: The EPSG code each district was cut in (its stored zone).
    zones: dict[str, int] = field(default_factory=dict)
    #: Unit-grid codes kept, restored, newly issued and retired (``numbering.keep_codes``).
    codes: CodeChanges = field(default_factory=CodeChanges)
    #: Units cut before that have child units now: their unit grids were all retired (their codes are among
    #: ``codes.retired``) and deleted.
    superseded: list[SupersededUnit] = field(default_factory=list)


def generate_grids(
    engine: Engine,
    *,
    district: str | None = None,
    cell_area: float = 10_000,
    crs: str | None = None,
    sliver: float = 0.3,
    replace_tiers: bool = False,
) -> GenerateResult:
    """``gisgrid grids generate``: cut the loaded boundaries and store the cells (replacing old ones).

    A cell that comes back the same keeps its code, one equal to a cell retired before takes that code back, the
    others get codes never used in their unit before, and the codes of cells gone are retired and remembered
    (``numbering.keep_codes``, ``store.record_retired``; a first cut numbers in reading order). A unit that has
    unit grids but is no longer lowest (child units imported under it since its cut) has all its cells retired
    the same way and deleted (``GenerateResult.superseded``). The tier-3
    layer is carried over, not dropped (see ``_carry_tier3``); a change that would drop a tier-3 grid's
    网格长/网格员 is refused unless ``replace_tiers``."""
    with engine.connect() as conn:
        units = store.load_lowest_units(conn, district)
    cells, coverage, zones = _cut_by_zone(units, cell_area=cell_area, crs=crs, sliver=sliver)
    unit_codes = units["code"].tolist()
    with engine.begin() as conn:
        stored, issued, retired = store.stored_cells_to_number(conn, unit_codes, district)
        # Units cut before child units were imported under them: no longer lowest, their cells all retire.
        superseded = sorted(set(stored["unit_code"]) - set(unit_codes))
        cells, codes, high = keep_codes(cells, stored, issued, retired)
        replaced = unit_codes + superseded
        before = store.tier3_snapshot(conn, replaced)
        store.record_retired(conn, codes.retired, codes.restored)
        n = store.replace_unit_grids(conn, cells, replaced)
        store.record_issued_seq(conn, high)
        store.rebuild_tiers_1_2(conn)
        change, regrouped = _carry_tier3(conn, before, unit_codes, replace_tiers)
        store.follow_new_grids(conn)
        gone = _superseded_units(conn, stored, superseded)
    return GenerateResult(
        cells=n,
        units=len(units),
        metric_epsg=next(iter(zones.values())),
        coverage=coverage,
        tier3=change,
        regrouped_units=regrouped,
        zones=zones,
        codes=codes,
        superseded=gone,
    )


def _cut_by_zone(
    units: gpd.GeoDataFrame, *, cell_area: float, crs: str | None, sliver: float
) -> tuple[gpd.GeoDataFrame, CoverageReport, dict[str, int]]:
    """Cut every district in its own stored metric CRS (districts of one city may lie in different Gauss–Krüger
    zones), or all of them in ``crs`` when one is given. Returns the cells (EPSG:4490), the combined coverage and
    the EPSG code used per district."""
    units = units.assign(_zone=units["metric_srid"].fillna(0).astype(int) if crs is None else 0)
    parts: list[gpd.GeoDataFrame] = []
    reports: list[CoverageReport] = []
    zones: dict[str, int] = {}
    for zone, group in units.groupby("_zone", sort=True):  # one cut per zone, not per feature
        spec = crs or (f"EPSG:{zone}" if zone else "auto")
        part = cut_unit_grids(
            group.drop(columns=["metric_srid", "name", "level", "_zone"]), cell_area=cell_area, crs=spec, sliver=sliver
        )
        reports.append(check_coverage(group.drop(columns="_zone"), part))
        parts.append(part)
        zones.update(dict.fromkeys(sorted(set(group["district_code"])), int(part.attrs["metric_epsg"])))
    cells = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)
    cells = cells.sort_values("code", kind="stable", ignore_index=True)
    units_area = sum(r.units_area_m2 for r in reports)
    coverage = CoverageReport(
        units_area_m2=units_area,
        cells_area_m2=sum(r.cells_area_m2 for r in reports),
        union_area_m2=sum(r.union_area_m2 for r in reports),
        # Zones hold different districts, so their differences add up (weighted by area).
        area_diff_ratio=sum(r.area_diff_ratio * r.units_area_m2 for r in reports) / max(units_area, 1.0),
        overlap_m2=sum(r.overlap_m2 for r in reports),
        cells_outside_unit=sum(r.cells_outside_unit for r in reports),
        duplicate_codes=sum(r.duplicate_codes for r in reports),
        cell_area_m2=float(cell_area),
        cells=sum(r.cells for r in reports),
        cells_under=sum(r.cells_under for r in reports),
        cells_over=sum(r.cells_over for r in reports),
        smallest_m2=min((r.smallest_m2 for r in reports if r.cells), default=math.nan),
        largest_m2=max((r.largest_m2 for r in reports if r.cells), default=math.nan),
    )
    return cells, coverage, dict(sorted(zones.items()))


def _carry_tier3(
    conn: Connection, before: pd.DataFrame, unit_codes: list[str], replace_tiers: bool
) -> tuple[store.Tier3Change | None, list[str]]:
    """Give the freshly stored cells the tier-3 layer the old cells had (DB11/T 2157: grids are 相对稳定).

    A unit whose cells came back with the same codes and byte-identical geometry keeps its grouping exactly. A
    unit whose cells changed is regrouped into as many tier-3 grids as it had (the grouping is deterministic, so
    grids the change did not touch come back with the same code and area). ``save_tier3`` then matches every grid
    to the stored one by code and area, keeping staff where the grid is the same. Units that never had tier-3 grids
    are left alone, as before (``grids tiers`` builds them). A tiered unit that is no longer lowest (not in
    ``unit_codes``) hands its count on to the units cut in its place, and its own tier-3 grids are dropped."""
    had = before[before["tier3_code"].notna()]
    if had.empty:
        return None, []
    # A tiered unit no longer lowest (child units imported under it since its cut): its tier-3 grids go, and the
    # units cut in its place (those whose code starts with its code) are grouped into as many as it had between
    # them, by their share of its new cells.
    lowest = set(unit_codes)
    gone = sorted(set(had["unit_code"]) - lowest, key=len, reverse=True)
    heir_of = {u: next(g for g in gone if u.startswith(g)) for u in unit_codes if any(u.startswith(g) for g in gone)}
    tiered_units = sorted((set(had["unit_code"]) & lowest) | set(heir_of))
    hashes = store.unit_grid_hashes(conn, tiered_units)
    cells = store.load_unit_grids(conn)
    cells = cells[cells["code"].isin(hashes.index)].copy()
    cells["unit_code"] = cells["community_code"].fillna(cells["street_code"]).fillna(cells["district_code"])
    old = before.set_index("code")
    carried = (
        cells["code"].map(old["tier3_code"]).where(cells["code"].map(old["geom_hash"]).eq(cells["code"].map(hashes)))
    )
    old_cells = before.groupby("unit_code")["code"].agg(frozenset)
    new_cells = cells.groupby("unit_code")["code"].agg(frozenset)
    unchanged = new_cells.eq(old_cells.reindex(new_cells.index)) & carried.notna().groupby(cells["unit_code"]).all()
    regroup = sorted(unchanged.index[~unchanged.to_numpy()])
    groups = carried.copy()
    if regroup:
        part = cells[cells["unit_code"].isin(regroup)]
        # One weight per cell so that each community's total weight is its old number of tier-3 grids: with a
        # target weight of 1 every community gets back that many grids, balanced by cell count as before.
        k_old = had.groupby("unit_code")["tier3_code"].nunique()
        was = part["unit_code"].map(lambda u: heir_of.get(u, u))  # the unit whose tier-3 grids these cells had
        n_new = part.groupby(was)["code"].transform("size")
        weight = was.map(k_old) / n_new
        groups.loc[part.index] = group_tier3(part, weight, target_weight=1.0)
    change = store.save_tier3(conn, cells, groups, replace_staffed=replace_tiers, retiring=gone)
    return change, regroup


@dataclass
class TiersResult:
    tier1: int
    tier2: int
    tier3: int
    balance: pd.DataFrame
    change: store.Tier3Change = field(default_factory=store.Tier3Change)


def cell_weights(engine: Engine, cells: gpd.GeoDataFrame, weight: Weight, population: Path | None) -> pd.Series | None:
    """The weight of each of ``cells`` by which the tiers are grouped: None for ``units`` (each cell counts one),
    the stored components per cell, or the ``population`` file's (code, population; read as every city file)."""
    if weight == "units":
        return None
    if weight == "components":
        with engine.connect() as conn:
            counts: dict[str | None, int] = dict(
                conn.execute(text("SELECT unit_grid_code, count(*) FROM components GROUP BY unit_grid_code")).all()
            )
        return pd.Series([float(counts.get(c, 0)) for c in cells["code"]], index=cells.index)
    if population is None:
        raise InvalidInput("--weight population needs --population-file FILE.csv with columns code,population")
    refuse_excel(population, "a population file")
    # UTF-8 (BOM or not) or GB18030, rows numbered by their line, as every city file
    table = cityfiles.read_csv(population, "population file")
    if not {"code", "population"} <= set(table.header):
        raise InvalidInput(f"{population}: expected columns code,population; found {', '.join(table.header)}")
    codes = [row["code"] for _, row in table.rows]
    values = pd.to_numeric(pd.Series([row["population"] for _, row in table.rows], dtype=object), errors="coerce")
    bad = [line for (line, _), v in zip(table.rows, values, strict=True) if pd.isna(v) or v < 0]
    if bad:
        raise InvalidInput(f"{population}: row {bad[0]}: population must be a number ≥ 0")
    by_code = dict(zip(codes, values, strict=True))
    return pd.Series([float(by_code.get(c, 0.0)) for c in cells["code"]], index=cells.index)


def build_tiers(
    engine: Engine,
    *,
    target_size: float = 54,
    weight: Weight = "units",
    population: Path | None = None,
    district: str | None = None,
    replace_tiers: bool = False,
) -> TiersResult:
    """``gisgrid grids tiers``: tiers 1-2 from the units, tier 3 by grouping contiguous unit grids.

    Tier-3 grids that come back with the same code and area keep their 网格长/网格员; rebuilding or dropping a grid
    that has staff is refused unless ``replace_tiers``."""
    if target_size < 1:
        raise InvalidInput("--target-size must be at least 1 unit grid per tier-3 grid")
    with engine.connect() as conn:
        cells = store.load_unit_grids(conn, district)
    if cells.empty:
        raise InvalidInput("no unit grids are stored: run gisgrid grids generate first")
    w = cell_weights(engine, cells, weight, population)
    if w is None:
        groups = group_tier3(cells, target_size=target_size)
        balance = balance_report(cells, groups, None)
    else:
        mean = float(w.mean()) or 1.0
        groups = group_tier3(cells, w, target_weight=target_size * mean)
        balance = balance_report(cells, groups, w)
    with engine.begin() as conn:
        store.read_grids_first(conn)  # unit grids before tier grids, in the order a recode locks them
        t1, t2 = store.rebuild_tiers_1_2(conn)
        change = store.save_tier3(conn, cells, groups, replace_staffed=replace_tiers)
    return TiersResult(tier1=t1, tier2=t2, tier3=change.stored, balance=balance, change=change)


def find_field(columns: list[str], name: str, path: Path, option: str) -> str:
    """The column of a file that ``name`` means: the exact name, else the one column equal to it without regard to
    case (a Shapefile export writes CODE/NAME, the defaults are code/name: review38 D2). Two columns differing only
    by case are refused, since either could be meant."""
    if name in columns:
        return name
    same = [c for c in columns if c.casefold() == name.casefold()]
    if len(same) == 1:
        return same[0]
    if same:
        raise InvalidInput(
            f"{path}: field {name!r} matches {' and '.join(map(repr, same))}, which differ only by case; "
            f"name the one to use exactly with {option}",
            detail={"field": name, "matches": same, "option": option},
        )
    raise InvalidInput(
        f"{path}: field {name!r} not found; available: {', '.join(columns)} (choose one with {option})",
        detail={"field": name, "available": columns, "option": option},
    )


def import_tier3_file(
    engine: Engine,
    path: Path,
    *,
    layer: str | None = None,
    code_field: str = "code",
    name_field: str = "name",
    replace_tiers: bool = False,
    dry_run: bool = False,
) -> store.Tier3Change:
    """Tier-3 grids drawn by the city: each polygon takes the unit grids whose interior point it covers.

    Field names are matched exactly, else without regard to case (:func:`find_field`). ``dry_run``: every check and
    the change report, in a transaction rolled back, so nothing is written."""
    zones = read_layer_any(path, layer)
    if zones.empty:
        raise InvalidInput(f"{path}: the file has no features")
    columns = [str(c) for c in zones.columns if c != zones.geometry.name]
    code_col = find_field(columns, code_field, path, "--code-field")
    name_col = find_field(columns, name_field, path, "--name-field")
    zones = zones.to_crs(STORAGE_SRID) if zones.crs else zones.set_crs(STORAGE_SRID)
    codes = zones[code_col].astype(str)
    bad = [i for i, c in enumerate(codes) if not re.fullmatch(r"\d{14}", c)]
    if bad:
        raise InvalidInput(f"{path}: row {bad[0] + 1}: tier-3 code {codes.iloc[bad[0]]!r} must be 14 digits")
    _refuse_duplicate_tier3(path, codes.reset_index(drop=True), zones[name_col].reset_index(drop=True))
    with engine.connect() as conn:
        cells = store.load_unit_grids(conn)
    points = gpd.GeoDataFrame(
        cells[["code", "community_code"]], geometry=cells.geometry.representative_point(), crs=cells.crs
    )
    joined = gpd.sjoin(points, gpd.GeoDataFrame({"tier3": codes.to_numpy()}, geometry=zones.geometry), how="left")
    joined = joined[~joined.index.duplicated(keep="first")]
    groups = joined["tier3"]
    outside = groups.isna()
    if outside.all():
        raise InvalidInput(f"{path}: no unit grid falls inside any tier-3 polygon (wrong CRS or area?)")
    wrong_parent = groups.notna() & (groups.str[:12] != cells["community_code"].fillna(""))
    if wrong_parent.any():
        i = int(np.flatnonzero(wrong_parent.to_numpy())[0])
        raise InvalidInput(
            f"{path}: tier-3 grid {groups.iloc[i]} covers unit grid {cells['code'].iloc[i]} of another community; "
            "a tier-3 grid must lie inside one community and its code start with that community's 12 digits"
        )
    covered = cells[~outside]
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            store.read_grids_first(conn)  # unit grids before tier grids, in the order a recode locks them
            store.rebuild_tiers_1_2(conn)
            change = store.save_tier3(conn, covered, groups[~outside], replace_staffed=replace_tiers)
            if not dry_run:
                trans.commit()
        finally:
            if trans.is_active:  # a refusal, or --dry-run: what it would do is known, none of it is written
                trans.rollback()
    return change


def _refuse_duplicate_tier3(path: Path, codes: pd.Series, names: pd.Series) -> None:
    """A tier-3 code on several rows, refused naming the rows as a boundary file's duplicates are: 'in row 3 (…)
    and row 4 (…)' (rows counted from 1 in file order)."""
    dup = codes.duplicated(keep=False)
    if not dup.any():
        return

    def label(i: int) -> str:
        name = names.iloc[i]
        return f"row {i + 1}" + (f" ({name})" if isinstance(name, str) and name.strip() else "")

    groups = codes[dup].groupby(codes[dup], sort=True)
    parts = [f"{code} in " + " and ".join(label(int(i)) for i in g.index) for code, g in groups]
    more = f"; and {len(parts) - 5} more" if len(parts) > 5 else ""
    raise InvalidInput(
        f"{path}: tier-3 code appears more than once: {'; '.join(parts[:5])}{more}",
        detail={"duplicates": {str(c): (g.index + 1).tolist() for c, g in groups}},
    )


STAFF_ROLES = ("网格长", "网格员", "监督员", "专职网格员", "兼职网格员")


#: A refused staff file's message lists this many problems and counts the rest (all of them: --errors FILE).
STAFF_PROBLEMS_SHOWN = 20
STAFF_ERROR_COLUMNS = ("row", "field", "value", "reason")


def staff_changes(current: dict[str, list[dict[str, object]]], table: pd.DataFrame) -> list[StaffChange]:
    """What the file does to each grid it names: its rows replace the grid's list. People are matched by name (the
    n-th 王伟 of the file with the n-th of the grid); a matched person whose role or phone differs is changed."""
    out: list[StaffChange] = []
    for code, rows in table.groupby("grid_code", sort=True):
        new = [(str(r.name), str(r.role), str(r.phone or "")) for r in rows.itertuples(index=False)]
        old = [(str(m.get("name")), str(m.get("role")), str(m.get("phone") or "")) for m in current.get(code, [])]
        change = StaffChange(str(code))
        pending = list(old)
        for person in new:
            same = next((o for o in pending if o[0] == person[0]), None)
            if same is None:
                change.added.append(person)
            else:
                pending.remove(same)
                if same != person:
                    change.changed.append(person)
        change.removed = pending
        out.append(change)
    return out


@dataclass
class StaffChange:
    """One grid's staff before → after a staff file: (name, role, phone) of the people added, removed, changed."""

    code: str
    added: list[tuple[str, str, str]] = field(default_factory=list)
    removed: list[tuple[str, str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)

    def to_text(self) -> str:
        removed = ", ".join(f"{name} {role}" for name, role, _ in self.removed)
        return (
            f"grid {self.code}: {len(self.added)} added, {len(self.removed)} removed"
            + (f" ({removed})" if removed else "")
            + f", {len(self.changed)} changed"
        )


def staff_change_lines(changes: list[StaffChange]) -> list[str]:
    """One line per grid whose list changes, then the count of those the file leaves as they are."""
    lines = [c.to_text() for c in changes if c.added or c.removed or c.changed]
    same = len(changes) - len(lines)
    if same:
        lines.append(f"{same} grid(s) unchanged")
    return lines


def import_staff(  # noqa: C901
    engine: Engine,
    path: Path,
    *,
    errors_path: Path | None = None,
    notes: list[str] | None = None,
    replace: bool = False,
    dry_run: bool = False,
    report: Callable[[str], None] | None = None,
) -> int:
    """Grid leaders and staff from CSV (grid_code, role, name, phone); refused whole on any bad row, the message
    listing the first :data:`STAFF_PROBLEMS_SHOWN` problems, ``errors_path`` all of them (row, field, value,
    reason; :class:`~gisgrid.runfiles.RunFiles`: a clean file removes the previous run's, said in ``notes``).

    The file's rows become the whole list of each grid it names (grids it does not name keep theirs). What that
    changes per grid is handed to ``report`` before anything is written; a file that would remove someone is
    refused unless ``replace`` (a file meant to add one 网格员 silently dropped the grid's 网格长, review44 U1).
    ``dry_run``: checked and reported, nothing written. Returns the number of grids set (or that would be)."""
    refuse_excel(path, "a staff file")
    text, _ = cityfiles.read_text(path, "staff file")  # UTF-8 (BOM or not) or GB18030, as every city file
    try:
        table = cityfiles.read_frame(io.StringIO(text), path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"{path}: not a readable CSV file ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    need = {"grid_code", "role", "name", "phone"}
    if not need <= set(table.columns):
        raise InvalidInput(f"{path}: expected columns {', '.join(sorted(need))}; found {', '.join(table.columns)}")
    with engine.connect() as conn:
        known = store.management_grid_codes(conn)
    errors: list[dict[str, object]] = []

    def problem(row: int, fld: str, value: str, reason: str) -> None:
        errors.append({"row": row, "field": fld, "value": value, "reason": reason})

    for i, r in enumerate(table.itertuples(index=False), start=2):
        if r.grid_code not in known:
            problem(i, "grid_code", r.grid_code, f"no management grid {r.grid_code!r}")
        if r.role not in STAFF_ROLES:
            problem(i, "role", r.role, f"role must be one of {'/'.join(STAFF_ROLES)}")
        if not r.name.strip():
            problem(i, "name", r.name, "name is empty")
        if r.phone and not re.fullmatch(r"\+?[0-9][0-9\- ]{6,19}", r.phone):
            problem(i, "phone", r.phone, f"{r.phone!r} is not a phone number")
    with RunFiles() as files:
        files.stage(errors_path, pd.DataFrame(errors, columns=list(STAFF_ERROR_COLUMNS)), STAFF_ERROR_COLUMNS)
        if errors:
            files.publish()  # the outcome is known: nothing is imported
            lines = [f"row {e['row']} field {e['field']}: {e['reason']}" for e in errors[:STAFF_PROBLEMS_SHOWN]]
            if len(errors) > STAFF_PROBLEMS_SHOWN:
                where = f"all in {errors_path}" if errors_path is not None else "all with --errors FILE"
                lines.append(f"… and {len(errors) - STAFF_PROBLEMS_SHOWN} more problem(s) ({where})")
            elif errors_path is not None:
                lines.append(f"refusals written to {errors_path}")
            raise InvalidInput(
                f"{path}: {len(errors)} problem(s), nothing imported:\n" + "\n".join(lines), detail=errors
            )
        with engine.connect() as conn:  # committed below unless a dry run; refused or dry: rolled back
            # Read and write in one transaction, the rows locked: what is reported is what is replaced.
            changes = staff_changes(store.staff_of(conn, set(table["grid_code"]), lock=True), table)
            for line in staff_change_lines(changes):
                if report is not None:
                    report(line)
            removed = [c for c in changes if c.removed]
            if removed and not replace:
                people = sum(len(c.removed) for c in removed)
                raise InvalidInput(
                    f"文件会从 {len(removed)} 个网格移除 {people} 人(文件列出的网格,其人员名单以文件为准)/ "
                    f"the file would remove {people} person(s) from {len(removed)} grid(s) (the file's rows "
                    "replace the list of each grid it names): add their rows to keep them, or run again with "
                    "--replace to remove them; nothing written"
                )
            if dry_run:
                saved = len(changes)
            else:
                saved = store.save_staff(conn, table)
                conn.commit()
        files.publish()
    if notes is not None:
        notes.extend(files.removed)
    return saved


def export_grids(
    engine: Engine,
    out: Path,
    *,
    fmt: str | None = None,
    tier: str = "unit",
    crs: str | None = None,
    encoding: str = "utf-8",
    notes: list[str] | None = None,
    within: str | None = None,
) -> list[Path]:
    """Stored grids to a file (:func:`gisgrid.vectorio.write_layer`: ``--crs`` checked, its warning in ``notes``);
    ``within`` keeps those of one district, street, community, tier-3 grid or unit grid (by code)."""
    within = check_within(within)
    with engine.connect() as conn:
        gdf = store.load_unit_grids(conn) if tier == "unit" else store.load_management_grids(conn, int(tier))
    kind = "unit" if tier == "unit" else "tier-" + tier
    if gdf.empty:
        raise InvalidInput(f"no {kind} grids are stored; nothing to export")
    if within is not None:
        inside = (
            gdf["tier3_code"] == within if tier == "unit" and len(within) == 14 else gdf["code"].str.startswith(within)
        )
        gdf = gdf[inside]
        if gdf.empty:
            raise InvalidInput(
                bilingual(
                    f"{WITHIN_LENGTHS_ZH[len(within)]} {within} 内没有{GRID_KIND_ZH.get(kind, kind)}网格,未导出",
                    f"within: no {kind} grids in {WITHIN_LENGTHS[len(within)]} {within}; nothing to export",
                ),
                detail=[{"field": "within", "reason": "no grids there"}],
            )
    layer = "unit_grids" if tier == "unit" else f"tier{tier}_grids"
    lengths = export_fields.text_lengths(layer)  # Shapefile field widths: the codes' digits (review38 U10)
    return write_layer(
        gdf, out, fmt=fmt, layer=layer, crs=crs, encoding=encoding, text_lengths=lengths, row_label="code", notes=notes
    )
