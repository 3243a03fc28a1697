"""我的任务 on the field page (review45 U7): a 监督员/网格员 located in a tier-3 grid sees that grid's cases waiting
for 核实 (上报) and 核查 (处置) — not another grid's —, opens one (its place on the map, photos, description) and takes
the step the API allows the role (核实, 核查, 返工) with a note and a camera photo; a stale version reloads the case
and says so."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from PIL import Image

from maps.pagejs import LIGHT_LABELS
from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_field_browser import a_photo
from tests.browser.test_field_status_browser import open_field, wait_for_notice
from tests.fixtures import acting
from tests.test_components_store import inside_points

SUPERVISOR = "田芳娟"
TASKS = "#gf-tasks li[data-id]"


def two_grids(api: httpx.Client) -> tuple[tuple[float, float, dict[str, Any]], tuple[float, float, dict[str, Any]]]:
    """A point and its tier-3 grid, and a point in another tier-3 grid (CGCS2000)."""
    xs, ys = inside_points(40, seed=451)
    found: list[tuple[float, float, dict[str, Any]]] = []
    for x, y in zip(xs, ys, strict=True):
        grid = api.get("/grids/locate", params={"lon": float(x), "lat": float(y), "datum": "cgcs2000"}).json()
        if grid.get("tier3") and all(grid["tier3"]["code"] != g["tier3"]["code"] for _, _, g in found):
            found.append((float(x), float(y), grid))
        if len(found) == 2:
            return found[0], found[1]
    raise AssertionError("the small district has fewer than two tier-3 grids")


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 140, 90)).save(buf, "PNG")
    return buf.getvalue()


def reported(api: httpx.Client, lon: float, lat: float, description: str, photo: bool = False) -> dict[str, Any]:
    fields = {"class_code": "06010", "lon": str(lon), "lat": str(lat), "datum": "cgcs2000", "description": description}
    r = api.post(
        "/cases/form",
        data=fields,
        files={"photos": ("before.png", png(), "image/png")} if photo else None,
        headers={"X-Role": "grid_worker", "X-Actor": "li"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def step(api: httpx.Client, cid: int, action: str, role: str, **payload: Any) -> dict[str, Any]:
    version = api.get(f"/cases/{cid}").json()["version"]
    r = api.post(
        f"/cases/{cid}/actions/{action}", json={"version": version, "payload": payload}, headers={"X-Role": role}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def handled(api: httpx.Client, live: LiveServer, lon: float, lat: float, result: str) -> dict[str, Any]:
    """A case reported, verified, filed, dispatched and handled (with an after-photo) through the API."""
    cid = reported(api, lon, lat, "垃圾堆放")["id"]
    step(api, cid, "verify", "supervisor")
    step(api, cid, "file", "shift_lead")
    step(api, cid, "dispatch", "dispatcher", department=next(iter(live.app.state.cases.departments)))
    version = api.get(f"/cases/{cid}").json()["version"]
    r = api.post(
        f"/cases/{cid}/actions/handle/form",
        data={"version": str(version), "result": result},
        files={"photos": ("after.png", png(), "image/png")},
        headers=acting(api, cid, "department"),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def stand_at(tab: Tab, live: LiveServer, lon: float, lat: float, role: str) -> None:
    """The field page with the phone's GPS at (lon, lat), 10 m, located, as ``role`` named SUPERVISOR."""
    page = tab.page
    page.add_init_script(
        "navigator.geolocation.getCurrentPosition = function (ok) { setTimeout(function () {"
        f" ok({{coords: {{longitude: {lon}, latitude: {lat}, accuracy: 10}}}}); }}, 10); }};"
    )
    open_field(tab, live)
    page.select_option("#gf-role", role)
    page.fill("#gf-name", SUPERVISOR)
    page.click("#gf-gps")
    page.wait_for_function("() => GF.tasks.place !== null")


def listed(page: Any) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(TASKS, "els => els.map(e => e.dataset.id)")]


