"""Three management tiers (三级网格): tier 1 = street, tier 2 = community, tier 3 = groups of unit grids.

Tier-3 groups are contiguous sets of unit grids inside one community, balanced by a weight (cell count,
component count, …). Each gets a 14-digit code: the 12-digit community code + a 2-digit sequence
(CJ/T 349's community-grid sequence), numbered north→south, west→east.

Pure domain logic: no database, no I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisgrid.errors import InvalidInput

MAX_GROUPS_PER_COMMUNITY = 99
#: Rebalancing stops once every group weighs within this fraction of the community's mean.
BALANCE_TOLERANCE = 0.10


# --------------------------------------------------------------------------------------- public


def community_keys(cells: pd.DataFrame) -> pd.Series:
    """The 12-digit community key of every cell: community code, else street + 000, else district + 000000."""
    for col in ("district_code", "street_code", "community_code"):
        if col not in cells.columns:
            raise InvalidInput(f"cells lack the column {col}; pass the unit-grid table from cut_unit_grids")
    district = cells["district_code"].astype("string")
    street = cells["street_code"].astype("string")
    community = cells["community_code"].astype("string")
    key = community.fillna(street + "000").fillna(district + "000000")
    valid = key.str.fullmatch(r"[0-9]{12}").fillna(False).astype(bool)
    if not valid.all():
        bad = key.index[~valid.to_numpy()][0]
        raise InvalidInput(f"cell {bad}: cannot form a 12-digit community code from its district/street/community")
    return key.astype(object)


def adjacent_pairs(geoms: np.ndarray, key: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of cells sharing an edge of positive length (corner contact does not count).

    With ``key``, only pairs with equal keys are returned. Exact: the cut gives neighbouring cells
    identical vertices on shared edges, which stays true through reprojection.
    """
    a, b = shapely.STRtree(geoms).query(geoms)  # bounding-box candidates
    keep = a < b
    if key is not None:
        keep &= key[a] == key[b]
    a, b = a[keep], b[keep]
    # DE-9IM: the two boundaries meet in a line.
    edge = shapely.relate_pattern(geoms[a], geoms[b], "****1****")
    return a[edge], b[edge]


def group_tier3(
    cells: gpd.GeoDataFrame,
    weight: pd.Series | None = None,
    *,
    target_size: float | None = None,
    target_weight: float | None = None,
) -> pd.Series:
    """Group the unit grids of every community into contiguous, weight-balanced tier-3 groups.

    Per community k = max(1, round(total / target)) groups, where total is the cell count with
    ``target_size`` or the total weight with ``target_weight`` (weight defaults to 1 per cell). A
    community in several separate parts gets at least one group per part. Returns a Series on
    ``cells.index`` of 14-digit codes (community code + 01…99).
    """
    if (target_size is None) == (target_weight is None):
        raise InvalidInput("give exactly one of target_size (cells per group) or target_weight (weight per group)")
    target = float(target_size) if target_size is not None else float(target_weight or 0)
    if not (math.isfinite(target) and target > 0):
        raise InvalidInput(f"tier-3 target {target:g} must be a positive number")
    w = _weights(cells, weight)
    key = community_keys(cells).to_numpy()
    geoms = np.asarray(cells.geometry.values)
    a, b = adjacent_pairs(geoms, key)
    row, col = _grid_indices(cells, geoms)

    codes = np.empty(len(cells), dtype=object)
    for comm, members, pa, pb in _by_community(key, a, b):
        total = len(members) if target_size is not None else float(w[members].sum())
        k = max(1, math.floor(total / target + 0.5))
        if k > MAX_GROUPS_PER_COMMUNITY:
            raise InvalidInput(
                f"community {comm} would get {k} tier-3 groups, more than {MAX_GROUPS_PER_COMMUNITY}; "
                "use a larger target size/weight"
            )
        labels = _partition(len(members), pa, pb, w[members], row[members], col[members], k)
        n_groups = int(labels.max()) + 1
        if n_groups > MAX_GROUPS_PER_COMMUNITY:
            raise InvalidInput(
                f"community {comm} needs {n_groups} tier-3 groups (one per separate part at least), more than "
                f"{MAX_GROUPS_PER_COMMUNITY}; check its unit grids or use a larger target"
            )
        seq = _reading_sequence(labels, row[members], col[members])
        codes[members] = [f"{comm}{s:02d}" for s in seq]
    return pd.Series(codes, index=cells.index, name="tier3_code")


