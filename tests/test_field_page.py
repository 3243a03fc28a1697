"""GET /field: the zh-CN phone reporting page is small and offline-safe; its class list and the intake contract
it relies on (multipart + Idempotency-Key: 201 once, then 200 with the same case) work."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gisgrid import workflow
from gisgrid.errors import ConfigError
from gisgrid.settings import PROJECT_ROOT
from maps import assets
from maps import field as page
from maps.basemap import basemap_for
from maps.pagejs import load_reason_texts
from tests.test_components_store import inside_points

#: The page itself (form, config, CSS; fetched on every open) and its own script (a cached file of this origin).
MAX_BYTES = 40 * 1024
SCRIPT_MAX_BYTES = 100 * 1024


@pytest.fixture
def client(page_client: TestClient) -> TestClient:
    return page_client


def with_script(client: TestClient, html: str) -> str:
    """The page and the script it loads from this origin (what the page does is in the script)."""
    (url,) = re.findall(r'<script src="(/field/page-[0-9a-f]{12}\.js)"></script>', html)
    return html + client.get(url).text


def test_field_page_is_small_zh_cn_for_a_phone_and_offline(client: TestClient) -> None:
    r = client.get("/field")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert len(r.content) <= MAX_BYTES, len(r.content)
    script = client.get(page.SCRIPT_URL)
    assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert script.text == page.PAGE_JS and len(script.content) <= SCRIPT_MAX_BYTES, len(script.content)
    assert client.get("/field/page-000000000000.js").status_code == 404  # another release's script is not this one
    html = with_script(client, r.text)
    assets.assert_no_external(html)
    assert '<html lang="zh-CN">' in html and "<title>数字化城市管理监督指挥中心 · 网格员上报</title>" in html
    assert 'name="viewport" content="width=device-width, initial-scale=1' in html
    assert 'type="file" accept="image/*" capture="environment" multiple' in html
    assert "min-height: 48px" in html  # touch targets
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "blob:" in csp
    urls = re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)\"""", html)
    assert [u for u in urls if u != "data:,"] == [*page.STYLES, *page.SCRIPTS, page.SCRIPT_URL]
    for url in page.STYLES + page.SCRIPTS:
        assert url.startswith("/static/vendor/") and client.get(url).status_code == 200, url
    # what the page does: vector grid tiles, GPS (wgs84) or a tap (cgcs2000), outbox, idempotent intake
    for needle in (
        "/tiles/",
        "navigator.geolocation",
        '"wgs84"',
        '"cgcs2000"',
        "indexedDB.open",
        "crypto.randomUUID",
        "getRandomValues",
        '"Idempotency-Key"',
        '"/cases/form"',
        '"online"',
        "/field/classes",
        "/grids/locate",
        "localStorage",
    ):
        assert needle in html, needle
    assert '"unit_grids"' in html and '"tier3"' in html
    for label in ("网格员", "监督员", "上报", "待发送", "我的上报"):
        assert label in html
    assert "fitBounds" in html and '"bounds": [[' in html  # centred on the loaded district


def test_class_list_endpoint(client: TestClient) -> None:
    r = client.get("/field/classes")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["data"]) > 20
    garbage = next(c for c in body["data"] if c["code"] == "06010")
    assert set(garbage) == {"scheme", "code", "name", "big_code", "big_name", "terms"} and garbage["name"] == "暴露垃圾"
    # the 井盖 family's class for an owner not known, and the words that find the family only by its generic word
    (unknown,) = (c for c in body["data"] if "fallback_for" in c)
    assert (unknown["code"], unknown["name"], unknown["fallback_for"]) == ("01023", "不明井盖异常", "井盖")
    assert unknown["fallback_terms"] == sorted(
        ["窨井", "阴井", "马葫芦", "检查井", "污水井盖", "雨水井盖", "燃气井盖", "电力井盖", "热力井盖"]
    )
    # common words from data/catalogue/search_terms.csv: 窨井 and 下水道 find the 井盖 classes
    manholes = {c["code"] for c in body["data"] if "井盖" in c["name"]}
    assert manholes and all({"窨井", "下水道"} <= set(c["terms"]) for c in body["data"] if c["code"] in manholes)
    # covers the catalogue has no class of their own for find every 井盖 class (the worker picks one)
    kinds = {"污水井盖", "雨水井盖", "燃气井盖", "电力井盖", "热力井盖"}
    assert all(kinds <= set(c["terms"]) for c in body["data"] if c["code"] in manholes)
    terms = {c["code"]: set(c["terms"]) for c in body["data"]}
    assert [code for code, t in terms.items() if "上水井盖" in t] == ["01001"]  # 上水井盖 = 供水井盖
    assert [code for code, t in terms.items() if "通讯井盖" in t] == ["01007"]  # 通讯井盖 = 通信井盖
    codes = [c["code"] for c in body["data"]]
    assert codes == sorted(codes) and all(c["scheme"] == "gbt47678" for c in body["data"])
    old = client.get("/field/classes", params={"scheme": "cjt214"}).json()
    assert old["count"] and all(len(c["code"]) == 4 for c in old["data"])
    unknown = client.get("/field/classes", params={"scheme": "x"})  # refused by its field, the schemes named
    assert unknown.status_code == 422 and unknown.json()["reason"] == "literal_error"
    choices = "Input should be 'gbt47678' or 'cjt214'"
    assert unknown.json()["detail"] == {
        "message": f"scheme: {choices}",
        "items": [{"field": "scheme", "reason": choices, "code": "literal_error"}],
    }


