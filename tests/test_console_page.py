"""GET /console: the zh-CN operator map page renders small, links only its own origin, and its API calls work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from gisgrid import geodesy, workflow
from gisgrid.errors import ConfigError
from gisgrid.settings import Settings
from maps import assets, tiles_sql
from maps import console as page
from maps.basemap import basemap_for, gcj02_shift_table
from maps.pagejs import load_reason_texts
from tests.test_components_store import inside_points

MAX_BYTES = 200 * 1024


@pytest.fixture
def client(page_client: TestClient) -> TestClient:
    return page_client


def test_console_renders_small_zh_cn_and_offline(client: TestClient) -> None:
    r = client.get("/console")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert len(r.content) <= MAX_BYTES
    assets.assert_no_external(html)
    assert '<html lang="zh-CN">' in html and "<title>数字化城市管理监督指挥中心 · 指挥地图</title>" in html
    assert "<h1>数字化城市管理监督指挥中心 · 案件</h1>" in html  # GISGRID_CENTER_NAME unset: the default centre
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    # every script and stylesheet comes from this app
    urls = re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)\"""", html)
    assert len(urls) >= 12
    assert '<link rel="icon" href="data:,">' in html  # no /favicon.ico request (a 404 in the browser console)
    for url in urls:
        if url == "data:,":
            continue
        assert url.startswith("/static/vendor/"), url
        got = client.get(url)
        assert got.status_code == 200, url


def test_console_layers_match_the_tile_layers(client: TestClient) -> None:
    html = client.get("/console").text
    for layer in ("unit_grids", "tier1", "tier2", "tier3", "component_cells", "components"):
        assert layer in tiles_sql.LAYERS
        assert f"'/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt'" in html
        assert f"vectorTileLayerStyles: {{ {layer}:" in html  # the MVT layer name ST_AsMVT gives
    assert "L.realtime(" in html and '"interval": 10000' in html and '"removeMissing": true' in html
    assert 'q.set("format", "geojson")' in html and '"casesLimit": 1000' in html
    assert "L.control.layers(" in html
    assert "/cases/lights" in html and "/grids/locate" in html and "/actions/" in html
    # zh-CN vocabulary for the panel: roles, states, action labels
    for label in ("派遣员", "值班长", "立案", "红灯", "绿灯", "黄灯"):
        assert label in html
    for label in ("单元网格", "一级网格(街道)", "城市部件", "案件热力图(按筛选时段)", "案件(实时)"):  # layer control
        assert json.dumps(label)[1:-1] in html  # (JSON-escaped)
    # components by zoom: counts per grid 13–15, point tiles at 16, clustered points from 17
    assert "minZoom: 13" in html and "maxZoom: 15" in html and "L.markerClusterGroup(" in html
    assert '"clusterMinZoom": 17' in html and "L.heatLayer(" in html and "/cases/heat?" in html
    # the district is fitted before any layer exists, with an explicit min zoom (see _FitNow)
    assert html.index("fitBounds(") < html.index("L.vectorGrid.protobuf(") and '"minZoom": 5' in html
    for name in ("department", "grid", "since", "until"):  # panel filters
        assert f'name="{name}"' in html
    # 综合评价专题图: indicators of the region table, drawn from /evaluation/map
    assert "/evaluation/map?" in html and 'id="gg-eval-form"' in html
    assert '<option value="on_time_disposal_rate" selected>按期处置率</option>' in html
    # the counts beside it (review26), in the region table's order
    options = re.findall(r'<option value="(\w+)"[^>]*>([^<]*)</option>', html.split('id="gg-eval-form"')[1])
    names = [v for v, _ in options]
    assert ("overdue_disposals", "超期处置数") in options and ("supervised", "督办数") in options
    assert names.index("overdue_disposals") == names.index("on_time_disposal_rate") + 1
    assert names.index("supervised") == names.index("extended") + 1