def balance_report(cells: gpd.GeoDataFrame, groups: pd.Series, weight: pd.Series | None = None) -> pd.DataFrame:
    """Per community: number of groups, min/mean/max group weight, max/mean, and whether all are contiguous."""
    w = _weights(cells, weight)
    key = community_keys(cells).to_numpy()
    if not groups.index.equals(cells.index):
        raise InvalidInput("groups must be indexed like cells (the Series group_tier3 returned)")
    labels = pd.factorize(groups.to_numpy())[0]
    geoms = np.asarray(cells.geometry.values)
    a, b = adjacent_pairs(geoms, key)
    same = labels[a] == labels[b]
    comp = _components(len(cells), a[same], b[same])
    per_group = pd.DataFrame({"community": key, "group": labels, "weight": w, "part": comp}).groupby(
        ["community", "group"], sort=True
    )
    stats = per_group.agg(weight=("weight", "sum"), parts=("part", "nunique")).reset_index()
    report = stats.groupby("community", sort=True).agg(
        groups=("group", "size"),
        min_weight=("weight", "min"),
        mean_weight=("weight", "mean"),
        max_weight=("weight", "max"),
        all_contiguous=("parts", lambda p: bool((p == 1).all())),
    )
    mean = report["mean_weight"].where(report["mean_weight"] > 0)
    report.insert(4, "max_over_mean", (report["max_weight"] / mean).fillna(1.0))
    return report.reset_index()


# ------------------------------------------------------------------------------------ inputs


