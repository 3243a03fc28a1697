"""Choropleths of evaluation indicators (综合评价专题图) over unit grids and tiers, for the console and static maps.

Classing is mapclassify's (PySAL): ``quantiles`` (default), ``natural_breaks`` (Jenks: the exact Fisher–Jenks
for up to :data:`EXACT_JENKS_MAX` values, else mapclassify's 1-D k-means ``NaturalBreaks`` under a fixed seed, so
that the same data always gives the same classes) and ``equal_interval``. Fewer distinct values than classes
lower ``k`` to that number; all-equal values make one class; quantile classes that tied values leave empty are
merged into their neighbour (the subtitle and ``note`` say so: "因数值重复由 5 级合并为 4 级"), so every class shown
holds regions; missing values (NaN, a region without cases in the period) get no class and the grey
:data:`NO_DATA_COLOUR` with a "无数据" legend entry, but a region graded 不参评 gets its own entry and the darker
:data:`UNGRADED_COLOUR`. Labels and titles are zh-CN (the console's map is). Colours follow
the indicator's direction (:func:`better_when`, from the evaluation rules): red is bad, green good.

Pure parts (no database): :func:`classify`, :func:`classify_grades`, :func:`classify_indicator`,
:func:`feature_collection` and :func:`choropleth` (regions + a column → ``{"legend": …, "features": …}``).
Database parts: :func:`load_regions` (region polygons of a level) and :func:`indicator_map_json` (period → the
indicator table of :func:`gisgrid.evaluation_service.indicators` joined onto the polygons → the choropleth).
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.colormap import linear
from sqlalchemy import Connection, Engine, text

from gisgrid import history
from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import InvalidInput, Reason
from gisgrid.evaluation import (
    COLUMN_LABELS,
    LEVEL_LABELS,
    NO_CASES_REASON,
    REGION_COLUMNS,
    REGION_LEVELS,
    EvaluationRules,
    Period,
    default_rules,
)
from gisgrid.evaluation_service import calendar_warning, indicators, parse_period

#: Classing schemes (mapclassify) → Chinese name.
SCHEMES: dict[str, str] = {"quantiles": "分位数分级", "natural_breaks": "自然断点分级", "equal_interval": "等间距分级"}
#: Other spellings accepted for a scheme (``--scale quantile`` of the first static maps among them).
SCHEME_ALIASES: dict[str, str] = {
    "quantile": "quantiles",
    "natural": "natural_breaks",
    "naturalbreaks": "natural_breaks",
    "jenks": "natural_breaks",
    "fisher_jenks": "natural_breaks",
    "fisherjenks": "natural_breaks",
    "equal": "equal_interval",
    "equalinterval": "equal_interval",
}
DEFAULT_SCHEME = "quantiles"
DEFAULT_K = 5
MIN_K, MAX_K = 2, 9
#: Above this many values the exact Fisher–Jenks (pure Python without numba: O(k·n²)) gives way to k-means.
EXACT_JENKS_MAX = 200
JENKS_SEED = 20_260_701

# branca sets its ramps on `linear` with setattr, out of its type's sight: hence the ignores.
#: Sequential, light → dark: an amount with no better or worse (cases, components …).
RAMP = linear.YlOrRd_09  # type: ignore[attr-defined]
#: Indicators with a direction: red for bad, green for good (ColorBrewer RdYlGn, low → high).
GOOD_HIGH_RAMP = linear.RdYlGn_09  # type: ignore[attr-defined]
NO_DATA_COLOUR = "#e0e0e0"
NO_DATA_LABEL = "无数据"
#: A region graded 不参评 (too little of the weight has a value): darker than no data (a region without cases).
UNGRADED_COLOUR = "#9e9e9e"
#: Grade colours, best → worst (ColorBrewer RdYlGn, reversed).
GRADE_COLOURS: tuple[str, ...] = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027")
COORD_DECIMALS = 6  # ≈ 0.1 m
_POLYGON, _MULTIPOLYGON = 3, 6  # shapely type ids
SIMPLIFY_TOLERANCE = 1e-5  # degrees ≈ 1 m: below what a grid map shows, removes vertex noise

#: Region levels → Chinese name (the levels of ``GET /evaluation``).
LEVELS: dict[str, str] = {level: LEVEL_LABELS[level] for level in REGION_LEVELS}
#: Region indicators that can be mapped: every column of the region table but the keys and the grading
#: bookkeeping (unit_grids_from, weight_present, ungraded_reason), plus the ranks.
INDICATOR_COLUMNS: tuple[str, ...] = (
    *(
        c
        for c in REGION_COLUMNS
        if c not in ("subject", "level", "unit_grids_from", "weight_present", "ungraded_reason")
    ),
    "rank",
    "previous_rank",
    "rank_change",
)
CATEGORY_INDICATORS: tuple[str, ...] = ("grade",)
_ENGLISH: dict[str, str] = {
    "on_time_verify_rate": "On-time verification rate",
    "on_time_check_rate": "On-time check rate",
    "on_time_dispatch_rate": "On-time dispatch rate",
    "on_time_disposal_rate": "On-time disposal rate",
    "on_time_closure_rate": "On-time closure rate",
    "filed_per_grid_month": "Filed per grid per month",
    "supervised": "Supervision orders",
    "score": "Composite score",
}


def better_when(column: str, rules: EvaluationRules | None = None) -> str | None:
    """``"higher"``, ``"lower"`` or None: which way ``column`` is better, as the evaluation rules state it
    (``data/rules/evaluation.csv``; not written again here). A rate or score weighted as it is (按期处置率, 结案率 …)
    is better higher; one weighted as ``1-`` (返工率, 监督举报率, 漏报率) better lower; the composite ``score`` is
    better higher (the grade bands rise with it) and a rank better lower (1 is first). Other columns (counts) have
    no direction. ``rules``: the deployment's (``CaseServices.evaluation_rules``), default the package's."""
    rules = rules or default_rules()
    if column in ("rank", "previous_rank"):
        return "lower"
    if column == "score":
        lows = [lo for _, lo, _ in rules.grades if lo is not None and math.isfinite(lo)]
        return "higher" if lows and lows[0] == max(lows) else "lower"  # the first grade (A) is the best
    found = {w.complement for ws in rules.weights.values() for w in ws if w.indicator == column}
    if len(found) != 1:  # not weighted anywhere (or both ways): no stated direction
        return None
    return "lower" if found.pop() else "higher"


def ramp_colours(n: int, direction: str | None) -> tuple[str, ...]:
    """``n`` class colours from the lowest class to the highest: red (bad) → green (good) for an indicator with a
    direction, light → dark for an amount."""
    if direction is None:
        return tuple(RAMP.rgb_hex_str(float(t)) for t in np.linspace(0.08, 1, n))
    ts = np.linspace(0.04, 0.96, n)
    return tuple(GOOD_HIGH_RAMP.rgb_hex_str(float(t if direction == "higher" else 1 - t)) for t in ts)


#: How a legend says which way is better.
BETTER_LABELS: dict[str, str] = {"higher": "越高越好(绿好红差)", "lower": "越低越好(绿好红差)"}


class UnknownIndicator(InvalidInput):
    """An indicator that is not a column of the region evaluation table; the message lists the choices."""


# -- names and formats --------------------------------------------------------------------------------


def indicator_label(column: str) -> str:
    """Chinese name of an indicator column (the column itself when it has none)."""
    return COLUMN_LABELS.get(column) or column


def indicator_english(column: str) -> str:
    if column in _ENGLISH:
        return _ENGLISH[column]
    text_ = column.replace("_", " ")
    return text_[:1].upper() + text_[1:]


def indicator_title(column: str) -> str:
    """Bilingual title, ``按期处置率 On-time disposal rate`` (the static maps' heading; the console's is zh-CN)."""
    return f"{indicator_label(column)} {indicator_english(column)}"


def check_indicator(indicator: str) -> str:
    if indicator in INDICATOR_COLUMNS:
        return indicator
    choices = ", ".join(f"{c} ({indicator_label(c)})" for c in INDICATOR_COLUMNS)
    raise UnknownIndicator(
        f"indicator: {indicator!r} is not a region evaluation indicator; choose one of: {choices}",
        detail=[{"field": "indicator", "reason": "unknown indicator", "choices": list(INDICATOR_COLUMNS)}],
        reason=Reason.UNKNOWN_INDICATOR,
    )


def check_level(level: str) -> str:
    if level in LEVELS:
        return level
    raise InvalidInput(
        f"level: {level!r} is not one of {', '.join(LEVELS)}",
        detail=[{"field": "level", "reason": "unknown level", "choices": list(LEVELS)}],
        reason=Reason.LITERAL_ERROR,
    )


def scheme_name(scheme: str) -> str:
    """The canonical scheme for ``scheme`` or one of its aliases (case and ``-`` do not matter)."""
    key = scheme.strip().lower().replace("-", "_")
    key = SCHEME_ALIASES.get(key, key)
    if key in SCHEMES:
        return key
    raise InvalidInput(
        f"scheme: {scheme!r} is not one of {', '.join(SCHEMES)}",
        detail=[{"field": "scheme", "reason": "unknown scheme", "choices": list(SCHEMES)}],
        reason=Reason.LITERAL_ERROR,
    )


def check_k(k: int) -> int:
    if MIN_K <= k <= MAX_K:
        return k
    raise InvalidInput(f"k: {k} classes; use {MIN_K} to {MAX_K}", detail=[{"field": "k"}], reason=Reason.OUT_OF_RANGE)


def format_number(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.3g}"


def numbers_alike(values: np.ndarray) -> Callable[[float], str]:
    """:func:`format_number` for a set of numbers shown together (a legend): whole numbers stay whole, and when
    some are not, every number of 1 or more gets two decimals, so that one reads the same as the next."""
    v = np.asarray(values, dtype=float)
    if np.all(v == np.round(v)):
        return format_number
    return lambda x: f"{x:,.2f}" if x == 0 or abs(x) >= 1 else f"{x:.3g}"


def format_percent(x: float) -> str:
    return f"{x * 100:.1f}%"


def formatter(column: str) -> Callable[[float], str]:
    """Rates (0–1) as percentages, anything else as a number."""
    return format_percent if column.endswith("_rate") else format_number


# -- classing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegendClass:
    index: int | None  # None: no data
    label: str
    colour: str
    count: int
    lower: float | None = None
    upper: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "class": self.index,
            "label": self.label,
            "colour": self.colour,
            "count": self.count,
            "lower": self.lower,
            "upper": self.upper,
        }


@dataclass(frozen=True)
class Classes:
    """Classes of some values: numeric (``edges`` = minimum, then each class's upper bound, mapclassify's bins,
    a class holding lower < v ≤ upper; the first also holds the minimum) or categories (``categories``)."""

    scheme: str
    colours: tuple[str, ...]
    counts: tuple[int, ...]
    no_data: int
    labels: tuple[str, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    merged_from: int = 0  # the number of classes before tied, empty quantile classes were merged; 0: none merged
    ungraded: int = 0  # regions graded 不参评 (index -2), apart from no data (index -1)
    ungraded_text: str = ""  # the rules' name of that grade (不参评); "": the package's rules'

    @property
    def k(self) -> int:
        return len(self.colours)

    @property
    def ungraded_name(self) -> str:
        return self.ungraded_text or ungraded_label()

    @property
    def note(self) -> str | None:
        """Why there are fewer classes than asked for, when tied values merged some (zh-CN), else None."""
        return f"因数值重复由 {self.merged_from} 级合并为 {self.k} 级" if self.merged_from else None

    def index_of(self, values: Any) -> np.ndarray:
        """Class of each value, -1 for no data (NaN, None, an unknown category), -2 for the grade 不参评."""
        if self.categories:
            s = pd.Series(np.asarray(values, dtype=object))
            codes = pd.Categorical(s.where(s.isin(self.categories), None), categories=list(self.categories)).codes
            return np.where(s == self.ungraded_name, -2, np.asarray(codes, dtype=np.int64))
        v = _floats(values)
        out = np.full(v.shape, -1, dtype=np.int64)
        if not self.k:
            return out
        ok = np.isfinite(v)
        out[ok] = class_of(np.asarray(self.edges[1:]), v[ok])
        return out

    def palette(self) -> np.ndarray:
        """The class colours, then 不参评's and no data's: indexed by :meth:`index_of` (-2, -1 from the end)."""
        return np.array([*self.colours, UNGRADED_COLOUR, NO_DATA_COLOUR], dtype=object)

    def colours_of(self, values: Any) -> np.ndarray:
        return self.palette()[self.index_of(values)]

    def colour_of(self, value: Any) -> str:
        return str(self.colours_of([value])[0])

    def legend(self) -> list[LegendClass]:
        rows = [
            LegendClass(
                i,
                self.labels[i],
                self.colours[i],
                self.counts[i],
                self.edges[i] if self.edges else None,
                self.edges[i + 1] if self.edges else None,
            )
            for i in range(self.k)
        ]
        if self.ungraded:
            rows.append(LegendClass(None, self.ungraded_name, UNGRADED_COLOUR, self.ungraded))
        if self.no_data:
            rows.append(LegendClass(None, NO_DATA_LABEL, NO_DATA_COLOUR, self.no_data))
        return rows

    @property
    def subtitle(self) -> str:
        if self.categories:
            return f"按等级({self.k} 级)"
        if not self.k:
            return NO_DATA_LABEL
        if len(self.edges) == 2 and self.edges[0] == self.edges[1]:
            return "单一取值"
        merged = f",因数值重复由 {self.merged_from} 级合并" if self.merged_from else ""
        return f"{SCHEMES.get(self.scheme, self.scheme)}({self.k} 级{merged})"


_RNG_LOCK = threading.Lock()


def _floats(values: Any) -> np.ndarray:
    """Numbers as floats, anything else (None, NA, text) as NaN."""
    s = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce")
    return s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def class_of(bins: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The class of each value under ascending upper bounds ``bins``: the first bound at or above it — but a
    value equal to tied bounds (quantiles of many equal values) goes to the last of them, so the 100 % regions
    take the top class, not the class of the 87.5 % one below them. The classes this leaves empty are merged away
    by :func:`classify` (:func:`_drop_empty`)."""
    left = np.searchsorted(bins, values, side="left")
    right = np.searchsorted(bins, values, side="right")
    return np.clip(np.where(right > left, right - 1, left), 0, bins.size - 1)