def open_task(page: Any, cid: int) -> Any:
    page.click(f'#gf-tasks li[data-id="{cid}"]')
    page.wait_for_selector("#gf-task h3")
    return page.locator("#gf-task")


def buttons(page: Any) -> list[tuple[str, str]]:
    return [
        (b["action"], b["text"])
        for b in page.eval_on_selector_all(
            "#gf-task .gf-task-acts button", "els => els.map(e => ({action: e.dataset.action, text: e.textContent}))"
        )
    ]


def test_a_supervisor_verifies_a_case_of_the_grid_they_stand_in(
    phone: Tab, live: LiveServer, api: httpx.Client, tmp_path: Any
) -> None:
    (lon, lat, grid), (olon, olat, _other) = two_grids(api)
    mine = reported(api, lon, lat, "人行道暴露垃圾一堆", photo=True)
    elsewhere = reported(api, olon, olat, "另一网格的垃圾")
    page = phone.page
    stand_at(phone, live, lon, lat, "supervisor")
    page.wait_for_selector(f'#gf-tasks li[data-id="{mine["id"]}"]')
    assert listed(page) == [mine["id"]]  # not the other grid's case
    assert elsewhere["id"] not in listed(page)
    assert page.locator("#gf-tasks-n").inner_text() == "1"
    assert page.locator("#gf-tasks-hint").inner_text() == f"{grid['tier3']['name']}:待核实 1 件,待核查 0 件"
    line = page.locator(f'#gf-tasks li[data-id="{mine["id"]}"]')
    light = f" · {LIGHT_LABELS[mine['light']]}" if mine["light"] else ""
    assert line.inner_text() == f"{mine['case_no']} 暴露垃圾\n待核实 · 上报于 刚刚{light}"
    assert line.bounding_box()["height"] >= 44

    task = open_task(page, mine["id"])
    assert task.locator("h3").inner_text() == f"案件 {mine['case_no']} · 暴露垃圾"
    bar, title = page.locator(".gf-bar").bounding_box(), task.locator("h3").bounding_box()
    assert title["y"] >= bar["y"] + bar["height"]  # scrolled to, not under the sticky bar
    assert task.locator(".gf-task-desc").inner_text() == "人行道暴露垃圾一堆"
    assert task.locator(".gf-task-state").inner_text().startswith("已上报(待核实) · ")
    # its photo as a thumbnail (drawn), linked to the full picture
    page.wait_for_function("() => { const i = document.querySelector('#gf-task .gf-task-photos img');"
                           " return i && i.complete && i.naturalWidth > 0; }")  # fmt: skip
    img = task.locator(".gf-task-photos img")
    assert img.count() == 1 and img.get_attribute("src").endswith("?size=thumb")
    assert task.locator(".gf-task-photos small").inner_text() == "上报照片"
    # its place on the page's map
    # once the view has moved there (not after a fixed 400 ms)
    page.wait_for_function(
        "([lon, lat]) => { const c = GF.map.getCenter(); return GF.map.getZoom() >= 17"
        " && Math.abs(c.lng - lon) < 1e-5 && Math.abs(c.lat - lat) < 1e-5; }",
        arg=[lon, lat],
    )
    assert page.evaluate("() => GF.map.getZoom()") >= 17
    centre = page.evaluate("() => { const c = GF.map.getCenter(); return [c.lng, c.lat]; }")
    assert abs(centre[0] - lon) < 1e-5 and abs(centre[1] - lat) < 1e-5
    assert page.evaluate("() => GF.tasks.marker.getLatLng().lat") == mine["lat"]
    # only the step the API offers a supervisor here (核实), thumb-sized, and a camera input for evidence
    assert buttons(page) == [("verify", "核实")]
    assert task.locator('button[data-action="verify"]').bounding_box()["height"] >= 44
    camera = task.locator("#gf-task-photos")
    assert camera.get_attribute("capture") == "environment" and camera.get_attribute("type") == "file"
    phone.shot("task-open")

    page.set_input_files("#gf-task-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-task-thumbs img")
    page.fill("#gf-task-text", "现场确有垃圾")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click('#gf-task button[data-action="verify"]')
    assert answer.value.url == f"{live.url}/cases/{mine['id']}/actions/verify/form"
    assert answer.value.request.headers["x-role"] == "supervisor"
    said = wait_for_notice(page, "已核实")
    assert said == f"已核实:案件 {mine['case_no']}(附 1 张照片),现为「核实」"
    case = api.get(f"/cases/{mine['id']}").json()
    assert case["state"] == "verified"
    last = case["timeline"][-1]
    assert (last["action"], last["role"], last["actor"], last["note"]) == ("verify", "supervisor", SUPERVISOR,
                                                                           "现场确有垃圾")  # fmt: skip
    assert [p["kind"] for p in case["photos"]] == ["before", "evidence"]
    page.wait_for_function("() => !document.querySelector('#gf-tasks li[data-id]')")
    assert page.locator("#gf-tasks li").inner_text() == "暂无待核实、待核查的案件"
    assert page.is_hidden("#gf-task")
    assert not phone.watch.off_origin(), phone.watch.off_origin()
    assert not phone.watch.bad, phone.watch.bad