def _weights(cells: pd.DataFrame, weight: pd.Series | None) -> np.ndarray:
    if weight is None:
        return np.ones(len(cells))
    if not isinstance(weight, pd.Series):
        raise InvalidInput("weight must be a pandas Series indexed like cells")
    w = weight.reindex(cells.index)
    values = pd.to_numeric(w, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise InvalidInput(
            f"weight for cell {cells.index[np.flatnonzero(bad)[0]]} is missing, negative or not a number; "
            "give every cell a weight >= 0"
        )
    return values


def _grid_indices(cells: pd.DataFrame, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid (row, col) of each cell: the cut's indices, else representative points snapped to a cell-size grid."""
    if "row" in cells.columns and "col" in cells.columns:
        return cells["row"].to_numpy(dtype=np.int64), cells["col"].to_numpy(dtype=np.int64)
    pts = shapely.point_on_surface(geoms)
    size = float(np.sqrt(np.median(shapely.area(geoms)))) or 1.0
    return (
        np.floor(shapely.get_y(pts) / size).astype(np.int64),
        np.floor(shapely.get_x(pts) / size).astype(np.int64),
    )


def _by_community(
    key: np.ndarray, a: np.ndarray, b: np.ndarray
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (community, member cell positions, local pair arrays) per community, in code order."""
    codes, inverse = np.unique(key.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(codes)))
    ends = np.r_[starts[1:], len(order)]
    local = np.empty(len(key), dtype=np.int64)
    pair_comm = inverse[a]
    pair_order = np.argsort(pair_comm, kind="stable")
    pstarts = np.searchsorted(pair_comm[pair_order], np.arange(len(codes)))
    pends = np.r_[pstarts[1:], len(pair_order)]
    for c, code in enumerate(codes):
        members = order[starts[c] : ends[c]]
        local[members] = np.arange(len(members))
        pairs = pair_order[pstarts[c] : pends[c]]
        yield str(code), members, local[a[pairs]], local[b[pairs]]


# --------------------------------------------------------------------------------- partition


def _partition(
    n: int, pa: np.ndarray, pb: np.ndarray, w: np.ndarray, row: np.ndarray, col: np.ndarray, k: int
) -> np.ndarray:
    """Group labels 0..g-1 for the n cells of one community (g >= k when it has separate parts)."""
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for i, j in zip(pa.tolist(), pb.tolist(), strict=True):
        nbrs[i].append(j)
        nbrs[j].append(i)
    comp = _components(n, pa, pb)
    parts = [np.flatnonzero(comp == c) for c in np.unique(comp)]
    ks = _allocate(k, [float(w[p].sum()) for p in parts], [len(p) for p in parts])
    labels = np.empty(n, dtype=np.int64)
    offset = 0
    for part, kp in zip(parts, ks, strict=True):
        labels[part] = _partition_part(part, kp, nbrs, w, col[part] - col[part].min(), row[part] - row[part].min())
        labels[part] += offset
        offset += kp
    return labels


def _partition_part(
    part: np.ndarray, k: int, nbrs: list[list[int]], w: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Labels 0..k-1 for one connected part: Hilbert chunks by weight, contiguity repair, rebalancing.

    Single-cell moves can get stuck (two heavy cells in one small group), so when the balance goal is
    missed the curve is replayed in its other orientations and the best outcome is kept.
    """
    best: tuple[float, int] | None = None
    best_labels = np.zeros(len(part), dtype=np.int64)
    mx, my = int(x.max()), int(y.max())
    for flip_x, flip_y, swap in _ORIENTATIONS:
        u = mx - x if flip_x else x
        v = my - y if flip_y else y
        if swap:
            u, v = v, u
        order = np.lexsort((np.arange(len(part)), _hilbert(u, v)))
        labels = np.full(len(w), -1, dtype=np.int64)
        labels[part[order]] = _cut_by_weight(w[part[order]], k)
        _repair(labels, part, nbrs, w)
        _rebalance(labels, part, nbrs, w, k)
        got = labels[part]
        load = np.bincount(got, weights=w[part], minlength=k)
        ratio = float(load.max() / load.mean()) if load.mean() > 0 else 1.0
        cut = sum(1 for c in part.tolist() for m in nbrs[c] if labels[m] != labels[c])  # compactness
        score = (round(ratio, 9), cut)
        if best is None or score < best:
            best, best_labels = score, got.copy()
        if ratio <= 1 + BALANCE_TOLERANCE or k == 1:
            break
    return best_labels


# (flip x, flip y, swap axes): the eight orientations of the Hilbert curve on the grid.
_ORIENTATIONS = [(fx, fy, sw) for sw in (False, True) for fx in (False, True) for fy in (False, True)]


def _allocate(k: int, weights: list[float], sizes: list[int]) -> list[int]:
    """Split k groups over separate parts by weight (largest remainder), at least 1 and at most size each."""
    total = sum(weights)
    share = [wt / total for wt in weights] if total > 0 else [s / sum(sizes) for s in sizes]
    ideal = [k * s for s in share]
    ks = [min(max(1, math.floor(x)), size) for x, size in zip(ideal, sizes, strict=True)]
    rest = sorted(range(len(ks)), key=lambda i: (-(ideal[i] - math.floor(ideal[i])), i))
    for i in rest:
        if sum(ks) >= k:
            break
        if ks[i] < sizes[i]:
            ks[i] += 1
    return ks


def _hilbert(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hilbert-curve position of non-negative integer grid points (vectorised xy2d)."""
    x = x.astype(np.int64).copy()
    y = y.astype(np.int64).copy()
    side = 1 << max(int(max(x.max(initial=0), y.max(initial=0))).bit_length(), 1)
    d = np.zeros(len(x), dtype=np.int64)
    s = side // 2
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x[flip] = side - 1 - x[flip]
        y[flip] = side - 1 - y[flip]
        swap = ~ry
        x[swap], y[swap] = y[swap], x[swap].copy()
        s //= 2
    return d


def _cut_by_weight(w: np.ndarray, k: int) -> np.ndarray:
    """Chunk labels 0..k-1 along an ordered sequence, cut where the cumulative weight is nearest j/k."""
    m = len(w)
    if k <= 1:
        return np.zeros(m, dtype=np.int64)
    vals = w if w.sum() > 0 else np.ones(m)
    cum = np.cumsum(vals)
    total = cum[-1]
    labels = np.empty(m, dtype=np.int64)
    start = 0
    for j in range(1, k):
        goal = total * j / k
        i = int(np.searchsorted(cum, goal))
        end = i if i == 0 or abs(cum[min(i, m - 1)] - goal) <= abs(cum[i - 1] - goal) else i - 1
        end = min(max(end, start), m - (k - j) - 1)  # every chunk keeps at least one cell
        labels[start : end + 1] = j - 1
        start = end + 1
    labels[start:] = k - 1
    return labels


def _repair(labels: np.ndarray, part: np.ndarray, nbrs: list[list[int]], w: np.ndarray) -> None:
    """Make every group contiguous: keep each group's heaviest piece, regrow the rest onto light neighbours."""
    free: set[int] = set()
    for g in np.unique(labels[part]).tolist():
        cells = part[labels[part] == g].tolist()
        pieces = _pieces(cells, labels, nbrs)
        if len(pieces) > 1:
            keep = max(pieces, key=lambda p: (float(w[p].sum()), len(p), -min(p)))
            free.update(c for p in pieces if p is not keep for c in p)
    if not free:
        return
    for c in free:
        labels[c] = -1
    load: dict[int, float] = {}
    for c in part.tolist():
        if labels[c] >= 0:
            load[int(labels[c])] = load.get(int(labels[c]), 0.0) + float(w[c])
    while free:
        # Cells next to an assigned group join the lightest such group, in a fixed order.
        ready = sorted(c for c in free if any(labels[n] >= 0 for n in nbrs[c]))
        if not ready:  # cannot happen in a connected part; never loop forever on bad input
            raise RuntimeError("tier-3 repair found cells cut off from every group")
        for c in ready:
            options = {int(labels[n]) for n in nbrs[c] if labels[n] >= 0}
            g = min(options, key=lambda x: (load[x], x))
            labels[c] = g
            load[g] += float(w[c])
            free.discard(c)


def _rebalance(labels: np.ndarray, part: np.ndarray, nbrs: list[list[int]], w: np.ndarray, k: int) -> None:
    """Move boundary cells from heavier to lighter adjacent groups while both stay contiguous.

    Every move makes the pair's weights strictly closer (the sum of squared weights drops), so this ends.
    """
    if k < 2:
        return
    members: dict[int, set[int]] = {g: set() for g in range(k)}
    for c in part.tolist():
        members[int(labels[c])].add(c)
    load = {g: float(w[list(cs)].sum()) for g, cs in members.items()}
    mean = sum(load.values()) / k
    if mean <= 0:
        return
    for _ in range(20 * len(part)):
        if all(abs(v - mean) <= BALANCE_TOLERANCE * mean for v in load.values()):
            return
        # Worst-off groups first; a move either sheds weight from a heavy group or feeds a light one.
        worst = sorted(load, key=lambda g: (-abs(load[g] - mean), g))
        if not any(_best_move(g, labels, members, load, nbrs, w, mean) for g in worst):
            return


def _best_move(
    g: int,
    labels: np.ndarray,
    members: dict[int, set[int]],
    load: dict[int, float],
    nbrs: list[list[int]],
    w: np.ndarray,
    mean: float,
) -> bool:
    """Try the most helpful single-cell move involving group g; apply it and return True if one is valid."""
    heavy = load[g] >= mean
    # (ragged edge, pair max after the move, tie-breaks, cell, from, to): prefer moving cells that stick
    # out of their group into the other, so groups stay compact while they even out.
    moves: list[tuple[int, float, float, int, int, int]] = []
    if heavy:  # g gives one of its boundary cells to a lighter neighbour
        for c in members[g]:
            wc = float(w[c])
            for h in {int(labels[n]) for n in nbrs[c]} - {g}:
                if wc > 0 and load[h] + wc < load[g]:
                    moves.append((_ragged(c, g, h, labels, nbrs), max(load[g] - wc, load[h] + wc), load[h], c, g, h))
    else:  # g takes a cell from a heavier neighbour
        for c in {n for m in members[g] for n in nbrs[m]} - members[g]:
            wc = float(w[c])
            h = int(labels[c])
            if wc > 0 and load[g] + wc < load[h]:
                moves.append((_ragged(c, h, g, labels, nbrs), max(load[h] - wc, load[g] + wc), -load[h], c, h, g))
    for *_, c, src, dst in sorted(moves):
        if len(members[src]) > 1 and _connected_without(members[src], c, nbrs):
            members[src].discard(c)
            members[dst].add(c)
            labels[c] = dst
            load[src] -= float(w[c])
            load[dst] += float(w[c])
            return True
    return False


def _ragged(c: int, src: int, dst: int, labels: np.ndarray, nbrs: list[list[int]]) -> int:
    """Neighbours of c kept in its group minus those in the receiving group (lower = sticks out more)."""
    return sum(1 for n in nbrs[c] if labels[n] == src) - sum(1 for n in nbrs[c] if labels[n] == dst)


def _connected_without(cells: set[int], removed: int, nbrs: list[list[int]]) -> bool:
    rest = cells - {removed}
    start = min(rest)
    seen = {start}
    queue = deque([start])
    while queue:
        for n in nbrs[queue.popleft()]:
            if n in rest and n not in seen:
                seen.add(n)
                queue.append(n)
    return len(seen) == len(rest)


def _pieces(cells: list[int], labels: np.ndarray, nbrs: list[list[int]]) -> list[list[int]]:
    """Connected pieces of one group (cells with the same label)."""
    g = labels[cells[0]]
    seen: set[int] = set()
    out: list[list[int]] = []
    for s in cells:
        if s in seen:
            continue
        seen.add(s)
        piece = [s]
        queue = deque([s])
        while queue:
            for n in nbrs[queue.popleft()]:
                if labels[n] == g and n not in seen:
                    seen.add(n)
                    piece.append(n)
                    queue.append(n)
        out.append(piece)
    return out


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label (smallest member index) per node, by vectorised min-label propagation."""
    label = np.arange(n)
    if len(a) == 0:
        return label
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]  # pointer jumping shortens long chains
        if np.array_equal(new, label):
            return label
        label = new


def _reading_sequence(labels: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """1-based sequence per cell: groups numbered north→south, then west→east, by their mean (row, col).

    The grid centroid rather than a geometric one: the numbering is then the same whether the cells
    are in lon/lat or metric coordinates (grid north is not true north away from the central meridian).
    """
    g = int(labels.max()) + 1
    count = np.bincount(labels, minlength=g)
    mean_row = np.bincount(labels, weights=row, minlength=g) / count
    mean_col = np.bincount(labels, weights=col, minlength=g) / count
    rank = np.empty(g, dtype=np.int64)
    rank[np.lexsort((mean_col, -mean_row))] = np.arange(1, g + 1)
    return rank[labels]