def _bins(finite: np.ndarray, scheme: str, k: int) -> np.ndarray:
    """mapclassify's class upper bounds (ascending, the last = the maximum) for at least two distinct values."""
    import mapclassify  # scipy behind it: 1.5 s of import, paid by the first map, not by every start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Numba not installed", "not enough unique values"
        if scheme == "quantiles":
            # mapclassify.Quantiles drops tied quantiles (np.unique), and with them the class of the tied value
            # itself: with 60 % of the regions at 100 %, k=4 became 2 classes, "81.1 %–100 %" holding all of them.
            # Here the same quantiles (linear interpolation, as scipy's scoreatpercentile) keep their ties;
            # classify() then merges only the classes left empty, so the tied value keeps a class of its own.
            bins = np.quantile(finite, np.arange(1, k + 1) / k)
            bins[-1] = max(bins[-1], float(finite.max()))
            return bins
        elif scheme == "equal_interval":
            bins = mapclassify.EqualInterval(finite, k=k).bins
        elif finite.size <= EXACT_JENKS_MAX:
            bins = mapclassify.FisherJenks(finite, k=k).bins
        else:
            # NaturalBreaks is k-means on numpy's global generator: seeded here, and given back as it was.
            with _RNG_LOCK:
                state = np.random.get_state()
                np.random.seed(JENKS_SEED)
                try:
                    bins = mapclassify.NaturalBreaks(finite, k=k).bins
                finally:
                    np.random.set_state(state)
    bins = np.unique(np.asarray(bins, dtype=float))
    bins[-1] = max(bins[-1], float(finite.max()))  # float noise must not leave the maximum out
    return bins