def test_a_handled_case_is_checked_or_sent_back_from_the_phone(phone: Tab, live: LiveServer, api: httpx.Client) -> None:
    (lon, lat, _grid), _ = two_grids(api)
    done = handled(api, live, lon, lat, "已清运")
    again = handled(api, live, lon + 1e-5, lat, "已清扫")
    page = phone.page
    stand_at(phone, live, lon, lat, "grid_worker")
    page.wait_for_selector(f'#gf-tasks li[data-id="{again["id"]}"]')
    assert sorted(listed(page)) == sorted([done["id"], again["id"]])
    assert "待核查 · 处置于 刚刚" in page.locator(f'#gf-tasks li[data-id="{done["id"]}"]').inner_text()

    task = open_task(page, done["id"])
    assert task.locator(".gf-task-desc").inner_text() == "垃圾堆放\n处置结果:已清运"
    assert task.locator(".gf-task-photos small").all_inner_texts() == ["处置后照片"]
    assert buttons(page) == [("check", "核查"), ("rework", "返工")]
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.click('#gf-task button[data-action="rework"]')  # 返工 needs its reason: said, nothing sent
    assert page.locator("#gf-task-error").inner_text() == "返工需填写返工原因" and posts == []
    page.fill("#gf-task-text", "已清理干净")
    page.click('#gf-task button[data-action="check"]')
    assert wait_for_notice(page, "已核查") == f"已核查:案件 {done['case_no']},现为「核查」"
    case = api.get(f"/cases/{done['id']}").json()
    assert case["state"] == "checked" and case["timeline"][-1]["details"] == {"result": "已清理干净"}
    assert case["timeline"][-1]["actor"] == SUPERVISOR
    page.wait_for_function(f"() => !document.querySelector('#gf-tasks li[data-id=\"{done['id']}\"]')")

    open_task(page, again["id"])
    page.fill("#gf-task-text", "仍有残留")
    page.click('#gf-task button[data-action="rework"]')
    assert wait_for_notice(page, "已返工") == f"已返工:案件 {again['case_no']},现为「派遣」"
    case = api.get(f"/cases/{again['id']}").json()
    assert (case["state"], case["rework_count"]) == ("dispatched", 1)
    assert case["timeline"][-1]["details"]["reason"] == "仍有残留"
    assert not phone.watch.bad, phone.watch.bad


