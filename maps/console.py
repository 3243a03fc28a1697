"""The operator map console (指挥中心地图): one zh-CN page built with folium, no request off its origin.

Layers: unit grids and the three management tiers as vector tiles (``/tiles/<layer>/{z}/{x}/{y}.mvt``, styled
under the same layer names ``ST_AsMVT`` gives them); components by zoom — counts per unit grid as tiles
(``component_cells``) at zoom 13–15, single components as tiles at 16, clustered points from ``/components`` at 17+;
cases as a folium ``Realtime`` layer polling ``/cases?format=geojson&limit=1000`` every 10 s, filled with the
traffic light and ringed with the state; a heat map of the filtered cases over the chosen period (``/cases/heat``);
an optional basemap (``maps.basemap``).
A plain HTML/CSS/JS side panel (maps/pagesrc: console-panel.html, console.css, console.js) lists the cases with
filters and light counts, shows one case's detail and its allowed actions for the role chosen in the panel, and
reports the API's own messages (422, 403, 409 …).
Clicking the map asks ``/grids/locate`` which unit grid, tiers and 网格长 are there (server-side identify) and
``/cases`` for the grid's open cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from folium import plugins
from folium.template import Template
from folium.utilities import JsCode
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from gisgrid.case_queries import GRID_FILTER_COLUMNS
from gisgrid.cases import PHOTO_KIND_LABELS, SOURCES, TEXT_LIMITS
from gisgrid.catalogue import SCHEMES
from gisgrid.documents import DOCUMENT_LABELS
from gisgrid.evaluation import SUBJECTS
from gisgrid.evaluation_service import PROVISIONAL_ZH
from gisgrid.events import EventCatalogue
from gisgrid.photos import EVIDENCE_FAR_M, EVIDENCE_OLD_S, MAX_GPS_ERROR_M
from gisgrid.settings import DEFAULT_CENTER_NAME
from gisgrid.workflow import ROLES, TERMINAL_STATES
from maps import pagesrc
from maps.assets import use_local_assets, with_root
from maps.basemap import SHIFT_JS, Basemap, gcj02_shift_table
from maps.pagejs import (
    DOM_JS,
    LAYERS_TITLE,
    LIGHT_COLOURS,
    LIGHT_LABELS,
    MapChrome,
    attr,
    json_for_script,
    light_css,
    load_reason_texts,
)

#: The page's title: the city's 监督指挥中心 (GISGRID_CENTER_NAME) first, as on the start page and its orders.
TITLE = "{center} · 指挥地图"
POLL_MS = 10_000
CASES_LIMIT = 1000
DEFAULT_CENTER = (34.75, 113.65)  # lat, lon: used only while no boundaries are loaded
#: The role the panel starts with (an operator's, 受理员) until the browser remembers the last one chosen.
DEFAULT_ROLE = "intake"
#: The operator name (操作人) the panel starts with until the browser remembers the one typed last.
#: The class list's note on a class of the CJ/T 214 era catalogue (a code of 4 digits; cases imported from an older
#: system may carry them).
CURRENT_SCHEME = SCHEMES[0]
LEGACY_SCHEME_LABEL = "CJ/T 214 旧类别"
#: Said in an action's form when 操作人 is empty: each step is signed with the name and the evaluation ranks posts by
#: it, so no step is taken under a placeholder (review48 F7: "值班员" was credited as a person).
ACTOR_MISSING = "操作人:必填,请在顶部「操作人」填写您的姓名(办理记录以此署名,考核按人统计)"
#: The grid filter's codes in words, by the case column each length names (gisgrid.case_queries.GRID_FILTER_COLUMNS).
GRID_CODE_WORDS = {"street_code": "街道", "community_code": "社区", "tier3_code": "三级", "unit_grid_code": "单元"}
#: The evaluation tables the console downloads (``GET /evaluation`` subjects): regions at the form's level, the
#: departments, each post (网格员 beside 监督员).
EVAL_TABLES = {
    k: SUBJECTS.get(k) or ROLES[k]
    for k in ("region", "department", "supervisor", "grid_worker", "intake", "shift_lead", "dispatcher")
} | {"region": SUBJECTS["region"] + "(按所选层级)"}
#: The evaluation form's period spans: the month chosen, its quarter or its year (``GET /evaluation`` periods
#: 2026-10, 2026-Q4, 2026).
EVAL_SPANS = {"month": "按月", "quarter": "按季度(所选月份所在季度)", "year": "按年"}
#: What the evaluation form's 评价时点 means (its title): empty = now, and a fixed moment keeps a sheet unchanged.
AS_OF_TITLE = (
    "评价时点:按此时点的办理记录评价(北京时间);留空为当前时间。发布考核结果请固定评价时点(如次月第 3 个工作日 "
    "00:00),再次下载的表格数字不变"
)
#: A map click outside the district's grids (the API's 404 speaks of a report's location: datum, photo …).
OUTSIDE_CLICK_TEXT = "此处不在本区网格范围内"
#: The fourth count beside the lights: 挂账 cases have no light (their clock is stopped), so the four add up to the
#: open cases of the filter (``/cases/lights`` ``suspended``).
SUSPENDED_LABEL = "挂账(暂停计时)"
#: The list's orders: by light (red first; within one page of the answer) or newest report first (the API's
#: own order, so it holds across pages).
LIST_SORTS = {"light": "按灯色(最紧迫优先)", "newest": "最新上报优先"}
#: What the list, its count and the map say while the filter is refused (the old answer is not the filter's).
FILTER_REFUSED_TEXT = "筛选条件未被接受:列表与地图未显示案件。请修改条件后按「筛选」,或按「清除」。"
#: Content-Security-Policy for the page: everything from this origin (basemap origin added when configured), inline
#: scripts only with the request's nonce; its
#: frame-ancestors comes from GISGRID_FRAME_ANCESTORS, merged in by api.http.HardeningHeaders (a portal may frame it).
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:{img}; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'self'; form-action 'self'"
)

#: URL layer, label, style of its MVT layer (JS), shown at start, z-index, min zoom shown (unit grids are ~100 m
#: cells: a few pixels each below zoom 14, and a z12 tile of a city district holds thousands of them).
GRID_LAYERS: tuple[tuple[str, str, str, bool, int, int], ...] = (
    ("unit_grids", "单元网格(放大后显示)", "{weight: 0.6, color: '#78909c', opacity: 0.9, fill: false}", True, 10, 14),
    ("tier3", "三级网格", "{weight: 1.6, color: '#8e24aa', opacity: 0.9, dashArray: '5 4', fill: false}", False, 11, 0),
    ("tier2", "二级网格(社区)", "{weight: 2.2, color: '#1e88e5', opacity: 0.9, fill: false}", True, 12, 0),
    ("tier1", "一级网格(街道)", "{weight: 3, color: '#e53935', opacity: 0.85, fill: false}", True, 13, 0),
)
#: Components by zoom: counts per unit grid from CELLS_MIN up to CELLS_MAX (a z12 tile of them is ~130 KB),
#: single points as tiles up to POINT_TILES_MAX, clustered points (GeoJSON of the view, at most CLUSTER_LIMIT)
#: above. A z13 tile of the urban core holds ~100,000 components: one by one it is neither fast nor readable.
COMPONENT_CELLS_MIN_ZOOM = 13
COMPONENT_CELLS_MAX_ZOOM = 15
COMPONENT_POINT_TILES_MAX_ZOOM = 16
COMPONENT_CLUSTER_LIMIT = 5000
#: The heat map's default period when the panel names none.
HEAT_DEFAULT_DAYS = 30
#: Leaflet pane of a GCJ-02 basemap (moved under the overlays).
BASEMAP_PANE = "gg-basemap"
#: A case marker is filled with its traffic light and ringed with its state's colour (closed ones grey on grey).
STATE_COLOURS = {  # hues apart from each other and from the lights' green, yellow and red fills
    "reported": "#1f77b4",
    "verified": "#17becf",
    "filed": "#9467bd",
    "dispatched": "#000000",
    "returned": "#e377c2",
    "handled": "#8c564b",
    "checked": "#393b79",
    "suspended": "#ff7f0e",  # on the white fill of a case without a running clock
    "closed": "#616161",
    "rejected": "#a0a0a0",
    "voided": "#c8c8c8",
}


class _Raw(Element):
    """An element emitted exactly as given (our CSS/JS contains braces Jinja must not read)."""

    def __init__(self, raw: str) -> None:
        super().__init__()
        self.raw = raw

    def render(self, **kwargs: Any) -> str:
        return self.raw


class _Init(MacroElement):
    """Hands the map, the case layer and the vector layers to the panel script, after all layers exist."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            GG.init({
                map: {{ this._parent.get_name() }},
                cases: {{ this.cases.get_name() }},
                components: {{ this.components.get_name() }},
                componentCells: {{ this.cells.get_name() }},
                componentPoints: {{ this.points.get_name() }},
                componentCluster: {{ this.cluster.get_name() }},
                heat: {{ this.heat.get_name() }}
            });
        {% endmacro %}
        """
    )

    def __init__(
        self, cases: Element, components: Element, cells: Element, points: Element, cluster: Element, heat: Element
    ) -> None:
        super().__init__()
        self._name = "GisgridConsoleInit"
        self.cases = cases
        self.components = components
        self.cells = cells
        self.points = points
        self.cluster = cluster
        self.heat = heat


class _FitNow(MacroElement):
    """Fit the district before any layer exists, without animation: an animated fit from the start zoom makes
    every tile layer fetch (and throw away) a full set of tiles at that zoom first."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.invalidateSize(false);
            {{ this._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {animate: false});
        {% endmacro %}
        """
    )

    def __init__(self, bounds: list[list[float]]) -> None:
        super().__init__()
        self._name = "FitNow"
        self.bounds = bounds


def coverage_bounds(conn: Connection) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) of the loaded boundaries, None when none (or no database)."""
    try:
        row = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) AS e FROM admin_units) s"
            )
        ).one()
    except SQLAlchemyError:
        return None
    return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _vector_options(
    layer: str, style: str, z_index: int, *, interactive: bool, min_zoom: int = 0, max_zoom: int = 22
) -> str:
    parts = [
        "rendererFactory: L.canvas.tile",
        f"interactive: {'true' if interactive else 'false'}",
        f"maxNativeZoom: {max_zoom}",
        f"maxZoom: {max_zoom}",
        f"minZoom: {min_zoom}",
        f"zIndex: {z_index}",
        f"vectorTileLayerStyles: {{ {layer}: {style} }}",
    ]
    if interactive:
        parts.append("getFeatureId: function (f) { return f.properties.id; }")
    return "{" + ", ".join(parts) + "}"