def classify(
    values: Any,
    scheme: str = DEFAULT_SCHEME,
    k: int = DEFAULT_K,
    fmt: Callable[[float], str] = format_number,
    direction: str | None = None,
) -> Classes:
    """Numeric classes of ``values`` (NaN and non-numbers are no data), coloured by :func:`ramp_colours` for
    ``direction`` (which way is better: ``higher``, ``lower`` or None)."""
    scheme = scheme_name(scheme)
    v = _floats(values)
    finite = v[np.isfinite(v)]
    no_data = int(v.size - finite.size)
    if finite.size == 0:
        return Classes(scheme, (), (), no_data, ())
    distinct = np.unique(finite)
    if distinct.size == 1:
        only = float(distinct[0])
        colour = RAMP.rgb_hex_str(0.5) if direction is None else GOOD_HIGH_RAMP.rgb_hex_str(0.5)
        return Classes(scheme, (colour,), (int(finite.size),), no_data, (fmt(only),), (only, only))
    bins = _bins(finite, scheme, min(k, int(distinct.size)))
    merged_from = 0
    if scheme == "quantiles":
        asked = bins.size
        bins = _drop_empty(bins, finite)
        merged_from = asked if bins.size < asked else 0
    edges = np.concatenate([[float(finite.min())], bins])
    n = bins.size
    colours = ramp_colours(n, direction)
    klass = class_of(bins, finite)
    counts = tuple(int(c) for c in np.bincount(klass, minlength=n))
    # A class holds lower < v ≤ upper, but its label is the range of the values in it: counts 0, 1, 2 … read "0"
    # then "1 – 6", not "0 – 6" overlapping the zeros' class, and no class label runs into the next one's (an
    # empty class keeps its bounds).
    grouped = pd.Series(finite).groupby(klass)
    lows = np.where(counts_ := np.asarray(counts) > 0, grouped.min().reindex(range(n)).to_numpy(), edges[:-1])
    highs = np.where(counts_, grouped.max().reindex(range(n)).to_numpy(), edges[1:])
    if fmt is format_number:  # one legend, one precision: "70.00 – 80.76", "83.33 – 85.00", not "83.33 – 85"
        fmt = numbers_alike(np.concatenate([lows, highs]))
    labels = tuple(fmt(hi) if lo == hi else f"{fmt(lo)} – {fmt(hi)}" for lo, hi in zip(lows, highs, strict=True))
    return Classes(scheme, colours, counts, no_data, labels, tuple(float(e) for e in edges), merged_from=merged_from)


