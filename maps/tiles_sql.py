"""Mapbox vector tiles straight from PostGIS (``ST_AsMVT``), one layer per request.

The router passes the storage SRID and the states without a running clock (no domain imports here).
Each layer's MVT name is its URL name, so a client styles ``vectorTileLayerStyles[<layer>]``.
The tile envelope is transformed into the storage SRID in ``WHERE`` so the GiST index on ``geom`` is used;
geometry goes to EPSG:3857 only for the rows found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from gisgrid.storage.prepared import positional

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
#: Cap on features per tile (tipg's default); a tile over it is cut, never an error.
MAX_FEATURES = 10_000
#: Lowest zoom with a tile of unit grids (and of components per unit grid); below it the tile is empty.
UNIT_GRIDS_MIN_ZOOM = 12
#: Polygons are simplified below this zoom, with a tolerance of half a screen pixel (256-px tiles).
SIMPLIFY_BELOW = 15
#: States whose case has no running clock (grey on the map) unless the router passes its own list.
NO_CLOCK_STATES: tuple[str, ...] = ("rejected", "voided", "closed", "suspended")
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Settings of every tile query: no parallel workers (a tile reads a few hundred rows through the GiST index; worker
#: start-up costs more than the whole query, and the planner picks parallel plans for the dense layers) and no JIT
#: (compiling those plans costs more than running them). A pool that serves only tiles sets them per session.
TILE_SESSION_SETTINGS = {"max_parallel_workers_per_gather": "0", "jit": "off"}
#: Half the EPSG:3857 world width in metres.
_WORLD_HALF = 20037508.342789244


class AsyncPool(Protocol):
    """What the async fetch needs of a pool (asyncpg's ``Pool``)."""

    async def fetchval(self, query: str, *args: object) -> Any: ...


class TileNotFound(LookupError):
    """Unknown layer or a z/x/y outside the tile matrix: the router answers 404."""


@dataclass(frozen=True)
class Layer:
    name: str
    table: str
    columns: str  # select list over alias ``t``
    where: str = "TRUE"  # extra condition over alias ``t``
    polygons: bool = True
    min_zoom: int = 0  # below it the tile is empty (no query)
    id_column: str | None = None  # an integer column used as the MVT feature id
    simplify: bool = True  # polygons simplified below SIMPLIFY_BELOW (not unit grids: mostly 5-point boxes)
    max_age: int = 60  # Cache-Control seconds
    # Grids may sit in a shared (proxy, gateway) cache; the operational layers — cases, components — only in the
    # browser's own ("private"): a cache in front of the login proxy must not hand them to whoever asks.
    shared_cache: bool = True
    # A tile over the cap keeps the features matching ``keep_first`` (a condition over alias ``t``) first, in
    # ``keep_order``; ``draw_order`` (over the select list, alias ``q``) orders the tile's features, later on top.
    keep_first: str | None = None
    keep_order: str = "t.id"
    draw_order: str | None = None


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        # ~100 m cells: below z12 a tile of a city district holds tens of thousands, over the feature cap (a grid
        # drawn with holes, ~0.5 MB a tile) and a few pixels each — the tiers are the overview there.
        Layer(
            "unit_grids",
            "unit_grids",
            "t.code, t.street_code, t.community_code, t.tier3_code",
            simplify=False,
            min_zoom=UNIT_GRIDS_MIN_ZOOM,
        ),
        Layer("tier1", "management_grids", "t.code, t.tier, t.name", where="t.tier = 1"),
        Layer("tier2", "management_grids", "t.code, t.tier, t.name, t.parent_code", where="t.tier = 2"),
        Layer("tier3", "management_grids", "t.code, t.tier, t.name, t.parent_code", where="t.tier = 3"),
        Layer(
            "components",
            "components",
            "t.id, t.class_code, t.status, t.name",
            where="GeometryType(t.geom) <> 'GEOMETRYCOLLECTION'",
            polygons=False,
            min_zoom=13,
            max_age=60,
            shared_cache=False,
        ),
        # Components per unit grid (kept by triggers, migration 0004): the low-zoom component layer.
        # One point per unit grid: below z12 over the cap as the unit grids are.
        Layer(
            "component_cells",
            "component_cells",
            "t.unit_grid_code AS id, t.n",
            polygons=False,
            max_age=60,
            min_zoom=UNIT_GRIDS_MIN_ZOOM,
            shared_cache=False,
        ),
        Layer(
            "cases",
            "cases",
            # Colour-ready: ``clock`` false → grey; due_epoch < now → red; the working-time green/yellow split
            # needs the calendar, so the console takes ``light`` from /cases (Realtime) instead.
            "t.id, t.id AS fid, t.state, t.class_code, "
            """to_char(t.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS due_at, """
            "extract(epoch FROM t.due_at)::bigint AS due_epoch, "
            "(t.due_at IS NOT NULL AND t.state <> ALL(CAST(:no_clock AS text[]))) AS clock",
            polygons=False,
            id_column="fid",
            min_zoom=12,  # below, a tile holds a district's every case ever reported: the heat map is the overview
            max_age=10,
            shared_cache=False,
            # A capped tile keeps the cases with a running clock first, the most overdue first; drawn on top.
            keep_first="t.due_at IS NOT NULL AND t.state <> ALL(CAST(:no_clock AS text[]))",
            keep_order="t.due_at, t.id DESC",
            draw_order="q.clock, q.due_epoch DESC NULLS FIRST, q.id",
        ),
    )
}