def grid_code_lengths() -> str:
    """The grid filter's code lengths in zh-CN: 街道 9 位、社区 12 位、三级 14 位、单元 15 位."""
    return "、".join(f"{GRID_CODE_WORDS[col]} {n} 位" for n, col in sorted(GRID_FILTER_COLUMNS.items()))


def _grid_length_template() -> str:
    lengths = sorted(GRID_FILTER_COLUMNS)
    valid = "、".join(str(n) for n in lengths[:-1]) + f" 或 {lengths[-1]}"
    return f"网格:编码「#CODE#」为 #N# 位数字,应为 {valid} 位({grid_code_lengths()})"


def grid_length_error(code: str) -> str:
    """The grid filter's refusal of digits of no tier's length: how many were typed and which lengths are valid
    (网格:编码「4199010」为 7 位数字,应为 9、12、14 或 15 位(街道 9 位、…)); the page says the same."""
    return _grid_length_template().replace("#CODE#", code).replace("#N#", str(len(code)))


def event_classes(events: EventCatalogue, time_units: Mapping[str, str]) -> list[dict[str, Any]]:
    """The event catalogue as the panel uses it (class filter by name, 处置方式 of the dispatch form): code, name,
    big class and the disposal types with their limits (``默认`` first when a class has it). The current standard's
    classes (GB/T 47678) first, the CJ/T 214 era's after them (review48 F3: listed first, a legacy class found
    none of a district's cases)."""
    out = []
    for scheme in (s for s in SCHEMES if s in events.by_scheme):
        for c in sorted(events.classes(scheme).values(), key=lambda c: c.code):
            types = [
                {
                    "type": lim.disposal_type,
                    "limit": f"{lim.limit:g} {time_units.get(lim.unit, lim.unit)}",
                    "urgent": lim.urgent,
                }
                for lim in events.limits(scheme, c.code)
            ]
            out.append({"code": c.code, "scheme": scheme, "name": c.name, "big": c.big_name, "types": types})
    return out