def _drop_empty(bins: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """``bins`` without the upper bounds of classes no value falls in (tied quantiles: "100 %(0)" beside
    "100 %(304)"). Removing an empty class moves no value to another class, so every region keeps the colour of
    the class the legend shows it in."""
    counts = np.bincount(class_of(bins, finite), minlength=bins.size)
    return bins[counts > 0]


def ungraded_label(rules: EvaluationRules | None = None) -> str:
    """The grade of a region not graded (不参评, from the evaluation rules; default the package's)."""
    return (rules or default_rules()).ungraded


def classify_grades(values: Any, rules: EvaluationRules | None = None) -> Classes:
    """The grades A–E of the evaluation rules as classes, best first (every grade listed, even when empty); 不参评
    is counted on its own (``ungraded``), anything else (no grade: no cases) as no data."""
    rules = rules or default_rules()
    grades = rules.grades
    letters = tuple(g[0] for g in grades)
    s = pd.Series(np.asarray(values, dtype=object))
    known = s.where(s.isin(letters))
    ungraded = int((s == rules.ungraded).sum())
    counts = known.value_counts()
    labels = []
    for letter, lo, hi in grades:
        if lo is None or math.isinf(lo):
            labels.append(f"{letter} (< {format_number(hi)})")
        elif hi is None or math.isinf(hi):
            labels.append(f"{letter} (≥ {format_number(lo)})")
        else:
            labels.append(f"{letter} ({format_number(lo)}–{format_number(hi)})")
    colours = tuple(GRADE_COLOURS[min(i, len(GRADE_COLOURS) - 1)] for i in range(len(letters)))
    return Classes(
        "grades",
        colours,
        tuple(int(counts.get(letter, 0)) for letter in letters),
        int(known.isna().sum()) - ungraded,
        tuple(labels),
        categories=letters,
        ungraded=ungraded,
        ungraded_text=rules.ungraded,
    )


def classify_indicator(
    values: Any,
    column: str,
    scheme: str = DEFAULT_SCHEME,
    k: int = DEFAULT_K,
    rules: EvaluationRules | None = None,
) -> Classes:
    if column in CATEGORY_INDICATORS:
        return classify_grades(values, rules)
    return classify(values, scheme, k, formatter(column), better_when(column, rules))


# -- GeoJSON ------------------------------------------------------------------------------------------


def transport_geometry(geoms: Any, tolerance: float = SIMPLIFY_TOLERANCE, decimals: int = COORD_DECIMALS) -> np.ndarray:
    """GeoJSON-ready geometry, all at once: rounded to ``decimals``, then simplified within ``tolerance`` (topology
    kept within each polygon), then in RFC 7946 §3.1.6 orientation (exterior rings counter-clockwise, holes
    clockwise, whatever the stored orientation).

    Simplifying after rounding keeps only rounded vertices and drops those the rounding repeated (tolerance 0 drops
    only repeated and collinear ones); the topology-preserving simplifier never collapses a ring, so no ring
    becomes invalid or empty. Points pass unchanged but for the rounding."""
    arr = shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c, decimals))
    out = shapely.simplify(arr, max(tolerance, 0.0), preserve_topology=True)
    # GEOS gives a one-part MultiPolygon back as a Polygon: keep the stored type.
    demoted = np.flatnonzero((shapely.get_type_id(arr) == _MULTIPOLYGON) & (shapely.get_type_id(out) == _POLYGON))
    if len(demoted):
        out[demoted] = shapely.multipolygons(out[demoted], indices=np.arange(len(demoted)))
    return shapely.orient_polygons(out)