def test_heat_counts_the_filtered_cases_of_the_period(client: TestClient) -> None:
    xs, ys = inside_points(3, seed=11)
    for x, y, cls in zip(xs, ys, ("06010", "06010", "01037"), strict=True):
        made = client.post(
            "/cases",
            json={"class_code": cls, "lon": float(x), "lat": float(y), "datum": "cgcs2000"},
            headers={"X-Role": "supervisor"},
        )
        assert made.status_code == 201, made.text
    heat = client.get("/cases/heat").json()
    assert heat["cases"] == 3 and sum(p[2] for p in heat["points"]) == 3
    lat, lon, _ = heat["points"][0]
    assert min(abs(lat - y) + abs(lon - x) for x, y in zip(xs, ys, strict=True)) < 1e-3
    assert client.get("/cases/heat", params={"class_code": "06010"}).json()["cases"] == 2
    assert client.get("/cases/heat", params={"since": "2099-01-01T00:00:00+08:00"}).json() == {
        "cell_deg": 0.0005,
        "cases": 0,
        "points": [],
        "datum": "cgcs2000",
    }
    bad = client.get("/cases/heat", params={"since": "2026-02-01T00:00:00+08:00", "until": "2026-01-01T00:00:00+08:00"})
    assert bad.status_code == 422 and bad.json()["reason"] == "until_not_after_since"
    assert bad.json()["detail"]["items"] == [
        {"field": "until", "reason": "must be after since", "code": "until_not_after_since"}
    ]
    assert bad.json()["detail"]["message"] == "until: must be after since"
    word = client.get("/cases/heat", params={"since": "yesterday"})  # a word, not a date: refused by its field
    assert word.status_code == 422 and word.json()["reason"] == "datetime_from_date_parsing"
    reason = "Input should be a valid datetime or date, input is too short"
    assert word.json()["detail"] == {
        "message": f"since: {reason}",
        "items": [{"field": "since", "reason": reason, "code": "datetime_from_date_parsing"}],
    }


