"""Stable unit-grid codes across regenerations (DB11/T 2157: grids are kept 相对稳定).

Pure domain logic: frames in, frames out; no database.

A cut numbers each unit's cells in reading order (``cutting.cut_unit_grids``). When the unit already has unit
grids, that order would hand every code after the first change to another place. So here a new cell that is the
same piece of the same lattice cell as a stored one keeps the stored code: same unit, same (row, col), and
boundaries within ``SAME_CELL_DEG`` of each other both ways (the Hausdorff distance; exact for cells cut from the
same edges, and blind to a ring's start vertex). Every other new cell takes the next sequence numbers above the
highest the unit has ever issued, in reading order, so the code of a removed cell is never given to another
place: it is retired. A retired cell is remembered (``retired_unit_grids``, migration 0022): a new cell equal to
it by the same test (after a boundary edit is undone) takes its code back — restored — so cases and components
recorded under it name their place again. A unit cut for the first time (nothing stored, nothing issued) is
numbered 001… in reading order, as the cut gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisgrid.errors import InvalidInput
from gisgrid.grids.cutting import MAX_CELLS_PER_UNIT

#: Two pieces of one lattice cell whose boundaries lie within this many degrees of each other (~1 cm) are the same
#: cell. A re-cut of unchanged edges gives bitwise-identical pieces; this only absorbs a shifted ring start or
#: noise in the last digits.
SAME_CELL_DEG = 1e-7
#: Codes a summary lists of each kind (the counts are always whole).
LISTED_CODES = 5


@dataclass
class CodeChanges:
    """What a regeneration did to the unit-grid codes of the units it cut (codes sorted)."""

    kept: int = 0  # new cells that kept the code of the stored cell they equal
    issued: list[str] = field(default_factory=list)  # new cells given a code never used before
    retired: list[str] = field(default_factory=list)  # stored codes no new cell has: never issued again
    restored: list[str] = field(default_factory=list)  # retired codes taken back by a new cell equal to theirs

    def to_text(self) -> str:
        """One line, zh-CN first and English beside, naming the first ``LISTED_CODES`` codes restored, issued and
        retired."""

        def zh(codes: list[str]) -> str:
            more = f"等,另 {len(codes) - LISTED_CODES} 个" if len(codes) > LISTED_CODES else ""
            return f"({'、'.join(codes[:LISTED_CODES])}{more})" if codes else ""

        def en(codes: list[str]) -> str:
            more = f" and {len(codes) - LISTED_CODES} more" if len(codes) > LISTED_CODES else ""
            return f" ({', '.join(codes[:LISTED_CODES])}{more})" if codes else ""

        issued, retired, restored = self.issued, self.retired, self.restored
        return (
            f"单元网格编码:沿用 {self.kept} 个,恢复 {len(restored)} 个{zh(restored)},新编 {len(issued)} 个{zh(issued)},"
            f"停用 {len(retired)} 个{zh(retired)}"
            + ("(停用的编码不再分配给其他网格)" if retired else "")
            + f" / unit-grid codes: kept {self.kept}, restored {len(restored)}{en(restored)}, newly issued "
            f"{len(issued)}{en(issued)}, retired {len(retired)}{en(retired)}"
            + (" (a retired code is never given to another grid)" if retired else "")
        )


def unit_codes_of(cells: pd.DataFrame) -> pd.Series:
    """The lowest unit each cell was cut in: its community, else its street, else its district."""
    return cells["community_code"].fillna(cells["street_code"]).fillna(cells["district_code"])


def keep_codes(
    cells: gpd.GeoDataFrame,
    stored: gpd.GeoDataFrame,
    issued: pd.Series,
    retired: gpd.GeoDataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, CodeChanges, pd.Series]:
    """Give the freshly cut ``cells`` (EPSG:4490, numbered in reading order) the stored codes they keep.

    ``stored`` holds the stored cells of the units cut (code, unit_code, seq, row, col and geometry, EPSG:4490);
    ``issued`` the highest sequence number each unit has ever issued (indexed by unit code; missing is 0);
    ``retired`` the remembered retired cells of those units (the same columns; none when not given). A new cell
    keeps the code of the stored cell it equals; else it takes back the code of the retired cell it equals; else
    it is numbered above every number issued. Returns the cells renumbered and sorted by code, what changed, and
    the new highest sequence number issued per unit. A unit that would need a sequence number past
    ``MAX_CELLS_PER_UNIT`` is refused, naming it."""
    cells = cells.reset_index(drop=True)
    # A code is stored or retired, never both; should a stale row say otherwise, the stored cell has it.
    retired = stored.iloc[:0] if retired is None else retired[~retired["code"].isin(stored["code"])]
    unit = unit_codes_of(cells).to_numpy(dtype=object)
    reading = np.lexsort((cells["seq"].to_numpy(), unit))  # within each unit, the cut's reading order

    seq = np.zeros(len(cells), dtype=np.int64)
    kept = _match(cells, unit, np.ones(len(cells), dtype=bool), stored, seq)
    # Only cells no stored cell claimed look among the retired: a stored code stays where it is.
    restored = _match(cells, unit, ~kept, retired, seq)
    coded = kept | restored

    units = pd.Index(pd.unique(unit))
    highest = [issued.reindex(units)]
    for known in (stored, retired):
        seqs = pd.Series(known["seq"].to_numpy(dtype=np.int64), index=known["unit_code"].to_numpy(dtype=object))
        highest.append(seqs.groupby(level=0).max().reindex(units))
    floor = pd.concat(highest, axis=1).max(axis=1).fillna(0).astype(np.int64)
    fresh = reading[~coded[reading]]  # by unit, in reading order
    fresh_unit = unit[fresh]
    rank = pd.Series(fresh_unit).groupby(fresh_unit).cumcount().to_numpy() + 1
    seq[fresh] = floor.reindex(fresh_unit).to_numpy() + rank

    high = pd.Series(seq, index=unit).groupby(level=0).max().reindex(units)
    high = np.maximum(high, floor)
    _refuse_exhausted(cells, unit, seq, coded)

    prefix = cells["code"].astype(str).str[:12].to_numpy().astype(str)
    codes = np.char.add(prefix, np.char.zfill(seq.astype(str), 3)).astype(object)
    out = cells.assign(code=codes, seq=seq).sort_values("code", kind="stable", ignore_index=True)
    out.attrs = dict(cells.attrs)
    changes = CodeChanges(
        kept=int(kept.sum()),
        issued=sorted(codes[~coded].tolist()),
        retired=sorted(set(stored["code"]) - set(codes[kept])),
        restored=sorted(codes[restored].tolist()),
    )
    return out, changes, high.astype(np.int64)


def _match(
    cells: gpd.GeoDataFrame, unit: np.ndarray, open_: np.ndarray, known: gpd.GeoDataFrame, seq: np.ndarray
) -> np.ndarray:
    """Which of the ``open_`` new cells equal a cell of ``known`` (same unit, row and col, Hausdorff distance within
    ``SAME_CELL_DEG``), one to one; writes the matched cell's seq into ``seq``. The mask of cells matched."""
    i_open = np.flatnonzero(open_)
    new = pd.DataFrame(
        {
            "i": i_open,
            "unit": unit[i_open],
            "row": cells["row"].to_numpy()[i_open],
            "col": cells["col"].to_numpy()[i_open],
        }
    )
    old = pd.DataFrame(
        {
            "j": np.arange(len(known)),
            "unit": known["unit_code"].to_numpy(dtype=object),
            "row": known["row"].to_numpy(),
            "col": known["col"].to_numpy(),
        }
    )
    pairs = new.merge(old, on=["unit", "row", "col"])
    i, j = pairs["i"].to_numpy(dtype=np.int64), pairs["j"].to_numpy(dtype=np.int64)
    distance = shapely.hausdorff_distance(cells.geometry.to_numpy()[i], known.geometry.to_numpy()[j])
    same = distance <= SAME_CELL_DEG
    # Pieces of one cell are disjoint, so at most one known piece lies within ~1 cm of a new one; the closest
    # pair wins all the same, one to one.
    match = pd.DataFrame({"i": i[same], "j": j[same], "d": distance[same]}).sort_values(["d", "i", "j"])
    match = match.drop_duplicates("i").drop_duplicates("j")
    matched = np.zeros(len(cells), dtype=bool)
    seq[match["i"].to_numpy()] = known["seq"].to_numpy(dtype=np.int64)[match["j"].to_numpy()]
    matched[match["i"].to_numpy()] = True
    return matched