def test_a_stale_version_reloads_the_case_and_says_so(phone: Tab, live: LiveServer, api: httpx.Client) -> None:
    (lon, lat, _grid), _ = two_grids(api)
    first = reported(api, lon, lat, "第一处垃圾")
    second = reported(api, lon + 1e-5, lat, "第二处垃圾")
    page = phone.page
    stand_at(phone, live, lon, lat, "supervisor")
    page.wait_for_selector(f'#gf-tasks li[data-id="{second["id"]}"]')

    # the desk issues the 核实 task meanwhile (the state stays, the version moves on): reloaded, still to do
    open_task(page, first["id"])
    step(api, first["id"], "request_verify", "intake")
    page.fill("#gf-task-text", "现场核实")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click('#gf-task button[data-action="verify"]')
    assert answer.value.status == 409 and answer.value.json()["reason"] == "stale_version"  # what the notice is for
    said = page.locator("#gf-task .gf-task-said")
    said.wait_for()
    assert said.inner_text() == "案件已被他人更新(版本 1 → 2),已重新载入:请核对后再点「核实」"
    assert page.input_value("#gf-task-text") == "现场核实"  # what was typed is kept
    assert buttons(page) == [("verify", "核实")]
    page.click('#gf-task button[data-action="verify"]')
    wait_for_notice(page, "已核实")
    assert api.get(f"/cases/{first['id']}").json()["state"] == "verified"

    # another supervisor verified it meanwhile: reloaded, nothing left to do
    open_task(page, second["id"])
    step(api, second["id"], "verify", "supervisor")
    page.click('#gf-task button[data-action="verify"]')
    said.wait_for()
    assert said.inner_text() == "案件已被他人更新(版本 1 → 2),已重新载入:现为「已核实(待立案)」,「核实」不再需要办理"
    assert buttons(page) == []
    assert page.locator("#gf-task .gf-task-none").inner_text() == "此案件当前已核实(待立案),无需以「监督员」身份办理。"
    phone.shot("stale")


@pytest.mark.parametrize("with_photo", [False, True], ids=["json", "form"])
def test_a_supervisor_verifying_corrects_the_class_with_the_report_forms_search(
    phone: Tab, live: LiveServer, api: httpx.Client, tmp_path: Any, with_photo: bool
) -> None:
    """核实 may correct the reported class (the API's class_code at verify): the task has the report form's class
    search, the picked class is said, and it is stored with the step (the case routed again for it) — by the JSON
    route, and by the form route when a photo goes with the step."""
    (lon, lat, _grid), _ = two_grids(api)
    mine = reported(api, lon, lat, "井盖缺失")  # reported as 暴露垃圾 (06010)
    page = phone.page
    stand_at(phone, live, lon, lat, "supervisor")
    page.wait_for_selector(f'#gf-tasks li[data-id="{mine["id"]}"]')
    task = open_task(page, mine["id"])
    assert task.locator("#gf-task-class").inner_text() == "类别:暴露垃圾(06010)"
    search = task.locator("#gf-task-search")
    assert search.get_attribute("placeholder") == "类别不符时搜索更正,如 垃圾、井盖"
    assert task.locator("#gf-task-classes").is_hidden() and task.locator("#gf-task-class-undo").is_hidden()
    search.fill("窨井")  # a common word: the family's owner-unknown class first, as in the report form
    codes = page.eval_on_selector_all("#gf-task-classes li[data-code]", "els => els.map(e => e.dataset.code)")
    assert codes == page.evaluate("() => GF.rankedClasses('窨井').map(c => c.code)") and codes[0] == "01023"
    task.locator('#gf-task-classes li[data-code="01023"]').click()
    assert task.locator("#gf-task-class").inner_text() == "更正类别为:不明井盖异常(01023),原为 暴露垃圾"
    assert task.locator("#gf-task-classes").is_hidden() and search.input_value() == ""
    task.locator("#gf-task-class-undo").click()  # changed their mind, then picked it again
    assert task.locator("#gf-task-class").inner_text() == "类别:暴露垃圾(06010)"
    search.fill("不明井盖")
    task.locator('#gf-task-classes li[data-code="01023"]').click()
    page.fill("#gf-task-text", "现场为井盖缺失,非垃圾")
    if with_photo:
        page.set_input_files("#gf-task-photos", str(a_photo(tmp_path)))
        page.wait_for_selector("#gf-task-thumbs img")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click('#gf-task button[data-action="verify"]')
    sent = answer.value.request
    url = f"{live.url}/cases/{mine['id']}/actions/verify" + ("/form" if with_photo else "")
    assert answer.value.status == 200 and sent.url == url
    headers = sent.headers  # the page's one set of API headers (apiHeaders), with the step's own
    assert (headers["x-role"], headers["x-actor"]) == ("supervisor", quote(SUPERVISOR))
    assert headers["idempotency-key"]
    if not with_photo:
        assert headers["content-type"] == "application/json"
        assert sent.post_data_json == {"version": mine["version"], "note": "现场为井盖缺失,非垃圾",
                                       "payload": {"class_code": "01023"}}  # fmt: skip
    said = wait_for_notice(page, "已核实")
    photos = "(附 1 张照片)" if with_photo else ""
    assert said == f"已核实:案件 {mine['case_no']}{photos},类别已更正为「不明井盖异常」,现为「核实」"
    case = api.get(f"/cases/{mine['id']}").json()
    assert (case["state"], case["class_code"], case["class_name"]) == ("verified", "01023", "不明井盖异常")
    last = case["timeline"][-1]
    assert (last["action"], last["actor"], last["note"]) == ("verify", SUPERVISOR, "现场为井盖缺失,非垃圾")
    assert [p["kind"] for p in case["photos"]] == (["evidence"] if with_photo else [])
    change = last["details"]["class_change"]
    assert (change["from"], change["to"], change["to_name"]) == ("06010", "01023", "不明井盖异常")
    assert not phone.watch.bad, phone.watch.bad