def parse_tile(layer: str, z: str, x: str, y: str) -> tuple[Layer, int, int, int]:
    """Check a tile address from the URL; ``TileNotFound`` names what is wrong."""
    spec = LAYERS.get(layer)
    if spec is None:
        raise TileNotFound(f"no tile layer {layer!r}; layers: {', '.join(LAYERS)}")
    if not all(v.isascii() and v.isdigit() and len(v) <= 8 for v in (z, x, y)):  # no signs, spaces, "1_0"
        raise TileNotFound(f"tile {z}/{x}/{y}: z, x and y must be whole numbers")
    zi, xi, yi = int(z), int(x), int(y)
    if not 0 <= zi <= MAX_ZOOM:
        raise TileNotFound(f"tile {z}/{x}/{y}: zoom must be 0–{MAX_ZOOM}")
    if not (xi < 2**zi and yi < 2**zi):
        raise TileNotFound(f"tile {z}/{x}/{y}: x and y must be below 2^z = {2**zi}")
    return spec, zi, xi, yi


@lru_cache(maxsize=512)
def tile_sql(spec: Layer, z: int, srid: int) -> str:
    """The SQL of one layer's tile at zoom ``z`` (binds :z, :x, :y, :margin, :cap, :tol, :no_clock); made once per
    layer and zoom, and the same string object each time, so the statement caches below hash it once."""
    geom = "ST_Transform(t.geom, 3857)"
    if spec.polygons and spec.simplify and z < SIMPLIFY_BELOW:
        # Douglas–Peucker keeping collapsed parts (a small grid stays a dot, not a gap): 5× faster than the
        # topology-preserving variant on a z12 tier-3 tile (6 against 29 ms, the same 9.2 KB tile), and either
        # simplifies each polygon alone; ST_AsMVTGeom makes the result valid.
        geom = f"ST_Simplify({geom}, :tol, true)"
    id_arg = f", '{spec.id_column}'" if spec.id_column else ""
    draw = f" ORDER BY {spec.draw_order}" if spec.draw_order else ""

    envelope = f"t.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), {int(srid)})"
    mvt_geom = f"ST_AsMVTGeom({geom}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom"

    def features(condition: str) -> str:
        return f"""
            SELECT * FROM (
                SELECT {spec.columns}, {mvt_geom}
                FROM {spec.table} t
                WHERE {envelope} AND {spec.where} AND {condition}
            ) r
            WHERE r.geom IS NOT NULL  -- before the cap: features clipped away must not take places in it
            LIMIT :cap"""

    if spec.keep_first is None:
        chosen = features("TRUE")
    else:
        # The features kept first are chosen on the table's own columns (a top-N sort) before any geometry is
        # made: sorting made features made an overview tile of 100,000 cases 4–8 times slower. (Points: the
        # envelope's margin is the buffer, so none of them is clipped away after taking a place.)
        chosen = f"""
            SELECT {spec.columns}, {mvt_geom}
            FROM (
                SELECT * FROM {spec.table} t
                WHERE {envelope} AND {spec.where} AND {spec.keep_first}
                ORDER BY {spec.keep_order} LIMIT :cap
            ) t
            UNION ALL
            SELECT * FROM ({features(f"NOT ({spec.keep_first})")}) b
            LIMIT :cap"""
    return f"""
        SELECT coalesce(ST_AsMVT(q, '{spec.name}', {EXTENT}, 'geom'{id_arg}{draw}), ''::bytea)
        FROM ({chosen}
        ) q
    """


def tolerance_m(z: int) -> float:
    """Half a screen pixel at zoom ``z`` in EPSG:3857 metres (a 256-px tile over the world width)."""
    return 2 * _WORLD_HALF / (2**z) / 512


def tile_query(
    spec: Layer,
    z: int,
    x: int,
    y: int,
    *,
    srid: int,
    no_clock_states: Sequence[str] = NO_CLOCK_STATES,
    max_features: int = MAX_FEATURES,
) -> tuple[str, dict[str, object]] | None:
    """The SQL and bind values of one layer's tile; None below the layer's min zoom (an empty tile, no query)."""
    if z < spec.min_zoom:
        return None
    sql = tile_sql(spec, z, srid)
    params: dict[str, object] = {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "cap": max_features}
    if ":tol" in sql:
        params["tol"] = tolerance_m(z)
    if ":no_clock" in sql:
        params["no_clock"] = list(no_clock_states)
    return sql, params


@lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """A layer's tile SQL with ``$n`` binds (asyncpg's style), made once per distinct statement, not per tile."""
    numbered, order = positional(sql)
    return numbered, tuple(order)


async def fetch_tile_async(pool: AsyncPool, spec: Layer, z: int, x: int, y: int, **kw: Any) -> bytes:
    """The MVT bytes of one layer's tile (empty bytes for an empty tile or below the layer's min zoom), over an
    asyncpg pool or connection whose sessions have ``TILE_SESSION_SETTINGS``. ``kw``: as :func:`tile_query`."""
    query = tile_query(spec, z, x, y, **kw)
    if query is None:
        return b""
    sql, params = query
    numbered, order = _numbered(sql)
    data = await pool.fetchval(numbered, *(params[k] for k in order))
    return bytes(data or b"")
