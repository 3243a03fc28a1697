"""Static thematic maps (专题图) for analysts: one HTML file plus its local assets, opened offline from file://.

``render(conn, layer=..., out=Path("maps/out/NAME.html"))`` writes ``NAME.html`` and, beside it, ``NAME_files/``
holding the vendored Leaflet the page links by relative paths (the same ``<package>@<version>/<path>`` layout as
``/static/vendor``, plus every file a stylesheet's ``url(...)`` names). Copy both together.

Layers: ``grids`` (tier ``unit`` = unit grids via :func:`gisgrid.grids.store.load_unit_grids`, tiers 1–3 via
:func:`~gisgrid.grids.store.load_management_grids`; both with per-grid counts of components and cases, area and
cases per km²), ``components`` and ``cases`` (points, from SQL, at most ``limit`` rows), and ``evaluation``
(:func:`render_evaluation`: one 综合评价 indicator of a period over unit grids or a tier, the same classes and
colours as the console's ``GET /evaluation/map``, through :func:`maps.choropleth.choropleth`).

Colouring by a column: numbers in classes by a mapclassify scheme (:mod:`maps.choropleth`: quantiles, natural
breaks, equal interval) or on a linear ramp (branca ``LinearColormap``); text and yes/no values by category (the 12
most frequent, the rest as 其他). No value → grey, "无数据". The legend is a plain HTML block (branca's own
legend needs d3 from a CDN). The city's 监督指挥中心 (GISGRID_CENTER_NAME) comes first in the page's title and the
legend's heading, as on the console (:data:`TITLE`).
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.colormap import LinearColormap
from branca.element import Element
from sqlalchemy import Connection, Engine, text

from gisgrid import export_fields
from gisgrid.components import RETIRED
from gisgrid.constants import LOCAL_TZ, LOCAL_TZ_NAME, STORAGE_SRID
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import EvaluationRules, Period
from gisgrid.evaluation_service import PROVISIONAL_ZH, calendar_warning
from gisgrid.grids import store
from gisgrid.settings import DEFAULT_CENTER_NAME
from gisgrid.texts import bilingual
from gisgrid.vectorio import cannot_write
from maps import assets, choropleth, pagesrc
from maps.pagejs import LIGHT_COLOURS, LIGHT_LABELS, MapChrome

#: The page's title and the legend's heading: the city's 监督指挥中心 (GISGRID_CENTER_NAME) first, as on the console.
TITLE = "{center} · 专题图 · {heading}"
HEADING = "{center} · {heading}"
LAYERS: dict[str, str] = {"grids": "网格", "components": "城市部件", "cases": "案件", "evaluation": "综合评价"}
TIERS: dict[str, str] = {"unit": "单元网格", "1": "一级网格(街道)", "2": "二级网格(社区)", "3": "三级网格"}
#: Numeric colouring: the mapclassify schemes and a continuous ramp.
SCHEMES: dict[str, str] = {**choropleth.SCHEMES, "linear": "线性色阶"}
DEFAULT_LIMIT = 100_000
#: Above this many features a page (every feature inline, one GeoJSON) opens slowly in a browser — the project's
#: gis-notes put the practical limit of inline vector features near 5,000; the command warns and says how to narrow.
HEAVY_FEATURES = 5_000
MAX_CATEGORIES = 12
#: Qualitative colours for categories (Tableau 10 + 2), grey for "other" and for no value.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#17becf", "#1f3a93", "#8cd17d",
)  # fmt: skip
OTHER_COLOUR = "#bdbdbd"
NO_DATA_COLOUR = choropleth.NO_DATA_COLOUR
PLAIN_COLOUR = "#1e88e5"
RAMP = choropleth.RAMP  # sequential, light → dark
COORD_DECIMALS = 6  # ≈ 0.1 m
TERMINAL_STATES = ("closed", "rejected", "voided")
#: The cases layer's state filter: these words, or states named one by one (``dispatched,returned``).
CASE_STATE_FILTERS: dict[str, str] = {"open": "在办(未结案)", "all": "全部"}
#: Traffic lights as the console draws them (a case without a running clock: 未计时).

#: Chinese names of the columns (tooltips and legend titles).
COLUMN_LABELS: dict[str, str] = {
    "code": "编码",
    "name": "名称",
    "tier": "层级",
    "district_code": "区",
    "district_name": "区",
    "street_code": "街道编码",
    "street_name": "街道",
    "community_code": "社区编码",
    "community_name": "社区",
    "tier3_code": "三级网格",
    "parent_code": "上级网格",
    "admin_code": "行政区划",
    "leader_name": "网格长",
    "leader_phone": "电话",
    "staff_count": "网格员人数",
    "unit_grids": "单元网格数",
    "seq": "序号",
    "row": "行",
    "col": "列",
    "area_m2": "面积(m²)",
    "area_km2": "面积(km²)",
    "components": "部件数",
    "components_faulty": "非完好部件数",
    "cases": "案件数",
    "open_cases": "在办案件数",
    "cases_30d": "近30天案件数",
    "cases_per_km2": "每平方公里案件数",
    "id": "标识码",
    "class_code": "类别",
    "status": "状态",
    "scheme": "标准",
    "main_dept_code": "主管部门",
    "maint_dept_code": "养护部门",
    "unit_grid_code": "单元网格",
    "initial_date": "初始日期",
    "change_date": "变更日期",
    "case_no": "案件编号",
    "state": "状态",
    "source": "来源",
    "urgent": "急件",
    "department_code": "处置部门",
    "rework_count": "返工次数",
    "escalation_level": "协调层级",
    "age_days": "历时(天)",
    "light": "红黄绿灯",
    "created_at": "上报时间",
    "due_at": "时限",
    "closed_at": "结案时间",
}
#: Columns shown in the tooltip (when present), in this order, plus the colouring column.
TOOLTIP_COLUMNS: dict[str, tuple[str, ...]] = {
    "grids": ("code", "name", "community_name", "street_name", "components", "cases", "open_cases"),
    "components": ("id", "class_code", "name", "status", "unit_grid_code"),
    "cases": ("case_no", "class_code", "state", "light", "department_code", "created_at", "age_days"),
    "evaluation": ("code", "name", "value_label", "grade", "rank"),
}


class UnknownColumn(InvalidInput):
    """``--color-by`` names no column of the layer; the message lists the choices."""


@dataclass
class LegendEntry:
    label: str
    colour: str
    count: int


@dataclass
class Rendered:
    html: Path
    files_dir: Path
    files: list[Path]
    features: int
    total: int
    column: str | None
    legend: list[LegendEntry] = field(default_factory=list)
    as_of: Any = None  # evaluation layer: the time the period's cases were judged at (a pd.Timestamp)
    provisional: bool = False  # evaluation layer: judged before the period ended
    calendar_warning: str | None = None  # evaluation layer: the figures ran through a year the calendar lacks

    @property
    def truncated(self) -> bool:
        return self.features < self.total


# -- data ---------------------------------------------------------------------------------------------


def _bbox_sql(bbox: tuple[float, float, float, float] | None, alias: str) -> tuple[str, dict[str, Any]]:
    """The WHERE condition for ``bbox`` and its bind parameters (a dict the caller adds its own to)."""
    if bbox is None:
        return "TRUE", {}
    return (
        f"{alias}.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, ST_SRID({alias}.geom))",
        dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True)),
    )


def _grid_counts(conn: Connection, tier: str, period: Period | None = None) -> pd.DataFrame:
    """Per grid code: components in service (not 移除: retired ones have left the registry) and those of them not
    完好, cases (not merged: all, open, last 30 days)."""
    key = {"unit": "unit_grid_code", "1": "street_code", "2": "community_code", "3": "tier3_code"}[tier]
    if tier == "3":  # components carry no tier-3 code: through their unit grid
        comp_from = "components c JOIN unit_grids g ON g.code = c.unit_grid_code"
        comp_key = "g.tier3_code"
    else:
        comp_from, comp_key = "components c", f"c.{key}"
    comps = pd.read_sql(
        text(
            f"SELECT {comp_key} AS code, count(*) AS components, "
            "count(*) FILTER (WHERE c.status <> '完好') AS components_faulty "
            f"FROM {comp_from} WHERE {comp_key} IS NOT NULL AND c.status <> :retired GROUP BY 1"
        ),
        conn,
        params={"retired": RETIRED},
    )
    # cases and open_cases: those reported in ``period`` when given (every case stored otherwise); cases_30d the
    # last 30 days whatever the period
    reported = "TRUE" if period is None else "c.created_at >= :since AND c.created_at < :until"
    params: dict[str, Any] = {"t": list(TERMINAL_STATES)}
    if period is not None:
        params.update(since=period.start.to_pydatetime(), until=period.end.to_pydatetime())
    cases = pd.read_sql(
        text(
            f"SELECT c.{key} AS code, count(*) FILTER (WHERE {reported}) AS cases, "
            f"count(*) FILTER (WHERE {reported} AND c.state <> ALL(CAST(:t AS text[]))) AS open_cases, "
            "count(*) FILTER (WHERE c.created_at >= now() - interval '30 days') AS cases_30d "
            f"FROM cases c WHERE c.{key} IS NOT NULL AND c.duplicate_of IS NULL GROUP BY 1"
        ),
        conn,
        params=params,
    )
    return comps.merge(cases, on="code", how="outer")


def load_grids(
    conn: Connection,
    tier: str = "unit",
    bbox: tuple[float, float, float, float] | None = None,
    period: Period | None = None,
) -> gpd.GeoDataFrame:
    if tier not in TIERS:
        raise InvalidInput(f"tier: {tier!r} is not one of {', '.join(TIERS)}", detail=[{"field": "tier"}])
    if tier == "unit":
        gdf = store.load_unit_grids(conn)
        gdf = gdf.drop(columns=["district_code"]).assign(area_km2=gdf["area_m2"] / 1e6)
    else:
        gdf = store.load_management_grids(conn, int(tier))
        areas = pd.read_sql(
            text("SELECT code, ST_Area(geom::geography) / 1e6 AS area_km2 FROM management_grids WHERE tier = :t"),
            conn,
            params={"t": int(tier)},
        )
        gdf = gdf.drop(columns=["tier"]).merge(areas, on="code", how="left")
    if bbox is not None:
        gdf = gdf.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    gdf = gdf.merge(_grid_counts(conn, tier, period), on="code", how="left")
    for col in ("components", "components_faulty", "cases", "open_cases", "cases_30d"):
        gdf[col] = gdf[col].fillna(0).astype("int64")
    gdf["cases_per_km2"] = (gdf["cases"] / gdf["area_km2"].where(gdf["area_km2"] > 0)).round(2)
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=STORAGE_SRID)


def _read_points(conn: Connection, sql: str, params: dict[str, Any]) -> gpd.GeoDataFrame:
    gdf = gpd.read_postgis(text(sql), conn, geom_col="geom", params=params)
    return gdf.rename_geometry("geometry")


def _count(conn: Connection, table: str, where: str, params: dict[str, Any]) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table} t WHERE {where}"), params).scalar_one())


def load_components(
    conn: Connection, *, limit: int = DEFAULT_LIMIT, bbox: tuple[float, float, float, float] | None = None
) -> tuple[gpd.GeoDataFrame, int]:
    """Components in service (retired ones, 移除, have left the registry: ``components export`` has them)."""
    where, params = _bbox_sql(bbox, "t")
    where, params = f"{where} AND t.status <> :retired", {**params, "retired": RETIRED}
    gdf = _read_points(
        conn,
        "SELECT t.id, t.scheme, t.class_code, t.name, t.status, t.main_dept_code, t.maint_dept_code, "
        "t.unit_grid_code, t.street_code, t.community_code, t.initial_date, t.change_date, t.geom "
        f"FROM components t WHERE {where} ORDER BY t.id LIMIT :limit",
        {**params, "limit": limit},
    )
    return gdf, _count(conn, "components", where, params)


def case_states(value: str | Sequence[str] | None, known: Sequence[str]) -> list[str] | None:
    """The states a cases map shows: ``open`` (every state but the terminal ones), ``all`` / None (no filter) or
    states named one by one (a comma list or a sequence), each one of ``known``."""
    if value is None:
        return None
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if names == ["all"]:
        return None
    if names == ["open"]:
        return [s for s in known if s not in TERMINAL_STATES]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise InvalidInput(
            f"state: {', '.join(unknown) or value!r} is not a state; use open, all or states of {', '.join(known)}",
            detail=[{"field": "state", "reason": "unknown state", "choices": ["open", "all", *known]}],
        )
    return names


def load_cases(
    conn: Connection,
    *,
    limit: int = DEFAULT_LIMIT,
    bbox: tuple[float, float, float, float] | None = None,
    states: Sequence[str] | None = None,
    period: Period | None = None,
    services: Any = None,
) -> tuple[gpd.GeoDataFrame, int]:
    """Cases (not merged duplicates) in ``states`` reported in ``period``; open ones kept first under ``limit`` and
    drawn last (above the closed ones). With ``services`` (:func:`gisgrid.cases.load_services`), a ``light``
    column: the traffic light of each case with a running clock, as the console shows it."""
    where, params = _bbox_sql(bbox, "t")
    where += " AND t.duplicate_of IS NULL"
    if states is not None:
        where += " AND t.state = ANY(CAST(:states AS text[]))"
        params["states"] = list(states)
    if period is not None:
        where += " AND t.created_at >= :since AND t.created_at < :until"
        params.update(since=period.start.to_pydatetime(), until=period.end.to_pydatetime())
    gdf = _read_points(
        conn,
        "SELECT t.id, t.case_no, t.scheme, t.class_code, t.state, t.source, t.urgent, t.department_code, "
        "t.unit_grid_code, t.street_code, t.community_code, t.tier3_code, t.rework_count, t.escalation_level, "
        "round((extract(epoch FROM coalesce(t.closed_at, now()) - t.created_at) / 86400)::numeric, 2)::float8 "
        "AS age_days, t.created_at, t.due_at, t.closed_at, t.node_started_at, t.node_calendar_time, t.geom "
        f"FROM cases t WHERE {where} "
        "ORDER BY t.state = ANY(CAST(:terminal AS text[])), t.id DESC LIMIT :limit",
        {**params, "limit": limit, "terminal": list(TERMINAL_STATES)},
    )
    if services is not None:
        from gisgrid.cases import light_of

        now = dt.datetime.now(LOCAL_TZ)
        gdf.insert(
            gdf.columns.get_loc("state") + 1,
            "light",
            [
                light_of(services, r, now)
                for r in gdf[["state", "due_at", "node_started_at", "node_calendar_time"]].to_dict("records")
            ],
        )
    gdf = gdf.drop(columns=["node_started_at", "node_calendar_time"])
    closed = gdf["state"].isin(TERMINAL_STATES)
    gdf = pd.concat([gdf[closed], gdf[~closed]])  # later features are drawn on top: the open ones
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=gdf.crs), _count(conn, "cases", where, params)


#: The grid columns counting cases a --period limits (cases_30d is its own window).
_CASE_COUNTS = ("cases", "open_cases", "cases_per_km2")


def load_layer(
    conn: Connection,
    layer: str,
    *,
    tier: str | None = None,
    limit: int = DEFAULT_LIMIT,
    bbox: tuple[float, float, float, float] | None = None,
    states: Sequence[str] | None = None,
    period: Period | None = None,
    services: Any = None,
) -> tuple[gpd.GeoDataFrame, int]:
    """(features, how many match before ``limit``); ``states``, ``period`` and ``services`` for cases only."""
    if layer not in LAYERS or layer == "evaluation":
        choices = ", ".join(k for k in LAYERS if k != "evaluation")
        hint = " (the evaluation layer: render_evaluation)" if layer == "evaluation" else ""
        raise InvalidInput(f"layer: {layer!r} is not one of {choices}{hint}", detail=[{"field": "layer"}])
    if layer != "grids" and tier is not None:
        raise InvalidInput("tier: only the grids layer has tiers", detail=[{"field": "tier"}])
    if layer != "cases" and states is not None:
        raise InvalidInput("state: only the cases layer has it", detail=[{"field": "state"}])
    if layer == "components" and period is not None:
        raise InvalidInput("period: only the cases and grids layers have it", detail=[{"field": "period"}])
    if layer == "grids":
        gdf = load_grids(conn, tier or "unit", bbox, period)
        total = len(gdf)
        return gdf.iloc[:limit], total
    if layer == "components":
        return load_components(conn, limit=limit, bbox=bbox)
    return load_cases(conn, limit=limit, bbox=bbox, states=states, period=period, services=services)


# -- colouring ----------------------------------------------------------------------------------------


def column_kinds(gdf: gpd.GeoDataFrame) -> dict[str, str]:
    """Colourable column → ``numeric`` or ``category`` (dates and the geometry are not colourable)."""
    kinds: dict[str, str] = {}
    for col in gdf.columns:
        if col == gdf.geometry.name:
            continue
        s = gdf[col]
        if pd.api.types.is_bool_dtype(s):
            kinds[col] = "category"
        elif pd.api.types.is_numeric_dtype(s):
            kinds[col] = "numeric"
        elif pd.api.types.is_datetime64_any_dtype(s) or s.map(lambda v: isinstance(v, dt.date)).any():
            continue
        else:
            kinds[col] = "category"
    return kinds


#: Per layer, the standard's field names its export writes for its columns (GLBJZT → status): ``--color-by``
#: takes either, as an analyst reads the names off an exported file.
EXPORT_NAMES: dict[str, Mapping[str, str]] = {"components": export_fields.COMPONENT_COLUMNS}


def layer_column(layer: str, column: str, gdf: gpd.GeoDataFrame) -> str:
    """``column`` as the layer's own: an export's field name (``GLBJZT``, any case) → its column (``status``)."""
    if column in gdf.columns:
        return column
    return EXPORT_NAMES.get(layer, {}).get(column.strip().upper(), column)


def check_column(gdf: gpd.GeoDataFrame, column: str, where: str, layer: str | None = None) -> str:
    """The kind of ``column`` (:func:`column_kinds`); UnknownColumn listing every accepted name, each column
    with its export field name when ``layer``'s export has one (``status (GLBJZT)``)."""
    kinds = column_kinds(gdf)
    if column in kinds:
        return kinds[column]
    exported = {col: name for name, col in EXPORT_NAMES.get(layer or "", {}).items() if col in kinds}

    def named(kind: str) -> str:
        cols = [c for c, k in kinds.items() if k == kind]
        return ", ".join(f"{c} ({exported[c]})" if c in exported else c for c in cols) or "—"

    raise UnknownColumn(
        bilingual(
            f"没有可着色的列 {column!r}(可选的数值列和分类列见后)",
            f"{where} has no column {column!r} to colour by; choose one of — numbers: {named('numeric')}; "
            f"categories: {named('category')}",
        ),
        detail=[
            {
                "field": "color_by",
                "reason": "unknown column",
                "choices": [*kinds, *(exported[c] for c in kinds if c in exported)],
            },
        ],
    )