def test_the_intake_contract_the_outbox_relies_on(client: TestClient, clean_db: Engine) -> None:
    xs, ys = inside_points(1, seed=5)
    key = str(uuid.uuid4())
    form = {
        "class_code": "06010",
        "lon": str(float(xs[0])),
        "lat": str(float(ys[0])),
        "datum": "cgcs2000",
        "reporter": "张伟",
        "description": "离线上报",
    }
    headers = {"Idempotency-Key": key, "X-Role": "grid_worker", "X-Actor": "%E5%BC%A0%E4%BC%9F"}
    first = client.post("/cases/form", data=form, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/cases/form", data=form, headers=headers)  # the answer was lost: the retry
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases WHERE idempotency_key = :k"), {"k": key}).scalar() == 1
    mine = client.get(f"/cases/{first.json()['id']}").json()
    assert mine["reporter"] == "张伟" and mine["state_label"] and mine["case_no"]
    # a 4xx the page drops with the API's message: no location and no photo
    refused = client.post("/cases/form", data={"class_code": "06010"}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert refused.status_code == 422 and "location" in str(refused.json()["detail"])


def test_page_text_is_escaped() -> None:
    html = page.build_field_page(bounds=None, roles={"grid_worker": '"><script>alert(1)</script>'})
    assert "<script>alert(1)</script>" not in html
    assert '"bounds": null' in html and "监督员" not in html  # only the given roles
    assert page.build_field_page(bounds=None, roles=workflow.ROLES).count("<option") == 2


def test_a_reason_or_centre_named_like_markup_leaves_the_config_whole() -> None:
    """review59 F8: ``<!--<script>`` in the inline config made the rest of the page script; now no value in it
    can open or close a tag, and it parses to the same values."""
    odd = {"x": "<!--<script>", "y": "</script><script>alert(1)</script>"}
    html = page.build_field_page(
        bounds=None, roles=workflow.ROLES, reason_texts=odd, center_name=odd["x"] + odd["y"], base="/a<!--<script>"
    )
    config_text = re.search(r"window\.GF_CONFIG = (\{.*?\});\n", html, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in config_text and ">" not in config_text
    assert '"zhReasons": {"x": "\\u003c!--\\u003cscript\\u003e", ' in config_text
    config = json.loads(config_text)
    assert config["zhReasons"] == odd and config["base"] == "/a<!--<script>"
    assert odd["x"] not in html and "<script>alert(1)" not in html
    title = "&lt;!--&lt;script&gt;&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; · 网格员上报"
    assert f"<title>{title}</title>" in html


def test_a_refusal_is_explained_from_its_codes_with_the_page_offline() -> None:
    """The zh-CN reasons are in the page itself (a refusal read in a dead spot is explained too), and the page
    reads the refusal's codes, not the server's English words."""
    html = page.build_field_page(bounds=None, roles=workflow.ROLES) + page.PAGE_JS
    config = json.loads(re.search(r"window\.GF_CONFIG = (\{.*?\});\n", html, re.S).group(1))
    assert config["zhReasons"] == load_reason_texts() and set(config["refusal"]) == {"fields", "status"}
    assert "zhReason(i.code || reason)" in html
    for words in ("outside coverage", "not an image", "too large", "field required"):
        assert words not in html, words


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("word,finds\n窨井,井盖\n", r"the header must be term,finds \(got word,finds\)"),
        ("term,finds\n窨井,\n", r"search_terms.csv:2: term and finds must all be given"),
    ],
)
def test_a_bad_search_words_file_is_refused_at_start_up(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / page.SEARCH_TERMS_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        page.load_search_terms(tmp_path)


def test_every_search_term_finds_a_class() -> None:
    """One fact in one place: the words are data (search_terms.csv); each must find a class of some scheme."""
    from gisgrid.events import load_event_catalogue

    events = load_event_catalogue(PROJECT_ROOT / "data")
    terms = page.load_search_terms(PROJECT_ROOT / "data")
    assert {"窨井", "下水道"} <= set(terms)
    names = [c.name for scheme in page.SCHEMES for c in events.classes(scheme).values()]
    for term, finds in terms.items():
        for word in finds:
            assert any(word in n for n in names), (term, word)


def test_field_page_draws_the_configured_basemap(client: TestClient) -> None:
    app = client.app
    old = app.state.basemap  # type: ignore[attr-defined]
    app.state.basemap = basemap_for("https://tiles.example.test/{z}/{x}/{y}.png", datum="gcj02")  # type: ignore[attr-defined]
    try:
        r = client.get("/field")
    finally:
        app.state.basemap = old  # type: ignore[attr-defined]
    csp = r.headers["content-security-policy"]
    assert "img-src 'self' data: blob: https://tiles.example.test;" in csp and "connect-src 'self';" in csp
    assert '"url": "https://tiles.example.test/{z}/{x}/{y}.png"' in r.text and "L.tileLayer" in page.PAGE_JS
    assert '"pane": "gf-basemap"' in r.text and '"dlon": [' in r.text and "gisgridShiftBasemap(" in page.PAGE_JS
    assert '"minZoom": 3' in r.text  # the map's own: the view is not raised to the unit grids' 15
    plain = client.get("/field")
    nonce = re.search(r"'nonce-([^']+)'", plain.headers["content-security-policy"])
    assert nonce is not None
    assert plain.headers["content-security-policy"] == f"{page.csp(None, nonce.group(1))}; frame-ancestors 'self'"
    assert '"basemap": null' in plain.text


def test_service_worker_covers_the_field_page(client: TestClient) -> None:
    r = client.get(page.SW_URL)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["service-worker-allowed"] == "/field" and r.headers["cache-control"] == "no-cache"
    assert page.SW_SCOPE == "/field" and page.SW_URL.startswith("/field/")
    for url in page.precached():  # what it stores at install is there to store
        assert f'"{url}"' in r.text and client.get(url).status_code == 200, url
    assert "/field/classes?scheme=gbt47678" in page.precached()
    assert "navigator.serviceWorker.register(C.sw.url" in with_script(client, client.get("/field").text)
    assert page.SCRIPT_URL in page.precached()  # the page's own script opens offline too


def test_a_heic_report_is_stored_and_served_as_jpeg(client: TestClient, clean_db: Engine) -> None:
    sample = PROJECT_ROOT / "tests" / "photo_samples" / "gps.heic"
    xs, ys = inside_points(1, seed=9)
    form = {"class_code": "06010", "lon": str(float(xs[0])), "lat": str(float(ys[0])), "datum": "cgcs2000"}
    r = client.post(
        "/cases/form",
        data=form,
        files=[("photos", ("IMG_0001.HEIC", sample.read_bytes(), "image/heic"))],
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-Role": "grid_worker"},
    )
    assert r.status_code == 201, r.text
    case = client.get(f"/cases/{r.json()['id']}").json()
    [photo] = case["photos"]
    assert photo["content_type"] == "image/jpeg"
    with clean_db.connect() as conn:
        kind, path = conn.execute(
            text("SELECT content_type, relpath FROM case_photos WHERE case_id = :c"), {"c": case["id"]}
        ).one()
    assert kind == "image/jpeg" and path.endswith(".jpg")
    served = client.get(f"/cases/{case['id']}/photos/{photo['sha256']}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.content[:3] == b"\xff\xd8\xff"


def test_the_page_knows_which_photos_the_server_takes_and_titles_its_zoom_in_chinese() -> None:
    """review30 D6/D7/gap 4: a file is judged by its first bytes when attached (the server's formats and HEIF
    brands, gisgrid.photos), the zoom buttons are titled 放大/缩小, 我的上报 says why a report ended."""
    from gisgrid import photos, workflow

    html = page.build_field_page(bounds=None, roles=workflow.ROLES) + page.PAGE_JS
    config = json.loads(html.split("window.GF_CONFIG = ", 1)[1].split(";\n", 1)[0])
    assert config["photoFormats"] == sorted(photos.SUPPORTED) and "JPEG" in config["photoFormats"]
    assert config["heifBrands"] == sorted(b.decode() for b in photos.HEIF_BRANDS) and "heic" in config["heifBrands"]
    assert config["zoomTitles"] == {"zoomInTitle": "放大", "zoomOutTitle": "缩小"}
    assert "zoomControl: false" in html and "L.control.zoom(C.zoomTitles)" in html
    assert 'zhReason("photo_not_an_image")' in html and "photoRefusal(photoFormat(d.data))" in html
    assert "endReason(c)" in html and "x.to_state === c.state" in html


def test_the_page_has_my_tasks_with_the_on_site_steps_of_the_workflow(client: TestClient) -> None:
    """review45 U7: 我的任务 lists the located grid's cases waiting for 核实/核查; its form offers the steps among
    核实/核查/返工 that a case's allowed_actions (the API's, for the role) name, each text sent as the field the
    workflow takes it in, by the action API (the form route with photos)."""
    html = with_script(client, client.get("/field").text)
    assert '<h2>我的任务 <b id="gf-tasks-n"></b></h2>' in html
    assert html.index('id="gf-tasks-card"') < html.index('id="gf-form"')  # above the map it shows the case on
    for needle in ('id="gf-tasks"', 'id="gf-task"', 'id="gf-tasks-near"', 'id="gf-tasks-refresh"', "刷新任务"):
        assert needle in html, needle
    for needle in ('capture: "environment"', '"/actions/" + s.action', 'url += "/form"', "c.allowed_actions",
                   '"&grid="', '"&bbox="', "e.status === 409"):  # fmt: skip
        assert needle in html, needle
    config = json.loads(re.search(r"window\.GF_CONFIG = (\{.*?\});\n", html, re.S).group(1))
    tasks = config["tasks"]
    assert tasks["states"] == {"reported": "待核实", "handled": "待核查"}
    assert tasks["actions"] == {  # 核实 may correct the class (workflow: class_code optional at verify)
        "verify": {"label": "核实", "field": "note", "text": "核实情况", "done": "已核实", "required": False,
                   "reclassify": True},
        "check": {"label": "核查", "field": "result", "text": "核查情况", "done": "已核查", "required": False,
                  "reclassify": False},
        "rework": {"label": "返工", "field": "reason", "text": "返工原因", "done": "已返工", "required": True,
                   "reclassify": False},
        "escalate": {"label": "提级", "field": "reason", "text": "提级原因", "done": "已提级", "required": True,
                     "reclassify": False},
    }  # fmt: skip
    for action in tasks["actions"]:  # steps one of the page's roles takes, from the states it lists
        rule = workflow.TRANSITIONS[action]
        assert set(page.REPORTING_ROLES) & set(rule.roles) and set(rule.from_states) & set(tasks["states"])
    assert "supervisor" not in workflow.TRANSITIONS["escalate"].roles  # 提级: the 网格员's (the API's allowed_actions)
    assert tasks["phrases"]["verified"] == "已核实(待立案)" and tasks["photoKinds"]["after"] == "处置后照片"


def test_the_api_headers_are_built_in_one_place() -> None:
    """The outbox's reports and 我的任务's list, case and steps act with the headers of one function (apiHeaders:
    X-Role, X-Actor URL-encoded, Accept), each call adding its own (Idempotency-Key, Content-Type)."""
    js = page.PAGE_JS
    assert js.count('"X-Actor"') == 1 and '"X-Role": role, "X-Actor": encodeURI' in js
    assert 'apiHeaders(rec.role, rec.fields.reporter, {"Idempotency-Key": rec.key})' in js  # the outbox
    assert 'return apiHeaders($("gf-role").value, $("gf-name").value.trim(), more)' in js  # 我的任务
    assert js.count("taskHeaders(") == 3  # defined once; the list, the case
    # a step, taken now or queued offline: the role and name of the form when it was taken
    assert 'var headers = apiHeaders(s.role, s.actor, {"Idempotency-Key": s.key});' in js
    assert 'role: $("gf-role").value, actor: $("gf-name").value.trim(), key: uuid()}' in js