def geometry_texts(geoms: Any, tolerance: float = SIMPLIFY_TOLERANCE, decimals: int = COORD_DECIMALS) -> list[str]:
    """The GeoJSON text of each geometry's :func:`transport_geometry` ("null" for none), through GEOS in one call."""
    texts = shapely.to_geojson(transport_geometry(geoms, tolerance, decimals))
    return [t if t is not None else "null" for t in texts]


def feature_collection_text(
    frame: pd.DataFrame, geometry: Sequence[str], *, id_column: str = "code", geometry_column: str | None = None
) -> str:
    """A GeoJSON FeatureCollection as JSON text: the properties of ``frame``'s rows (but ``geometry_column``; NaN
    and NA as null), ids from ``id_column``, and ``geometry`` — each row's GeoJSON text, put in as it is (a map of
    40 000 unit grids is 15 MB of coordinates: parsed and written again, they cost seconds of CPU per request)."""
    props = pd.DataFrame(frame.drop(columns=[geometry_column] if geometry_column else []))
    records = json.loads(props.to_json(orient="records", double_precision=15, force_ascii=False))
    ids = frame[id_column].astype(str).tolist()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    features = ",".join(
        f'{{"type":"Feature","id":{dumps(i)},"properties":{dumps(p)},"geometry":{g}}}'
        for i, p, g in zip(ids, records, geometry, strict=True)
    )
    return f'{{"type":"FeatureCollection","features":[{features}]}}'