_fmt = choropleth.format_number


def scheme_name(scheme: str) -> str:
    """``linear`` or a mapclassify scheme (aliases such as ``quantile`` accepted)."""
    key = scheme.strip().lower()
    if key == "linear":
        return key
    try:
        return choropleth.scheme_name(key)
    except InvalidInput:
        raise InvalidInput(
            f"scheme: {scheme!r} is not one of {', '.join(SCHEMES)}",
            detail=[{"field": "scheme", "reason": "unknown scheme", "choices": list(SCHEMES)}],
        ) from None


@dataclass
class Colouring:
    colour_of: Any  # value → "#rrggbb"
    legend: list[LegendEntry]
    subtitle: str
    gradient: tuple[str, str, str] | None = None  # (css gradient, min label, max label) for a linear ramp


def _legend_entries(classes: choropleth.Classes) -> list[LegendEntry]:
    return [LegendEntry(row.label, row.colour, row.count) for row in classes.legend()]


def _numeric_colouring(values: pd.Series, k: int, scheme: str) -> Colouring:
    """Classes by a mapclassify scheme (:func:`maps.choropleth.classify`), or a continuous ``linear`` ramp."""
    scheme = scheme_name(scheme)
    if scheme != "linear":
        classes = choropleth.classify(values, scheme, k)
        return Colouring(classes.colour_of, _legend_entries(classes), classes.subtitle)
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finite = v[np.isfinite(v)]
    if finite.size == 0 or finite.min() == finite.max():
        classes = choropleth.classify(values, "quantiles", k)  # one class or none: nothing to ramp
        return Colouring(classes.colour_of, _legend_entries(classes), classes.subtitle)
    missing = int(v.size - finite.size)
    no_data = [LegendEntry(choropleth.NO_DATA_LABEL, NO_DATA_COLOUR, missing)] if missing else []
    lo, hi = float(finite.min()), float(finite.max())
    ramp = RAMP.scale(lo, hi)
    assert isinstance(ramp, LinearColormap)
    stops = ", ".join(ramp.rgb_hex_str(lo + (hi - lo) * t) for t in np.linspace(0, 1, 7))

    def colour_of(value: Any) -> str:
        try:
            x = float(value)
        except (TypeError, ValueError):
            return NO_DATA_COLOUR
        return ramp.rgb_hex_str(x) if np.isfinite(x) else NO_DATA_COLOUR

    return Colouring(
        colour_of,
        no_data,
        SCHEMES["linear"],
        gradient=(f"linear-gradient(to right, {stops})", _fmt(lo), _fmt(hi)),
    )