def test_the_panel_endpoints_answer_and_a_bad_filter_explains_itself(client: TestClient) -> None:
    xs, ys = inside_points(1, seed=3)
    made = client.post(
        "/cases",
        json={"class_code": "06010", "lon": float(xs[0]), "lat": float(ys[0]), "datum": "cgcs2000"},
        headers={"X-Role": "supervisor"},
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    fc = client.get("/cases", params={"format": "geojson", "limit": 1000}).json()
    assert fc["type"] == "FeatureCollection" and [f["properties"]["id"] for f in fc["features"]] == [cid]
    props = fc["features"][0]["properties"]
    assert {"id", "light", "state_label", "class_name", "case_no"} <= set(props)
    assert set(client.get("/cases/lights").json()) == {"green", "yellow", "red", "suspended"}
    detail = client.get(f"/cases/{cid}", headers={"X-Role": "supervisor"}).json()
    assert "verify" in detail["allowed_actions"] and [t["action"] for t in detail["timeline"]] == ["report"]
    # what the panel shows for a malformed filter: the API's 422 detail, field by field
    bad = client.get("/cases", params={"format": "geojson", "limit": 1000, "class_code": "06x"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_input" and bad.json()["detail"]["items"][0]["field"] == "class_code"
    # a refused action: the API's message
    refused = client.post(
        f"/cases/{cid}/actions/dispatch",
        json={"version": detail["version"], "payload": {}},
        headers={"X-Role": "leader"},
    )
    assert refused.status_code == 403, refused.text  # a leader only 督办s: refused by role, whatever the state
    assert (refused.json()["error"], refused.json()["detail"]["items"][0]["field"]) == ("role_not_allowed", "X-Role")


def _page(**kw: object) -> str:
    kw.setdefault("bounds", None)
    return page.build_console(
        states=workflow.STATES,
        roles=workflow.ROLES,
        actions=workflow.ACTIONS,
        required={a: r.required for a, r in workflow.TRANSITIONS.items()},
        field_labels=workflow.FIELD_LABELS,
        departments={"DEPT01": "市政设施养护中心"},
        **kw,
    )


def _config(html: str) -> dict:
    found = re.search(r"window\.GG_CONFIG = (\{.*?\});\n", html, re.S)
    assert found, "no GG_CONFIG"
    return json.loads(found.group(1))


def test_the_action_form_offers_what_each_action_takes(client: TestClient) -> None:
    html = client.get("/console").text
    config = _config(html)
    for action, rule in workflow.TRANSITIONS.items():  # one fact in one place: gisgrid.workflow
        assert config["required"][action] == list(rule.required)
        assert config["optional"].get(action, []) == list(rule.optional)
    assert config["optional"]["dispatch"] == ["disposal_type", "reason"]
    assert config["optional"]["supervise"] == ["flagged"]
    assert config["fieldKinds"] == workflow.FIELD_KINDS and config["timeUnits"] == workflow.TIME_UNITS
    assert config["escalationLevels"] == {str(k): v for k, v in workflow.ESCALATION_LEVELS.items()}
    # the disposal types (and limits) of each class, from the event catalogue
    illegal = config["classes"]["06001"]
    assert illegal["name"] == "私搭乱建" and [t["type"] for t in illegal["types"]] == ["停工", "处罚", "拆除"]
    assert illegal["types"][2] == {"type": "拆除", "limit": "20 工作日", "urgent": False}
    assert [t["type"] for t in config["classes"]["01001"]["types"]] == ["默认", "紧急"]
    assert config["classes"]["01001"]["types"][1]["urgent"] is True
    # the console no longer claims overdue: the service works it out (9553037)
    assert "payload.overdue" not in html and "overdue:" not in html
    assert '"flagged"' in html and 'type: "checkbox"' in html and "改派原因" in html
    assert 'row("处置方式"' in html and 'row("协调层级"' in html and 'row("提级至"' in html


def test_filters_paging_and_lights_for_the_keyboard_and_error_wording(client: TestClient) -> None:
    html = client.get("/console").text
    # C2: the class filter lists the catalogue by name (datalist), zh-CN messages beside the API's
    assert 'list="gg-class-list"' in html and '<option value="暴露垃圾(06010)">' in html
    assert "GG.classCodeOf" in html and "没有名称含" in html
    # review48 F3: the current standard's classes first, a CJ/T 214 one said to be of the old catalogue
    datalist = html[html.index('<datalist id="gg-class-list">') : html.index("</datalist>")]
    options = re.findall(r'<option value="([^"]*)">([^<]*)</option>', datalist)
    gbt = [i for i, (value, _) in enumerate(options) if re.search(r"\(\d{5}\)$", value)]
    cjt = [i for i, (value, _) in enumerate(options) if re.search(r"\(\d{4}\)$", value)]
    assert gbt and cjt and max(gbt) < min(cjt)
    assert ("私搭乱建(0101)", "市容环境 · CJ/T 214 旧类别") in options and ("私搭乱建(06001)", "市容环境类") in options
    assert '"class_code": "类别"' in html and "ZH_ERRORS" in html and "格式不正确" in html
    # C3: paging with offset
    assert 'id="gg-next"' in html and 'id="gg-prev"' in html and 'q.set("offset"' in html
    # C4: focusable list items with a key handler, the light counts as buttons
    assert 'tabindex: "0"' in html and 'ev.key === "Enter"' in html
    assert html.count('<button type="button" class="gg-light"') == 4  # 绿 黄 红 and 挂账(暂停计时)
    # C1: a stale detail answer is dropped; C5: scrolled into view and ringed on the map
    assert "String(GG.selected) === String(id)" in html and "showDetail()" in html and "GG.selMarker" in html
    # C6: a failed connection is not a refusal
    assert 'e.network ? "失败:" : "被拒绝:"' in html and "案件未能加载" in html
    # S2: a metric scale bar only, no Leaflet prefix
    assert "L.control.scale({metric: true, imperial: false" in html and "L.control.scale()" not in html
    assert "setPrefix(false)" in html


def test_no_basemap_by_default_and_a_local_basemap_when_set() -> None:
    plain = _page()
    assert "L.tileLayer(" not in plain and '"basemapShift": null' in plain
    local = _page(basemap=basemap_for("/basemap/{z}/{x}/{y}.png", attribution="市测绘院"))
    assert "L.tileLayer(" in local and "/basemap/{z}/{x}/{y}.png" in local
    assets.assert_no_external(local)
    other_host = basemap_for("http://10.8.0.5:8080/xyz/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: http://10.8.0.5:8080;" in page.csp(other_host, "n0")
    assert page.csp(None, "n0").count("'self'") >= 5
    subdomains = basemap_for("http://t{s}.tiles.city.local/{z}/{x}/{y}.png", subdomains="012")
    assert subdomains is not None and subdomains.hosts == tuple(f"http://t{i}.tiles.city.local" for i in range(3))
    with pytest.raises(ConfigError, match=r"only \{s\}"):
        basemap_for("http://{z}.tiles.city.local/{x}/{y}.png")


def test_tianditu_with_a_token_is_its_basemap_and_labels_from_its_eight_hosts() -> None:
    tdt = basemap_for(tianditu_token="0123456789abcdef0123456789abcdef")
    assert tdt is not None and tdt.subdomains == "01234567" and tdt.datum == "cgcs2000"
    html = _page(basemap=tdt)
    assert html.count("L.tileLayer(") == 2 and "vec_w/wmts?" in html and "cva_w/wmts?" in html
    assert "tk=0123456789abcdef0123456789abcdef" in html and '"subdomains": "01234567"' in html
    csp = page.csp(tdt, "n0")
    assert all(f"https://t{i}.tianditu.gov.cn" in csp for i in range(8))
    with pytest.raises(ConfigError, match="TIANDITU_TOKEN"):
        basemap_for(tianditu_token="abc'); alert(1); //")


def test_the_console_and_field_page_name_the_configured_centre(
    installed_assets: None, clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    # GISGRID_CENTER_NAME titles the pages as it heads the start page and the orders; markup in it stays text
    city = settings.model_copy(
        update={"data_dir": tmp_path / "data", "center_name": "新密市<数字化城市管理>监督指挥中心"}
    )
    with TestClient(create_app(city)) as client:
        console, field = client.get("/console"), client.get("/field")
    assert console.status_code == 200 and field.status_code == 200
    name = "新密市&lt;数字化城市管理&gt;监督指挥中心"
    assert f"<title>{name} · 指挥地图</title>" in console.text and f"<h1>{name} · 案件</h1>" in console.text
    assert f"<title>{name} · 网格员上报</title>" in field.text
    assert "<数字化城市管理>" not in console.text + field.text


def test_a_bad_basemap_setting_stops_the_start(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="TIANDITU_TOKEN"):
        create_app(settings.model_copy(update={"tianditu_token": "not a key!"}))


def test_a_gcj02_basemap_moves_in_its_own_pane_by_the_offset_geodesy_gives() -> None:
    bounds = (113.5, 34.6, 113.8, 34.9)
    html = _page(basemap=basemap_for("/amap/{z}/{x}/{y}.png", datum="gcj02"), bounds=bounds)
    assert '"pane": "gg-basemap"' in html and '"basemapShift": {' in html
    table = gcj02_shift_table(bounds)
    # the table interpolated (as the page does) agrees with geodesy at points between its nodes
    lon = np.array([113.5123, 113.6789, 113.7999])
    lat = np.array([34.6234, 34.7777, 34.8888])
    glon, glat = geodesy.from_storage(lon, lat, "gcj02")
    fx, fy = (lon - table["lon0"]) / table["step"], (lat - table["lat0"]) / table["step"]
    i, j = np.floor(fx).astype(int), np.floor(fy).astype(int)
    u, v = fx - i, fy - j
    for name, want in (("dlon", glon - lon), ("dlat", glat - lat)):
        a = np.array(table[name]).reshape(table["ny"], table["nx"])
        got = (a[j, i] * (1 - u) + a[j, i + 1] * u) * (1 - v) + (a[j + 1, i] * (1 - u) + a[j + 1, i + 1] * u) * v
        assert np.abs(got - want).max() < 1e-6  # under 10 cm
    assert np.hypot((glon - lon) * 91_000, (glat - lat) * 111_000).min() > 100  # the offset: hundreds of metres


def test_refusals_are_explained_from_their_codes_not_from_the_english_words() -> None:
    """The zh-CN line beside a refusal comes from the table of reason codes (data, in the page), never from a
    pattern over the server's English message: rewording a message cannot break the Chinese."""
    html = _page()
    assert _config(html)["zhReasons"] == load_reason_texts()
    assert "ZH_REASONS[code]" in html and "body.reason" in html and "i.code" in html
    for words in ("past its deadline", "already at escalation", "already pending", "must be after since"):
        assert words not in html, words
    assert _config(_page(reason_texts={"missing": "未填"}))["zhReasons"] == {"missing": "未填"}


def test_panel_text_is_escaped() -> None:
    html = page.build_console(
        bounds=None,
        states={"reported": "<b>上报</b>"},
        roles={"x": '"><script>alert(1)</script>'},
        actions={},
        required={},
        field_labels={},
        departments={"d": "</script><script>alert(2)</script>"},
    )
    assert "<script>alert(1)</script>" not in html and "</script><script>alert(2)" not in html


#: Values that once broke the page's inline config (review59 F8): ``<!--<script>`` put the HTML parser in the
#: script's double-escaped state, so the rest of the page became script; ``</script>`` closed the script.
ODD_NAMES = {"D<!--": "<!--<script>", "D</": "</script><script>alert(1)</script>"}


def test_a_department_or_centre_named_like_markup_leaves_the_config_whole() -> None:
    odd = "<!--<script>"
    html = page.build_console(
        bounds=None,
        states=workflow.STATES,
        roles=workflow.ROLES,
        actions=workflow.ACTIONS,
        required={},
        field_labels={},
        departments=ODD_NAMES,
        center_name=odd + ODD_NAMES["D</"],
    )
    config_text = re.search(r"window\.GG_CONFIG = (\{.*?\});\n", html, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in config_text and ">" not in config_text  # nothing in it can open or close a tag
    assert '"departments": {"D\\u003c!--": "\\u003c!--\\u003cscript\\u003e", ' in config_text
    assert json.loads(config_text)["departments"] == ODD_NAMES
    # the centre name is text where it shows, and nowhere as markup
    assert odd not in html and "<script>alert(1)" not in html
    assert "<title>&lt;!--&lt;script&gt;&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; · 指挥地图</title>" in html


def test_the_panel_finds_by_number_filters_by_source_escalation_and_extension_and_starts_as_an_operator() -> None:
    from gisgrid import cases as svc

    html = _page(escalation_levels=workflow.ESCALATION_LEVELS)
    config = _config(html)
    assert config["sources"] == svc.SOURCES and config["sources"]["public_app"] == "公众APP"
    assert config["documentLabels"] == {"dispatch": "交办单", "supervision": "督办单"}
    assert config["photoKinds"] == {"before": "上报照片", "after": "处置后照片", "evidence": "办理佐证照片"}
    assert '<option value="intake" selected>受理员</option>' in html and html.count(" selected>") >= 2
    assert "gisgrid.console.role" in html and "localStorage.setItem(ROLE_KEY" in html
    assert '<input name="case_no" placeholder="如 2026008596" size="12"\n      maxlength="20">' in html
    assert '<option value="hotline">12345热线</option>' in html
    assert (
        '<select name="escalation_level"><option value="">全部</option>'
        '<option value="1">已提级至一级网格(街道)</option>' in html
    )
    assert '<input name="pending_extension" type="checkbox" value="true"> 延期待批' in html
    # the detail: no empty 日历提示 row, 结案 instead of a deadline, the others' rules, the dispatch labels
    assert 'c.calendar_warning ? row("日历提示"' in html and 'row(c.state === "closed" ? "结案"' in html
    assert "其他规则(" in html and '"【派遣建议】"' in html and '"派遣说明"' in html
    # the 派遣建议 is the service's (never a department that returned the case), not the last decision's department
    assert 'var suggested = action === "dispatch" ? (c.dispatch_suggestion || {}).department : null;' in html
    assert "decision || {}).department" not in html and "sug.hint" in html
    assert ".gg-form select { max-width: 100%; }" in html
    assert "p.thumb_url || p.url" in html and "C.sources[t.role]" in html
    assert len(html.encode()) < MAX_BYTES


def test_the_evaluation_legend_marks_provisional_figures_and_the_calendar_warning(client: TestClient) -> None:
    """The legend of the evaluation map says 暂定 (the service's own words) when the figures were judged before the
    period ended, and shows the answer's calendar warning (review26 D2, D3)."""
    from gisgrid.evaluation_service import PROVISIONAL_ZH

    html = client.get("/console").text
    assert _config(html)["provisional"] == PROVISIONAL_ZH == "暂定(评价期未结束)"
    assert '(m.provisional ? " · " + C.provisional : "")' in html
    warning = 'if (m.calendar_warning) { legend.appendChild(el("div", {cls: "gg-warn", text: m.calendar_warning}));'
    assert warning in html


def test_the_panel_lists_duplicates_merges_sorts_and_speaks_plainly_on_the_map() -> None:
    """review30: 疑似重复案件 and 合并到… (POST /cases/{id}/merge, offered where 作废 is), the list's report time and
    sort, a grid code checked once per 筛选, a map click outside the district, zh-CN control titles, a 409 said
    beside the form. (Driven in Chromium: tests/browser/test_console_shift_browser.py.)"""
    html = _page()
    config = _config(html)
    assert config["outsideClick"] == page.OUTSIDE_CLICK_TEXT == "此处不在本区网格范围内"
    assert "err.status === 404 ? C.outsideClick : err.message" in html
    assert config["layersTitle"] == "图层"
    assert "L.control.zoom(" in html and "zoomInTitle" in html  # MapChrome's zh-CN zoom buttons
    assert '<select id="gg-sort"><option value="light" selected>按灯色(最紧迫优先)</option>' in html
    assert '<option value="newest">最新上报优先</option>' in html
    assert '"上报 " + shortTime(p.created_at)' in html
    assert "routing.duplicates || []" in html and '"疑似重复案件("' in html
    assert '"/merge"' in html and 'allowed.indexOf("void") >= 0' in html and '"合并到…"' in html
    assert 'C.base + "/grids/" + encodeURIComponent(code)' in html and "if (grid) { checkGrid(grid); }" in html
    assert "gg-form-msg" in html and "noteInView()" in html
    assert len(html.encode()) < MAX_BYTES