def feature_collection(
    gdf: gpd.GeoDataFrame,
    *,
    id_column: str = "code",
    tolerance: float = SIMPLIFY_TOLERANCE,
    decimals: int = COORD_DECIMALS,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (ids from ``id_column``; NaN and NA as null) with transport geometry.

    Geometry goes through GEOS in one call (``shapely.to_geojson``), properties through pandas' JSON writer:
    geopandas' ``to_json`` builds every feature in Python, ten times slower for 20 000 unit grids."""
    texts = geometry_texts(gdf.geometry.to_numpy(), tolerance, decimals)
    return json.loads(feature_collection_text(gdf, texts, id_column=id_column, geometry_column=gdf.geometry.name))


def choropleth(
    regions: gpd.GeoDataFrame,
    column: str,
    *,
    scheme: str = DEFAULT_SCHEME,
    k: int = DEFAULT_K,
    properties: Sequence[str] = ("code", "name"),
    tolerance: float = SIMPLIFY_TOLERANCE,
    decimals: int = COORD_DECIMALS,
    rules: EvaluationRules | None = None,
) -> dict[str, Any]:
    """:func:`classed_regions` of ``regions`` with their features (a FeatureCollection of transport geometry)."""
    meta, out = classed_regions(regions, column, scheme=scheme, k=k, properties=properties, rules=rules)
    texts = geometry_texts(regions.geometry.to_numpy(), tolerance, decimals)
    return {**meta, "features": json.loads(feature_collection_text(out, texts))}


def classed_regions(
    regions: pd.DataFrame,
    column: str,
    *,
    scheme: str = DEFAULT_SCHEME,
    k: int = DEFAULT_K,
    properties: Sequence[str] = ("code", "name"),
    rules: EvaluationRules | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Regions classed by ``column``: ``({"scheme", "k", "subtitle", "note", "better", "breaks", "legend"}, rows)``
    (``better``: which way is better, see :func:`better_when`; ``note``: why there are fewer classes than asked
    for, or null); ``rows``, one per region in order, the properties of its feature.

    Each row carries ``properties`` plus ``value``, ``value_label``, ``class`` (legend index, null for no
    data) and ``colour``; ``legend`` lists the classes (label, colour, count, lower, upper) then, when some
    region is graded 不参评 (``grade`` column) and has no value, the 不参评 entry, then, when some other region has
    no value, the no-data entry; ``breaks`` = the class edges (minimum, then upper bounds)."""
    for needed in ("code", column):
        if needed not in regions.columns:
            raise InvalidInput(
                f"{needed!r} is not a column of the regions",
                detail=[{"field": "indicator"}],
                reason=Reason.UNKNOWN_INDICATOR,
            )
    classes = classify_indicator(regions[column], column, scheme, k, rules)
    ungraded = ungraded_label(rules)
    fmt = formatter(column)
    values = regions[column]
    index = classes.index_of(values)
    if column in CATEGORY_INDICATORS:
        value_label = values.astype(object).where(values.notna(), None)
    else:
        num = pd.to_numeric(values, errors="coerce")
        value_label = num.map(fmt, na_action="ignore").astype(object).where(num.notna(), None)
        if "grade" in regions.columns:
            # A region graded 不参评 has no score (and may lack other values): say so, apart from no cases.
            skipped = (regions["grade"] == ungraded).to_numpy(dtype=bool) & (index == -1)
            if n := int(skipped.sum()):
                index = np.where(skipped, -2, index)
                value_label = value_label.where(~skipped, ungraded)
                classes = replace(classes, no_data=classes.no_data - n, ungraded=n, ungraded_text=ungraded)
    keep = list(dict.fromkeys(["code", *(c for c in properties if c in regions.columns)]))
    out = pd.DataFrame(
        regions[keep].assign(
            value=values.array,
            value_label=value_label.to_numpy(),
            # numpy's stubs take no None scalar (np.where makes an object array of it)
            **{"class": pd.array(np.where(index >= 0, index, None), dtype="Int64")},  # type: ignore[call-overload]
            colour=classes.palette()[index],
        )
    )
    meta = {
        "scheme": classes.scheme,
        "k": classes.k,
        "subtitle": classes.subtitle,
        "note": classes.note,
        "better": None if column in CATEGORY_INDICATORS else better_when(column, rules),
        "breaks": list(classes.edges),
        "legend": [row.as_dict() for row in classes.legend()],
    }
    return meta, out


# -- from the database --------------------------------------------------------------------------------


def load_regions(conn: Connection, level: str) -> gpd.GeoDataFrame:
    """Code, name and polygon of every region of ``level`` (EPSG:4490); the polygons decoded in one call
    (geopandas' ``read_postgis`` decodes them one by one)."""
    frame = pd.read_sql(text(history.region_sql(check_level(level), geom=True)), conn)
    geometry = shapely.from_wkb(frame.pop("geom").to_numpy())
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=STORAGE_SRID)


@dataclass(frozen=True)
class RegionShapes:
    """The regions of a level as a map sends them: code and name in code order, and each region's transport
    geometry as GeoJSON text; ``fingerprint`` names the stored regions they were made from."""

    fingerprint: str
    regions: pd.DataFrame
    geometry: list[str]


#: The regions' shapes per (database, level, tolerance, decimals), the most recently used last: reading and
#: simplifying 40 000 unit grids costs a second or more, and the grids change only when they are regenerated.
_SHAPES: dict[tuple[str, str, float, int], RegionShapes] = {}
_SHAPES_MAX = 8
_SHAPES_LOCK = threading.Lock()


def region_fingerprint(conn: Connection, level: str) -> str:
    """A digest of every region of ``level``'s code, name and geometry: it changes whenever one of them does
    (~0.15 s for 40 000 unit grids, against ~1.5 s to read and simplify them)."""
    regions = history.region_sql(check_level(level), geom=True)
    digest = conn.execute(
        text(
            "SELECT md5(string_agg(r.code || ':' || coalesce(r.name, '') || ':' || md5(ST_AsBinary(r.geom)), ',' "
            f"ORDER BY r.code)) FROM ({regions}) r"
        )
    ).scalar_one()
    return digest or ""


def region_shapes(
    conn: Connection, level: str, tolerance: float = SIMPLIFY_TOLERANCE, decimals: int = COORD_DECIMALS
) -> RegionShapes:
    """The regions of ``level`` as :class:`RegionShapes`, made again only when the stored regions changed since
    (their fingerprint, read first: a change landing while they are read is found by the next call)."""
    key = (str(conn.engine.url), level, tolerance, decimals)
    fingerprint = region_fingerprint(conn, level)
    with _SHAPES_LOCK:
        shapes = _SHAPES.pop(key, None)
        if shapes is not None and shapes.fingerprint == fingerprint:
            _SHAPES[key] = shapes  # the most recently used, last
            return shapes
    gdf = load_regions(conn, level)
    shapes = RegionShapes(
        fingerprint, pd.DataFrame(gdf[["code", "name"]]), geometry_texts(gdf.geometry.to_numpy(), tolerance, decimals)
    )
    with _SHAPES_LOCK:
        _SHAPES[key] = shapes
        while len(_SHAPES) > _SHAPES_MAX:
            del _SHAPES[next(iter(_SHAPES))]
    return shapes


def parse_period_param(period: str | Period) -> Period:
    """A period from its text (refused by :func:`~gisgrid.evaluation_service.parse_period`, naming ``period``)."""
    return period if isinstance(period, Period) else parse_period(period)


@contextmanager
def no_cases_named(period: Period) -> Iterator[None]:
    """A period without cases refused by the ``period`` parameter (``{message, items}``), as its other refusals
    are: the evaluation's and the risks' own refusal names no field."""
    try:
        yield
    except InvalidInput as exc:
        if exc.reason != Reason.NO_CASES_IN_PERIOD:
            raise
        zh, _, en = exc.message.rpartition(" / ")  # zh-CN first (review49 F10): the English names the parameter
        en = en if en.startswith("period: ") else f"period: {en}"
        message = f"{zh} / {en}" if zh else en
        raise InvalidInput(message, detail=[{"field": "period", "value": period.shown}], reason=exc.reason) from None


def indicator_regions(
    engine: Engine, services: Any, period: str | Period, level: str, indicator: str, as_of: Any = None
) -> tuple[gpd.GeoDataFrame, Period]:
    """Every region of ``level`` with ``indicator``, score, grade and rank for ``period`` judged as of ``as_of``
    (default now, see :func:`gisgrid.evaluation_service.resolve_as_of`; ``gdf.attrs`` state ``as_of``,
    ``provisional`` and ``unknown_years`` as the table's), NaN where the region had no case. Checks the indicator
    and level first, so a mistake costs no evaluation."""
    table, p = indicator_table(engine, services, period, level, indicator, as_of=as_of)
    with engine.connect() as conn:
        regions = load_regions(conn, level)
    gdf = gpd.GeoDataFrame(regions.merge(table, on="code", how="left"), geometry="geometry", crs=regions.crs)
    gdf.attrs.update({k: table.attrs[k] for k in ("as_of", "provisional", "unknown_years")})
    return gdf, p


def indicator_table(
    engine: Engine, services: Any, period: str | Period, level: str, indicator: str, as_of: Any = None
) -> tuple[pd.DataFrame, Period]:
    """The region table of ``level`` for ``period``: code, ``indicator``, score, grade and rank of each region
    with cases (``attrs`` as :func:`gisgrid.evaluation_service.indicators`' table)."""
    check_indicator(indicator)
    check_level(level)
    p = parse_period_param(period)
    with no_cases_named(p):
        table = indicators(engine, services, p, "region", level, as_of=as_of)
    # A region without a case is 无数据 on the map (its own legend entry), not one of the 不参评 regions that had
    # cases: the table lists it (本期无案件) for the officer's sheet.
    table = table[table["ungraded_reason"] != NO_CASES_REASON]
    cols = list(dict.fromkeys([indicator, "score", "grade", "rank"]))
    table = table.reindex(columns=["subject", *cols]).rename(columns={"subject": "code"})
    table["code"] = table["code"].astype(str)
    return table, p


def indicator_map_json(
    engine: Engine,
    services: Any,
    *,
    period: str | Period,
    indicator: str,
    level: str = "tier3",
    scheme: str = DEFAULT_SCHEME,
    k: int = DEFAULT_K,
    tolerance: float = SIMPLIFY_TOLERANCE,
    as_of: Any = None,
) -> str:
    """The console's choropleth of one indicator (``GET /evaluation/map``) as JSON text: metadata (``as_of``: the
    evaluation time used, ISO 8601; ``provisional``: judged before the period ended; ``calendar_warning``: as
    ``GET /evaluation``'s, also added to ``note``), ``legend`` (see :func:`classed_regions`) and ``features``, whose
    geometry comes from :func:`region_shapes` (made once while the regions stay as they are) and is put in as it
    is, not parsed and written again."""
    scheme = scheme_name(scheme)
    check_k(k)
    table, p = indicator_table(engine, services, period, level, indicator, as_of=as_of)
    with engine.connect() as conn:
        shapes = region_shapes(conn, level, tolerance)
    regions = shapes.regions.merge(table, on="code", how="left")  # a left merge keeps the regions' order
    body, rows = classed_regions(
        regions,
        indicator,
        scheme=scheme,
        k=k,
        properties=("code", "name", "score", "grade", "rank"),
        rules=services.evaluation_rules,  # the city's grade bands and 不参评, as its evaluation
    )
    warning = calendar_warning(table.attrs["unknown_years"])
    notes = [n for n in (body["note"], warning) if n]
    meta = {
        "period": p.label,
        "as_of": table.attrs["as_of"].isoformat(),
        "provisional": table.attrs["provisional"],
        "calendar_warning": warning,
        "level": level,
        "level_label": LEVELS[level],
        "indicator": indicator,
        "indicator_label": indicator_label(indicator),
        "title": indicator_label(indicator),  # zh-CN, as the rest of the console
        "title_en": indicator_english(indicator),
        "better_label": BETTER_LABELS.get(body["better"] or ""),
        **body,
        "note": "；".join(notes) if notes else None,
    }
    head = json.dumps(meta, ensure_ascii=False, separators=(",", ":"), allow_nan=False)  # as JSONResponse
    return f'{head[:-1]},"features":{feature_collection_text(rows, shapes.geometry)}}}'