def _category_key(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return "是" if value else "否"
    return str(value)


def _category_colouring(
    values: pd.Series, labels: Mapping[str, str], fixed: Mapping[str, str] | None = None, no_value: str | None = None
) -> Colouring:
    """By category, most frequent first; ``fixed`` colours (and their order) for known categories such as lights,
    ``no_value`` the legend's word for a missing one."""
    keys = values.map(_category_key)
    counts = keys.value_counts(dropna=True)
    top = list(counts.index[:MAX_CATEGORIES])
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(top)}
    if fixed:
        top = [k for k in fixed if k in counts.index] + [k for k in top if k not in fixed]
        colour.update({k: c for k, c in fixed.items() if k in counts.index})

    def label(k: str) -> str:  # a fixed category (a light) by its name alone, others with the code beside
        return (labels[k] if fixed and k in fixed else f"{labels[k]}({k})") if k in labels else k

    legend = [LegendEntry(label(k), colour[k], int(counts[k])) for k in top]
    rest = counts[[k for k in counts.index if k not in top]]
    if len(rest):
        legend.append(LegendEntry(f"其他({len(rest)} 类)", OTHER_COLOUR, int(rest.sum())))
    missing = int(keys.isna().sum())
    if missing:
        legend.append(LegendEntry(no_value or choropleth.NO_DATA_LABEL, NO_DATA_COLOUR, missing))

    def colour_of(value: Any) -> str:
        key = _category_key(value)
        return NO_DATA_COLOUR if key is None else colour.get(key, OTHER_COLOUR)

    # The missing ones are a legend row, not a class: named beside the count so "3 类" matches the rows above it.
    extra = f" + {(no_value or choropleth.NO_DATA_LABEL).split('(')[0]}" if missing else ""
    return Colouring(colour_of, legend, f"按类别({len(counts)} 类{extra})")