def test_a_step_that_takes_no_class_offers_no_class_search(phone: Tab, live: LiveServer, api: httpx.Client) -> None:
    (lon, lat, _grid), _ = two_grids(api)
    done = handled(api, live, lon, lat, "已清运")
    page = phone.page
    stand_at(phone, live, lon, lat, "grid_worker")
    page.wait_for_selector(f'#gf-tasks li[data-id="{done["id"]}"]')
    task = open_task(page, done["id"])
    assert buttons(page) == [("check", "核查"), ("rework", "返工")]
    assert task.locator("#gf-task-search").count() == 0 and task.locator("#gf-task-class").count() == 0


def escalation_text(e: dict[str, Any]) -> str:
    who = " ".join(x for x in (e["leader_name"], e["leader_phone"]) if x)
    return e["label"] + (f" {e['grid_name']}" if e["grid_name"] else "") + (f"(网格长 {who})" if who else "")


def test_a_grid_worker_escalates_a_case_the_grid_cannot_resolve(
    phone: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """提级 from the phone: a 网格员 sends a reported case up to the 二级网格 with a reason (required, said before
    anything is sent); the notice names who coordinates it, and the task says it is escalated."""
    (lon, lat, _grid), _ = two_grids(api)
    mine = reported(api, lon, lat, "占道经营,网格内无法劝离")
    page = phone.page
    stand_at(phone, live, lon, lat, "grid_worker")
    page.wait_for_selector(f'#gf-tasks li[data-id="{mine["id"]}"]')
    task = open_task(page, mine["id"])
    assert buttons(page) == [("verify", "核实"), ("escalate", "提级")]
    assert task.locator("label.gf-label").first.inner_text().startswith("核实情况 / 提级原因(必填)")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.click('#gf-task button[data-action="escalate"]')
    assert page.locator("#gf-task-error").inner_text() == "提级需填写提级原因" and posts == []
    page.fill("#gf-task-text", "多次劝离无效,需社区协调执法")
    page.click('#gf-task button[data-action="escalate"]')
    said = wait_for_notice(page, "已提级")
    case = api.get(f"/cases/{mine['id']}").json()
    assert (case["state"], case["escalation_level"]) == ("reported", 2)
    assert said == (
        f"已提级:案件 {mine['case_no']},由{escalation_text(case['escalation'])}协调,现为「{case['state_label']}」"
    )
    last = case["timeline"][-1]
    assert (last["action"], last["role"], last["actor"]) == ("escalate", "grid_worker", SUPERVISOR)
    assert last["details"]["reason"] == "多次劝离无效,需社区协调执法"
    assert posts == [f"{live.url}/cases/{mine['id']}/actions/escalate"]

    open_task(page, mine["id"])  # still 待核实 in the grid, now marked as escalated
    assert task.locator(".gf-task-desc").inner_text() == (
        f"占道经营,网格内无法劝离\n已提级:{escalation_text(case['escalation'])}"
    )
    assert buttons(page) == [("verify", "核实"), ("escalate", "提级")]  # 一级 is still above
    phone.shot("escalated")
    assert not phone.watch.bad, phone.watch.bad


def test_the_last_task_list_is_kept_on_the_phone_and_shown_offline_read_only(
    phone: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """A 网格员 who loaded 我的任务 and lost the network (a basement, a tunnel) — or reopened the page offline — still
    sees that list with its time and can open a case from it; a step taken there is queued with the version kept
    (tests/browser/test_field_offline_steps_browser.py), and the list is asked again when the network is back."""
    (lon, lat, grid), _ = two_grids(api)
    mine = reported(api, lon, lat, "地下通道积水")
    page, context = phone.page, phone.context
    stand_at(phone, live, lon, lat, "supervisor")
    page.wait_for_selector(f'#gf-tasks li[data-id="{mine["id"]}"]')
    page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    page.evaluate("() => navigator.serviceWorker.ready")
    loaded = page.evaluate("() => JSON.parse(localStorage.getItem('gisgrid.field.tasks')).at")
    at = page.evaluate("(t) => { const d = new Date(t), p = n => (n < 10 ? '0' : '') + n; return d.getFullYear()"
                       " + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':'"
                       " + p(d.getMinutes()); }", loaded)  # fmt: skip
    summary = f"{grid['tier3']['name']}:待核实 1 件,待核查 0 件"
    kept = f"显示 {at} 载入的任务(办理先存本机,联网后提交)。{summary}"

    context.set_offline(True)
    page.click("#gf-tasks-refresh")
    assert page.locator("#gf-tasks-hint").inner_text() == "离线:" + kept
    assert listed(page) == [mine["id"]]
    task = open_task(page, mine["id"])
    assert task.locator(".gf-task-desc").inner_text() == "地下通道积水"
    assert task.locator(".gf-task-offline").inner_text() == (
        "未连上服务器:此为本机保存的任务。办理将保存在本机「待发送」,联网后提交;如案件已被他人更新,则不提交并提示。"
    )
    assert buttons(page) == [("verify", "核实")]  # queued when taken (the version kept goes with it)
    assert task.locator(".gf-task-photos small").inner_text() == "照片联网后可看"

    answer = page.reload()  # reopened offline: the page from the service worker, the list from the phone
    assert answer is not None and answer.from_service_worker
    page.wait_for_selector(f'#gf-tasks li[data-id="{mine["id"]}"]')
    assert page.locator("#gf-tasks-hint").inner_text() == "离线:" + kept
    phone.shot("tasks-offline")

    step(api, mine["id"], "verify", "supervisor")  # verified by someone else meanwhile
    context.set_offline(False)  # back online: asked again
    page.wait_for_function("() => !document.querySelector('#gf-tasks li[data-id]')")
    assert page.locator("#gf-tasks-hint").inner_text() == f"{grid['tier3']['name']}:待核实 0 件,待核查 0 件"
    assert not phone.watch.bad, phone.watch.bad