def build_console(
    *,
    bounds: tuple[float, float, float, float] | None,
    states: Mapping[str, str],
    roles: Mapping[str, str],
    actions: Mapping[str, str],
    required: Mapping[str, Sequence[str]],
    field_labels: Mapping[str, str],
    departments: Mapping[str, str],
    indicators: Mapping[str, str] | None = None,
    basemap: Basemap | None = None,
    optional: Mapping[str, Sequence[str]] | None = None,
    field_kinds: Mapping[str, str] | None = None,
    time_units: Mapping[str, str] | None = None,
    escalation_levels: Mapping[int, str] | None = None,
    classes: Sequence[Mapping[str, Any]] = (),
    reason_texts: Mapping[str, str] | None = None,
    base: str = "",
    sources: Mapping[str, str] = SOURCES,
    center_name: str = DEFAULT_CENTER_NAME,
) -> str:
    """The console page (HTML). Vocabulary (states, roles, actions, the payload fields each action takes and their
    kinds …) comes from the caller (gisgrid.workflow); ``classes`` from :func:`event_classes`; ``reason_texts``
    (the zh-CN of refusals' reason codes) from :func:`maps.pagejs.load_reason_texts`, the project's by default.
    ``base``: the path prefix the service is served under (``/gisgrid`` behind a proxy, else ""), before every URL
    the page asks. ``center_name``: the city's 监督指挥中心 (GISGRID_CENTER_NAME), in the title and the panel's head."""
    use_local_assets()
    figure = Figure(title=attr(TITLE.format(center=center_name)))  # branca writes it unescaped
    if bounds is None:
        center, zoom = DEFAULT_CENTER, 12
    else:
        center, zoom = ((bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2), 14
    m = folium.Map(location=center, zoom_start=zoom, tiles=None, max_zoom=22)
    # The map's own zoom range: without it Leaflet clamps the view to the first added layer's minZoom
    # (unit grids: 14) and the district never shows whole. (folium passes min_zoom only to its tile layer.)
    m.options["minZoom"] = 5
    m.options["maxZoom"] = 22
    m.add_to(figure)
    MapChrome().add_to(m)  # metric scale bar, no Leaflet prefix
    if bounds is not None:
        _FitNow([[bounds[1], bounds[0]], [bounds[3], bounds[2]]]).add_to(m)
    shift = None
    if basemap is not None:
        options: dict[str, Any] = {}
        if basemap.datum == "gcj02":  # its own pane, which the page moves by the GCJ-02 offset of the view
            folium.map.CustomPane(BASEMAP_PANE, z_index=150, pointer_events=False).add_to(m)
            options["pane"] = BASEMAP_PANE
            shift = gcj02_shift_table(bounds or (DEFAULT_CENTER[1], DEFAULT_CENTER[0]) * 2)
        for source in basemap.sources:
            folium.TileLayer(
                source.url,
                attr=basemap.attribution,
                name="底图注记" if source.overlay else "底图",
                overlay=source.overlay,
                control=not source.overlay,
                subdomains=basemap.subdomains,
                max_zoom=22,
                **options,
            ).add_to(m)

    for layer, label, style, show, z_index, min_zoom in GRID_LAYERS:
        plugins.VectorGridProtobuf(
            f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt",
            label,
            _vector_options(layer, style, z_index, interactive=False, min_zoom=min_zoom),
            show=show,
        ).add_to(m)
    # One entry in the layer control; what it draws depends on the zoom (see COMPONENT_* above).
    components = folium.FeatureGroup(name="城市部件", show=False)
    components.add_to(m)
    cells = plugins.VectorGridProtobuf(
        f"{base}/tiles/component_cells/{{z}}/{{x}}/{{y}}.mvt",
        "部件密度",
        _vector_options(
            "component_cells",
            "function (p) { return GG.cellStyle(p); }",
            14,
            interactive=True,
            min_zoom=COMPONENT_CELLS_MIN_ZOOM,
            max_zoom=COMPONENT_CELLS_MAX_ZOOM,
        ),
        control=False,
    )
    cells.add_to(components)
    points = plugins.VectorGridProtobuf(
        f"{base}/tiles/components/{{z}}/{{x}}/{{y}}.mvt",
        "部件",
        _vector_options(
            "components",
            "function (p) { return GG.componentStyle(p); }",
            14,
            interactive=True,
            min_zoom=COMPONENT_CELLS_MAX_ZOOM + 1,
            max_zoom=COMPONENT_POINT_TILES_MAX_ZOOM,
        ),
        control=False,
    )
    points.add_to(components)
    cluster = plugins.MarkerCluster(control=False, options={"chunkedLoading": True, "maxClusterRadius": 40})
    cluster.add_to(components)
    heat = plugins.HeatMap([], name="案件热力图(按筛选时段)", show=False, radius=18, blur=15, min_opacity=0.3)
    heat.add_to(m)

    cases = plugins.Realtime(
        JsCode("function (ok, err) { GG.fetchCases(ok, err); }"),
        interval=POLL_MS,
        get_feature_id="function (f) { return f.properties.id; }",
        remove_missing=True,
        log_errors=False,  # the panel shows why a poll was refused
        point_to_layer=JsCode("function (f, latlng) { return GG.caseMarker(f, latlng); }"),
        style=JsCode("function (f) { return GG.caseStyle(f); }"),
        on_each_feature=JsCode("function (f, layer) { GG.bindCase(f, layer); }"),
    )
    cases.layer_name = "案件(实时)"
    cases.add_to(m)
    folium.LayerControl(position="topleft", collapsed=False).add_to(m)
    _Init(cases, components, cells, points, cluster, heat).add_to(m)

    config = {
        "base": base,  # the panel's API requests: C.base + "/cases…"
        "actorMissing": ACTOR_MISSING,
        "gridCodeLengths": sorted(GRID_FILTER_COLUMNS),
        "gridCodeError": f"网格:请填网格编码({grid_code_lengths()}的数字),不能按名称查找",
        "gridLengthError": _grid_length_template(),
        "filterRefused": FILTER_REFUSED_TEXT,
        "states": dict(states),
        "roles": dict(roles),
        "actions": dict(actions),
        "required": {k: list(v) for k, v in required.items()},
        "optional": {k: list(v) for k, v in (optional or {}).items() if v},
        "fieldLabels": dict(field_labels),
        "fieldKinds": dict(field_kinds or {}),
        "timeUnits": dict(time_units or {}),
        "escalationLevels": {str(k): v for k, v in (escalation_levels or {}).items()},
        "provisional": PROVISIONAL_ZH,  # the evaluation legend's mark of figures judged before the period ended
        "classes": {c["code"]: {"name": c["name"], "scheme": c["scheme"], "types": c["types"]} for c in classes},
        "departments": dict(departments),
        "casesLimit": CASES_LIMIT,
        "pollSeconds": POLL_MS // 1000,
        "clusterMinZoom": COMPONENT_POINT_TILES_MAX_ZOOM + 1,
        "clusterLimit": COMPONENT_CLUSTER_LIMIT,
        "heatDefaultDays": HEAT_DEFAULT_DAYS,
        "openStates": [s for s in states if s not in TERMINAL_STATES],
        "maxGpsErrorM": MAX_GPS_ERROR_M,  # a reported accuracy above it is flagged in the case's detail
        "stateColours": dict(STATE_COLOURS),
        "lightColours": LIGHT_COLOURS,
        "lightLabels": LIGHT_LABELS,
        "basemapPane": BASEMAP_PANE,
        "basemapShift": shift,
        "zhReasons": dict(load_reason_texts() if reason_texts is None else reason_texts),
        "sources": dict(sources),
        "documentLabels": DOCUMENT_LABELS,
        "photoKinds": PHOTO_KIND_LABELS,
        "evidence": {"oldMs": EVIDENCE_OLD_S * 1000, "farM": EVIDENCE_FAR_M},
        "textLimits": dict(TEXT_LIMITS),
        "layersTitle": LAYERS_TITLE,
        "outsideClick": OUTSIDE_CLICK_TEXT,  # an action's texts stop at the service's limit instead of being refused
    }
    figure.header.add_child(_Raw('<link rel="icon" href="data:,">'), name="gisgrid_no_favicon")  # no /favicon.ico
    figure.header.add_child(_Raw(f"<style>{PANEL_CSS}</style>"), name="gisgrid_console_css")
    figure.html.add_child(
        _Raw(
            _panel_html(
                states, roles, departments, indicators or {}, classes, sources, escalation_levels or {}, center_name
            )
        ),
        name="gisgrid_console_panel",
    )
    figure.html.add_child(
        _Raw(f"<script>window.GG_CONFIG = {json_for_script(config)};\n{PANEL_JS}</script>"),
        name="gisgrid_console_js",
    )
    html = with_root(figure.render(), base)  # folium's (class-level) asset links, under the prefix
    return html.replace("<html>", '<html lang="zh-CN">', 1)


def csp(basemap: Basemap | None, nonce: str) -> str:
    """The page's Content-Security-Policy (a basemap's hosts, each {s} subdomain named, for images only): scripts
    from this origin and the inline ones carrying ``nonce`` (:func:`api.http.nonced`), no other inline script."""
    return CSP.format(img="".join(f" {host}" for host in basemap.hosts) if basemap else "", nonce=nonce)


def _options(values: Mapping[str, str], all_label: str | None, selected: str | None = None) -> str:
    opts = [f'<option value="">{all_label}</option>'] if all_label is not None else []
    opts += [
        f'<option value="{attr(k)}"{" selected" if k == selected else ""}>{attr(v)}</option>' for k, v in values.items()
    ]
    return "".join(opts)


def _panel_html(
    states: Mapping[str, str],
    roles: Mapping[str, str],
    departments: Mapping[str, str],
    indicators: Mapping[str, str],
    classes: Sequence[Mapping[str, Any]] = (),
    sources: Mapping[str, str] | None = None,
    escalation_levels: Mapping[int, str] | None = None,
    center_name: str = DEFAULT_CENTER_NAME,
) -> str:
    role_options = _options(roles, None, DEFAULT_ROLE)
    dept_options = _options(departments, "请选择所属部门")  # none preselected: a handler says which is theirs
    grid_placeholder = "编码:" + "/".join(f"{GRID_CODE_WORDS[c]}{n}位" for n, c in sorted(GRID_FILTER_COLUMNS.items()))
    escalated = {str(k): f"已提级至{v}" for k, v in sorted((escalation_levels or {}).items()) if k < 3}
    open_states = [s for s in states if s not in TERMINAL_STATES]
    class_options = "".join(
        f'<option value="{attr(c["name"])}({attr(c["code"])})">{attr(c["big"])}'
        f"{' · ' + LEGACY_SCHEME_LABEL if c['scheme'] != CURRENT_SCHEME else ''}</option>"
        for c in classes
    )
    legend = "".join(
        f'<span><i class="gg-ring" style="border-color:{STATE_COLOURS.get(k, "#9e9e9e")}"></i>{attr(v)}</span>'
        for k, v in states.items()
    )
    return "\n" + pagesrc.fill(  # the panel starts on its own line after the map
        PANEL_HTML,
        center_name=attr(center_name),
        role_options=role_options,
        dept_options=dept_options,
        suspended_label=attr(SUSPENDED_LABEL),
        legend=legend,
        open_states=attr(",".join(open_states)),
        state_options=_options(states, "全部"),
        class_options=class_options,
        department_options=_options(departments, "全部"),
        grid_placeholder=attr(grid_placeholder),
        grid_title=attr(grid_placeholder),
        source_options=_options(sources or {}, "全部"),
        escalation_options=_options(escalated, "全部"),
        sort_options=_options(LIST_SORTS, None, "light"),
        eval_hidden="" if indicators else " hidden",
        indicator_options=_options(indicators, None, "on_time_disposal_rate"),
        span_options=_options(EVAL_SPANS, None, "month"),
        as_of_title=attr(AS_OF_TITLE),
        table_options=_options(EVAL_TABLES, None, "region"),
    )


#: The side panel (maps/pagesrc/console-panel.html): its labels and choices put in by :func:`_panel_html`.
PANEL_HTML = pagesrc.source("console-panel.html")
#: The page's style (maps/pagesrc/console.css), the traffic lights' dots put in.
PANEL_CSS = pagesrc.fill(pagesrc.source("console.css"), light_css=light_css("gg") + "\n")


#: The panel's script (maps/pagesrc/console.js), the shared helpers and the basemap shift put in.
PANEL_JS = pagesrc.fill(pagesrc.source("console.js"), dom=DOM_JS, basemap_shift=SHIFT_JS)