# -- the page -----------------------------------------------------------------------------------------


class _Html(Element):
    """An element emitted exactly as given."""

    def __init__(self, raw: str) -> None:
        super().__init__()
        self.raw = raw

    def render(self, **kwargs: Any) -> str:
        return self.raw


def _esc(value: object) -> str:
    return html_lib.escape(str(value), quote=True)


LEGEND_CSS = pagesrc.source("legend.css")


def _legend_html(
    title: str, subtitle: str, rows: list[LegendEntry], gradient: tuple[str, str, str] | None, center_name: str
) -> str:
    items = "".join(
        f'<li><i style="background:{_esc(e.colour)}"></i><span>{_esc(e.label)}</span> <small>{e.count:,}</small></li>'
        for e in rows
    )
    ramp = ""
    if gradient:
        css, lo, hi = gradient
        ramp = (
            f'<div class="gg-ramp" style="background:{_esc(css)}"></div>'
            f'<div class="gg-ends"><span>{_esc(lo)}</span><span>{_esc(hi)}</span></div>'
        )
    heading = _esc(HEADING.format(center=center_name, heading=title))
    return (
        f'<div id="gg-legend" class="gg-legend" role="region" aria-label="图例"><h1>{heading}</h1>'
        f'<div class="gg-sub">{_esc(subtitle)}</div>{ramp}<ul>{items}</ul></div>'
    )