def _refuse_exhausted(cells: gpd.GeoDataFrame, unit: np.ndarray, seq: np.ndarray, kept: np.ndarray) -> None:
    over = np.flatnonzero(seq > MAX_CELLS_PER_UNIT)
    if len(over) == 0:
        return
    first = over[np.argmin(unit[over].astype(str))]
    code = str(unit[first])
    mine = unit == unit[first]
    row = cells.iloc[first]
    name = next((str(row[c]) for c in ("community_name", "street_name", "district_name") if _given(row.get(c))), "")
    label = f"{code}({name})" if name else code
    label_en = f"{code} ({name})" if name else code
    need, keep, cells_n = int(seq[mine].max()), int(kept[mine].sum()), int(mine.sum())
    raise InvalidInput(
        f"单元 {label}的单元网格序号将用到 {need},超过 3 位序号的上限 {MAX_CELLS_PER_UNIT}(已停用的编码不再分配);"
        f"未写入任何数据 / unit {label_en} would need unit-grid sequence number {need} ({keep} of its {cells_n} "
        f"cells keep their code; the codes of removed cells are never reused), past the {MAX_CELLS_PER_UNIT} a "
        "3-digit sequence allows; nothing was changed. Split the unit into smaller units under new codes (a street "
        "into its communities)",
        detail=[{"field": "unit_code", "value": code, "reason": f"sequence {need} > {MAX_CELLS_PER_UNIT}"}],
    )


def _given(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