def _feature_collection(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert(LOCAL_TZ_NAME)
            out[col] = s.dt.strftime("%Y-%m-%d %H:%M").where(s.notna(), None)
        elif s.dtype == object and s.map(lambda v: isinstance(v, dt.date)).any():
            out[col] = s.map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
    # Rounded, without the vertices rounding repeats, RFC 7946 rings (as the choropleth sends them).
    geoms = choropleth.transport_geometry(out.geometry.to_numpy(), tolerance=0, decimals=COORD_DECIMALS)
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
    fc = json.loads(out.to_json(na="null", drop_id=True, to_wgs84=False))
    for i, feat in enumerate(fc["features"]):
        feat["id"] = str(i)
    return fc


def _as_text(features: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(a copy of the collection whose text properties are HTML-escaped, the original features by index).

    folium's GeoJsonTooltip builds its table as an HTML string (``innerHTML``): a component, grid, community or
    street name holding markup would run as script in whoever opens the map. Escaped, the tooltip shows the
    literal text (``&lt;`` reads ``<``, Chinese text and numbers are unchanged). Each copy's ``id`` is its index,
    so styling can look up the unescaped feature (a category colour is keyed by the value itself)."""
    raw = list(features["features"])
    shown = [
        {
            **f,
            "id": str(i),
            "properties": {k: _esc(v) if isinstance(v, str) else v for k, v in (f.get("properties") or {}).items()},
        }
        for i, f in enumerate(raw)
    ]
    return {**features, "features": shown}, raw


def _subtitle(*parts: str) -> str:
    now = dt.datetime.now(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    return " · ".join(p for p in (*parts, now) if p)


def _page(
    features: dict[str, Any],
    *,
    heading: str,
    subtitle: str,
    legend: list[LegendEntry],
    style: Callable[[dict[str, Any]], dict[str, Any]],
    tooltip: list[str],
    aliases: list[str],
    bounds: tuple[float, float, float, float] | None,
    polygons: bool,
    gradient: tuple[str, str, str] | None = None,
    outlines: dict[str, Any] | None = None,
    center_name: str = DEFAULT_CENTER_NAME,
) -> str:
    """The folium page: one GeoJSON layer, its tooltip and the HTML legend (Leaflet only, ``/static/vendor``).
    ``style`` sees each feature's properties as they are; the page carries them as text (:func:`_as_text`).
    ``outlines``: street boundaries drawn under a point layer, so an offline reader sees where the points are.
    ``center_name`` (GISGRID_CENTER_NAME) and ``heading`` make the title and the legend's heading (:data:`TITLE`)."""
    assets.use_local_assets()
    shown, raw = _as_text(features)
    figure = folium.Figure(title=_esc(TITLE.format(center=center_name, heading=heading)))  # branca: unescaped
    m = folium.Map(location=(34.75, 113.65), zoom_start=12, tiles=None, prefer_canvas=True)
    # Only Leaflet: no Bootstrap, jQuery or icon fonts for a map of polygons and circles.
    m.default_js = [(n, u) for n, u in folium.Map.default_js if n == "leaflet"]
    m.default_css = [(n, u) for n, u in folium.Map.default_css if n == "leaflet_css"]
    m.add_to(figure)
    MapChrome().add_to(m)  # metric scale bar, no Leaflet prefix (as the console)
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        m.fit_bounds([[y0, x0], [y1, x1]])
    if outlines is not None and outlines["features"]:
        folium.GeoJson(
            outlines,
            name="街道界线",
            style_function=lambda _f: OUTLINE_STYLE,
            interactive=False,  # the points above take the pointer
        ).add_to(m)
    folium.GeoJson(
        shown,
        name=heading,
        style_function=lambda f: style(raw[int(f["id"])]),
        marker=None if polygons else folium.CircleMarker(radius=5, fill=True),
        tooltip=folium.GeoJsonTooltip(fields=tooltip, aliases=[_esc(a) for a in aliases], localize=True)
        if tooltip and shown["features"]
        else None,
        zoom_on_click=False,
    ).add_to(m)
    figure.header.add_child(_Html(f"<style>{LEGEND_CSS}</style>"), name="gisgrid_legend_css")
    figure.html.add_child(_Html(_legend_html(heading, subtitle, legend, gradient, center_name)), name="gisgrid_legend")
    return figure.render().replace("<html>", '<html lang="zh-CN">', 1)


#: Street boundaries under a point map: thin grey lines, no fill.
OUTLINE_STYLE = {"color": "#78909c", "weight": 1.2, "fill": False, "opacity": 0.9}
#: Their simplification (degrees, ≈ 5 m): a reference line, not a survey.
OUTLINE_TOLERANCE_DEG = 5e-5


def street_outlines(conn: Connection) -> dict[str, Any]:
    """The streets' boundaries (tier-1 grids) as a GeoJSON FeatureCollection of lines, simplified, no properties:
    the reference under a components or cases map."""
    rows = conn.execute(
        text(
            "SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Boundary(geom), :tol), 6) "
            "FROM management_grids WHERE tier = 1 ORDER BY code"
        ),
        {"tol": OUTLINE_TOLERANCE_DEG},
    ).scalars()
    features = [{"type": "Feature", "properties": {}, "geometry": json.loads(g)} for g in rows if g]
    return {"type": "FeatureCollection", "features": features}


def _bounds(gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float] | None:
    if not len(gdf) or gdf.geometry.isna().all():
        return None
    x0, y0, x1, y1 = (float(v) for v in gdf.total_bounds)
    return x0, y0, x1, y1


def build_map(
    gdf: gpd.GeoDataFrame,
    *,
    layer: str,
    tier: str | None = None,
    column: str | None = None,
    classes: int = 5,
    scheme: str = choropleth.DEFAULT_SCHEME,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    title: str | None = None,
    total: int | None = None,
    note: str = "",
    outlines: dict[str, Any] | None = None,
    center_name: str = DEFAULT_CENTER_NAME,
) -> tuple[str, list[LegendEntry]]:
    """The map page (HTML with ``/static/vendor`` links) and its legend (layers grids, components, cases);
    ``note`` says what was selected (e.g. 在办 · 2026-10) in the legend's subtitle; ``outlines`` (street
    boundaries) are drawn under a point layer; ``center_name`` (GISGRID_CENTER_NAME) heads the title and legend."""
    scheme = scheme_name(scheme)
    layer_label = TIERS[tier or "unit"] if layer == "grids" else LAYERS[layer]
    colouring: Colouring | None = None
    plain: LegendEntry | None = None
    if column is not None:
        column = layer_column(layer, column, gdf)
        where = f"layer {layer}" + (f" (tier {tier or 'unit'})" if layer == "grids" else "")
        kind = check_column(gdf, column, where, layer)
        if column == "light":
            colouring = _category_colouring(gdf[column], LIGHT_LABELS, LIGHT_COLOURS, "未计时(挂账、无时限或已结案)")
        elif kind == "numeric":
            colouring = _numeric_colouring(gdf[column], classes, scheme)
        else:
            colouring = _category_colouring(gdf[column], (labels or {}).get(column, {}))
    else:
        plain = LegendEntry(layer_label, PLAIN_COLOUR if layer != "grids" else "#ffffff", len(gdf))
    col_label = COLUMN_LABELS.get(column or "", column or "")
    heading = title or (f"{layer_label} · {col_label}" if column else layer_label)
    shown = f"共 {len(gdf):,} 个" + (
        f"(共 {total:,} 个,仅显示前 {len(gdf):,} 个)" if total and total > len(gdf) else ""
    )
    tip = [c for c in TOOLTIP_COLUMNS[layer] if c in gdf.columns]
    if column and column not in tip:
        tip.append(column)
    polygons = layer == "grids"
    colour_of = colouring.colour_of if colouring else None

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        value = feature["properties"].get(column) if column else None
        fill = colour_of(value) if colour_of else (PLAIN_COLOUR if not polygons else "#ffffff")
        if polygons:
            return {"fillColor": fill, "color": "#546e7a", "weight": 0.6 if tier in (None, "unit") else 1.5,
                    "fillOpacity": 0.75 if colour_of else 0.05}  # fmt: skip
        # a pale point (未计时, 无数据) gets a dark rim: white on the grey page it was hard to see
        rim = "#607d8b" if fill == choropleth.NO_DATA_COLOUR else "#ffffff"
        return {"fillColor": fill, "color": rim, "weight": 1, "fillOpacity": 0.9, "radius": 5}

    legend = colouring.legend if colouring else [plain] if plain else []
    page = _page(
        _feature_collection(gdf),
        heading=heading,
        subtitle=_subtitle(note, colouring.subtitle if colouring else "", shown),
        legend=legend,
        style=style,
        tooltip=tip,
        aliases=[COLUMN_LABELS.get(c, c) for c in tip],
        bounds=_bounds(gdf),
        polygons=polygons,
        gradient=colouring.gradient if colouring else None,
        outlines=outlines,
        center_name=center_name,
    )
    return page, legend


def build_evaluation_map(
    regions: gpd.GeoDataFrame,
    *,
    indicator: str,
    level: str,
    period_label: str,
    classes: int = choropleth.DEFAULT_K,
    scheme: str = choropleth.DEFAULT_SCHEME,
    title: str | None = None,
    rules: EvaluationRules | None = None,
    center_name: str = DEFAULT_CENTER_NAME,
) -> tuple[str, list[LegendEntry]]:
    """The page of one 综合评价 indicator over regions (from :func:`maps.choropleth.indicator_regions`): classes,
    colours and legend of :func:`maps.choropleth.choropleth`, as the console draws them (``rules``: the
    deployment's evaluation rules, whose grade bands the grade classes are)."""
    body = choropleth.choropleth(
        regions, indicator, scheme=scheme, k=classes, properties=("code", "name", "score", "grade", "rank"), rules=rules
    )
    legend = [LegendEntry(row["label"], row["colour"], row["count"]) for row in body["legend"]]
    heading = title or f"{choropleth.LEVELS[level]} · {choropleth.indicator_title(indicator)}"
    tip = ["code", "name", "value_label", *(c for c in ("grade", "rank") if c != indicator)]
    names = {**COLUMN_LABELS, "value_label": choropleth.indicator_label(indicator), "grade": "等级", "rank": "排名"}
    thin = level == "unit_grid"

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        return {"fillColor": feature["properties"]["colour"], "color": "#546e7a", "weight": 0.6 if thin else 1.5,
                "fillOpacity": 0.75}  # fmt: skip

    page = _page(
        body["features"],
        heading=heading,
        subtitle=_subtitle(
            f"评价期 {period_label}",
            body["subtitle"],
            choropleth.BETTER_LABELS.get(body["better"] or "", ""),
            f"共 {len(regions):,} 个",
        ),
        legend=legend,
        style=style,
        tooltip=tip,
        aliases=[names.get(c, c) for c in tip],
        bounds=_bounds(regions),
        polygons=True,
        center_name=center_name,
    )
    return page, legend


# -- the folder ---------------------------------------------------------------------------------------

_LINK = re.compile(r"""(?P<attr>\b(?:src|href)=["'])(?P<url>/static/vendor/[^"'?#]+)""")
_ANY_LINK = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(?P<url>[^'")]+)\1\s*\)""")


def _copy_with_css_deps(src: Path, dest: Path, copied: dict[Path, Path]) -> None:
    if dest in copied:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    copied[dest] = src
    if src.suffix.lower() != ".css":
        return
    for m in _CSS_URL.finditer(src.read_text(encoding="utf-8", errors="replace")):
        ref = m.group("url").strip()
        if ref.startswith(("data:", "#", "/")) or "://" in ref:
            continue
        rel = unquote(ref.split("#", 1)[0].split("?", 1)[0])
        if not rel:
            continue
        dep_src = (src.parent / rel).resolve()
        dep_dest = (dest.parent / rel).resolve()
        if dep_src.is_file():
            _copy_with_css_deps(dep_src, dep_dest, copied)


def export_folder(page: str, out: Path) -> tuple[Path, list[Path]]:
    """Write ``out`` (HTML) with every ``/static/vendor`` link copied into ``<stem>_files/`` and made relative."""
    out = out.resolve()
    files_dir = out.with_name(out.stem + "_files")
    copied: dict[Path, Path] = {}

    def relink(m: re.Match[str]) -> str:
        url = m.group("url")
        src = assets.local_file(url)
        if src is None:
            raise assets.AssetError(f"{url} is not installed (run: python -m maps.assets install)")
        rel = url[len(assets.VENDOR_PREFIX) + 1 :]
        _copy_with_css_deps(src, files_dir.joinpath(*rel.split("/")), copied)
        return m.group("attr") + quote(files_dir.name) + "/" + quote(rel, safe="/@")

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        page = _LINK.sub(relink, page)
        left = [u for u in _ANY_LINK.findall(page) if u.startswith("/") or re.match(r"[A-Za-z][\w+.-]*:", u)]
        if left:
            raise assets.AssetError(f"the map links files it cannot carry along: {', '.join(sorted(set(left)))}")
        out.write_text(page, encoding="utf-8")
    except OSError as exc:  # a file where a folder should be, no permission, a read-only file system
        raise cannot_write(out, exc) from None
    return files_dir, sorted(copied)


def layer_extent(conn: Connection, layer: str, tier: str | None = None) -> tuple[float, float, float, float] | None:
    """The stored extent of a layer (minlon, minlat, maxlon, maxlat; None when it holds nothing): what a --bbox
    that found nothing is told to aim at."""
    table = {"grids": "unit_grids" if tier in (None, "unit") else "management_grids"}.get(layer, layer)
    if table not in ("unit_grids", "management_grids", "components", "cases"):
        return None
    box = conn.execute(
        text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM {table}) x")
    ).one()
    return None if box[0] is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in (".html", ".htm"):
        raise InvalidInput(f"out: {out} must name an .html file", detail=[{"field": "out"}])


def render(
    conn: Connection,
    *,
    layer: str,
    out: Path,
    tier: str | None = None,
    column: str | None = None,
    classes: int = 5,
    scheme: str = choropleth.DEFAULT_SCHEME,
    limit: int = DEFAULT_LIMIT,
    bbox: tuple[float, float, float, float] | None = None,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    title: str | None = None,
    scale: str | None = None,
    states: str | Sequence[str] | None = None,
    period: str | Period | None = None,
    services: Any = None,
    center_name: str = DEFAULT_CENTER_NAME,
) -> Rendered:
    """Load a layer, colour it by ``column`` and write the self-contained map folder (``scale``: the old name
    of ``scheme``, ``quantile`` or ``linear``). Cases: ``states`` (``open``, ``all`` or states, see
    :func:`case_states`), ``period`` reported in (``2026-10`` …) and, with ``services``, a ``light`` column.
    ``center_name``: the city's 监督指挥中心 (GISGRID_CENTER_NAME), first in the title and the legend's heading."""
    _check_out(out)
    from gisgrid.workflow import STATES

    chosen = case_states(states, list(STATES))
    p = choropleth.parse_period_param(period) if period is not None else None
    note_parts = []
    if layer == "cases":
        key = states if isinstance(states, str) else None
        note_parts.append(CASE_STATE_FILTERS.get(key or "all") or "状态 " + "、".join(STATES[s] for s in chosen or []))
        if p is not None:
            note_parts.append(f"上报于 {p.label}")
    outlines = street_outlines(conn) if layer != "grids" else None
    if outlines is not None and outlines["features"]:  # said only when drawn
        note_parts.append("灰线:街道界线")
    if layer == "grids" and (column in _CASE_COUNTS or p is not None):  # which cases the counts are of
        note_parts.append(f"案件上报于 {p.label}" if p is not None else "案件:全部(自启用起)")
    gdf, total = load_layer(conn, layer, tier=tier, limit=limit, bbox=bbox, states=chosen, period=p, services=services)
    page, legend = build_map(
        gdf,
        layer=layer,
        tier=tier,
        column=column,
        classes=classes,
        scheme=scale or scheme,
        labels=labels,
        title=title,
        total=total,
        note=" · ".join(note_parts),
        outlines=outlines,
        center_name=center_name,
    )
    files_dir, files = export_folder(page, out)
    return Rendered(out.resolve(), files_dir, files, len(gdf), total, column, legend)


def render_evaluation(
    engine: Engine,
    services: Any,
    *,
    period: str | Period,
    indicator: str,
    out: Path,
    level: str = "tier3",
    classes: int = choropleth.DEFAULT_K,
    scheme: str = choropleth.DEFAULT_SCHEME,
    title: str | None = None,
    as_of: Any = None,
    center_name: str = DEFAULT_CENTER_NAME,
) -> Rendered:
    """The ``evaluation`` layer: ``indicator`` of ``period`` over the regions of ``level`` judged as of ``as_of``
    (default now; the subtitle states it), written like :func:`render` (a region without cases in the period is
    grey, 无数据; ``center_name`` as there)."""
    _check_out(out)
    scheme = choropleth.scheme_name(scheme)
    choropleth.check_k(classes)
    regions, p = choropleth.indicator_regions(engine, services, period, level, indicator, as_of=as_of)
    when, provisional = regions.attrs["as_of"], regions.attrs["provisional"]
    warning = calendar_warning(regions.attrs["unknown_years"])
    page, legend = build_evaluation_map(
        regions,
        indicator=indicator,
        level=level,
        period_label=" · ".join(
            part
            for part in (
                f"{p.label} · 截至 {when:%Y-%m-%d %H:%M}",
                PROVISIONAL_ZH if provisional else "",
                warning,
            )
            if part
        ),
        classes=classes,
        scheme=scheme,
        title=title,
        rules=services.evaluation_rules,
        center_name=center_name,
    )
    files_dir, files = export_folder(page, out)
    return Rendered(
        out.resolve(),
        files_dir,
        files,
        len(regions),
        len(regions),
        indicator,
        legend,
        as_of=when,
        provisional=provisional,
        calendar_warning=warning,
    )
