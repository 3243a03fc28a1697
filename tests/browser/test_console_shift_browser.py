"""The operator console on a shift (review30): a 409 is said where the operator is, possible duplicates are listed
and merged, a refusal by role names who may act, the map's controls and clicks speak plainly, the list shows the
report time and sorts by it, and a grid code that names no grid says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text

from maps.console import OUTSIDE_CLICK_TEXT
from tests.browser.conftest import LiveServer, Tab, console_tab
from tests.browser.test_console_browser import DETAIL_H2, act_api, open_console, report

LAPTOP = {"width": 1366, "height": 768}

#: Where an element is against the panel's visible part: [panel top, panel bottom, its top, its bottom].
IN_PANEL = """(sel) => {
  const p = document.getElementById('gg-panel').getBoundingClientRect();
  const b = document.querySelector(sel).getBoundingClientRect();
  return [p.top, Math.min(p.bottom, window.innerHeight), b.top, b.bottom];
}"""


@pytest.fixture
def laptop(browser: Any, live: LiveServer, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """The console at 1366×768, where the action form is far below the detail's top."""
    yield from console_tab(browser, live.url, request, LAPTOP)


def open_case(page: Any, case: dict[str, Any], role: str) -> Any:
    page.select_option("#gg-role", role)
    page.evaluate(f"() => {{ GG.openCase({case['id']}); }}")
    page.wait_for_function(f"() => ({DETAIL_H2})().indexOf('{case['case_no']}') >= 0")
    return page.locator("#gg-detail")


def assert_in_panel(page: Any, selector: str) -> None:
    top, bottom, el_top, el_bottom = page.evaluate(IN_PANEL, selector)
    assert top - 1 <= el_top and el_bottom <= bottom + 1, (selector, top, bottom, el_top, el_bottom)  # (sub-pixels)


def test_a_409_is_said_beside_the_form_in_view_at_1366x768(laptop: Tab, live: LiveServer, api: httpx.Client) -> None:
    """review30 D2: the refusal is beside the form the operator pressed 提交 in (the form kept), or, when the case
    no longer offers the action, the note at the detail's top is scrolled into view."""
    page = laptop.page
    kept, gone = report(api, seed=201), report(api, seed=202)
    open_console(laptop, live)
    page.evaluate("() => GG.cases.stop()")  # no poll: the 409 is what finds the change
    detail = open_case(page, kept, "intake")
    detail.locator('button[data-action="reject"]').click()
    detail.locator('form.gg-form textarea[name="reason"]').fill("现场无此问题")
    act_api(api, kept["id"], "verify", "supervisor")  # another seat: 上报 → 核实, version 1 → 2
    with page.expect_response(lambda r: r.url.endswith("/actions/reject")) as refused:
        detail.locator('form.gg-form button[type="submit"]').click()
    assert refused.value.status == 409
    msg = detail.locator('form.gg-form[data-action="reject"] .gg-form-msg')
    msg.wait_for(state="visible")
    said = msg.inner_text()
    assert said == "未办理:案件已被 other-seat(监督员) 核实(版本 1→2)\n上方已显示最新内容,请核对后重新提交", said
    assert detail.locator('form.gg-form textarea[name="reason"]').input_value() == "现场无此问题"
    assert page.evaluate("() => document.getElementById('gg-panel').scrollTop") > 0  # the form is far down
    assert_in_panel(page, 'form.gg-form[data-action="reject"] .gg-form-msg')
    laptop.shot("409-beside-form")
    # the action is gone from the case (作废 of a case just 不予立案): the note is brought into view
    detail = open_case(page, gone, "shift_lead")
    detail.locator('button[data-action="void"]').click()
    detail.locator('form.gg-form textarea[name="reason"]').fill("误报")
    act_api(api, gone["id"], "reject", "intake", reason="重复上报")
    with page.expect_response(lambda r: r.url.endswith("/actions/void")) as refused:
        detail.locator('form.gg-form button[type="submit"]').click()
    assert refused.value.status == 409
    page.wait_for_function("() => /不能再办理「作废」/.test(document.getElementById('gg-detail').innerText)")
    assert detail.locator(".gg-refusal").inner_text() == (
        "未办理:案件已被 other-seat(受理员) 不予立案(版本 1→2)\n"
        "当前状态「不予立案」不能再办理「作废」,未提交的内容:作废原因:误报"
    )
    assert detail.locator("form.gg-form").count() == 0
    assert_in_panel(page, "#gg-detail .gg-refusal")
    laptop.shot("409-note-in-view")


def test_possible_duplicates_are_listed_and_one_is_merged_into_another(
    desk: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """review30 D4: three reports at one spot; the third lists the two (number, state now, distance; a click opens
    one), 合并到… is offered where 作废 is (值班长), a refusal says why, a merge voids it into the kept case and the
    list and the map drop it."""
    first, second, third = (report(api, seed=301) for _ in range(3))
    assert [d["id"] for d in third["routing"]["duplicates"]] == [first["id"], second["id"]]
    page = desk.page
    open_console(desk, live)
    page.wait_for_selector(f'#gg-list li[data-id="{third["id"]}"]')
    detail = open_case(page, third, "intake")
    dups = detail.locator("ul.gg-dups li")
    assert dups.count() == 2
    assert detail.locator("h3", has_text="疑似重复案件(2 件").count() == 1
    row = dups.nth(0).inner_text()
    assert row.startswith(f"{first['case_no']} · 上报 · 相距 0.0 米 · 上报 "), row
    assert detail.locator('button[data-action="merge"]').count() == 0  # 受理员 may not 作废, so may not merge
    act_api(api, second["id"], "void", "shift_lead", reason="误报")  # the second is no longer open
    detail = open_case(page, third, "shift_lead")
    page.wait_for_function(
        f"() => (document.querySelector('ul.gg-dups li[data-id=\"{second['id']}\"] .gg-dup-state') || {{}})"
        ".textContent === '作废'"
    )  # its state now, not as it was at the report
    detail.locator('button[data-action="merge"]').click()
    form = detail.locator('form.gg-form[data-action="merge"]')
    # each with its state now; the voided one is not offered (the API keeps open, unmerged cases only: U6)
    page.wait_for_function("() => !document.querySelector('form[data-action=\"merge\"] select').disabled")
    options = form.locator('select[name="into"] option').all_inner_texts()
    assert len(options) == 1 and options[0].startswith(f"{first['case_no']} · 上报 · 相距 0.0 米 · 上报 "), options
    assert form.locator(".gg-merge-none").inner_text() == f"不可保留(已不在办):{second['case_no']}(作废)"
    desk.shot("merge-offers")
    form.locator('select[name="into"]').select_option(str(first["id"]))
    with page.expect_response(lambda r: r.url.endswith(f"/cases/{third['id']}/merge")) as merged:
        form.locator('button[type="submit"]').click()
    assert merged.value.status == 200
    page.wait_for_function(f"() => /已合并到 {first['case_no']}/.test(document.getElementById('gg-detail').innerText)")
    assert detail.locator("dt:text-is('状态') + dd").inner_text().startswith("作废")
    assert detail.locator("dt:text-is('合并到') + dd").inner_text() == first["case_no"]
    stored = api.get(f"/cases/{third['id']}").json()
    assert stored["state"] == "voided" and stored["duplicate_of"] == first["id"]
    # the list (在办) and the map drop it; the kept case stays
    page.wait_for_function(f"() => !document.querySelector('#gg-list li[data-id=\"{third['id']}\"]')")
    page.wait_for_function(f"() => !GG.cases.getLayer({third['id']})")
    assert page.locator(f'#gg-list li[data-id="{first["id"]}"]').count() == 1
    assert page.evaluate(f"() => !!GG.cases.getLayer({first['id']})")
    desk.shot("merged")
    detail.locator("dt:text-is('合并到') + dd a").click()  # the kept case opens from the link
    page.wait_for_function(f"() => ({DETAIL_H2})().indexOf('{first['case_no']}') >= 0")
    assert not [b for b in desk.watch.bad if "/merge" not in b], desk.watch.bad


def test_a_refusal_by_role_names_who_may_take_the_step(desk: Tab, live: LiveServer, api: httpx.Client) -> None:
    """review30 D5: a gateway sets X-Role from the login (here forced to 受理员); the 403 names the roles."""
    case = report(api, seed=401)
    act_api(api, case["id"], "verify", "supervisor")
    page = desk.page
    page.route("**/actions/**", lambda route: route.continue_(headers={**route.request.headers, "x-role": "intake"}))
    open_console(desk, live)
    detail = open_case(page, case, "shift_lead")
    detail.locator('button[data-action="file"]').click()
    with page.expect_response(lambda r: r.url.endswith("/actions/file")) as refused:
        detail.locator('form.gg-form button[type="submit"]').click()
    assert refused.value.status == 403
    msg = detail.locator("form.gg-form .gg-form-msg > div").first
    msg.wait_for(state="visible")
    assert msg.inner_text() == "未办理:立案 仅限 值班长 办理(当前身份:受理员)"
    desk.shot("role-refused")


def test_map_controls_and_an_outside_click_speak_plainly(desk: Tab, live: LiveServer) -> None:
    """review30 D7 and D8: zh-CN titles on Leaflet's controls; a click outside the district says only that."""
    page = desk.page
    open_console(desk, live)
    got = page.evaluate(
        """() => ['.leaflet-control-zoom-in', '.leaflet-control-zoom-out', '.leaflet-control-layers-toggle']
             .map(s => { const a = document.querySelector(s); return a && [a.title, a.getAttribute('aria-label')]; })"""
    )
    assert got == [["放大", "放大"], ["缩小", "缩小"], ["图层", "图层"]]
    english = page.evaluate(
        """() => [...document.querySelectorAll('[title],[aria-label]')]
               .map(e => (e.title || '') + ' ' + (e.getAttribute('aria-label') || ''))
               .filter(t => /Zoom|Layers/.test(t))"""
    )
    assert english == []
    # the zoom buttons stay above the layer control, in the top-left corner
    order = page.evaluate(
        "() => [...document.querySelector('.leaflet-top.leaflet-left').children].map(c => c.className)"
    )
    assert "leaflet-control-zoom" in order[0] and "leaflet-control-layers" in order[1], order
    with page.expect_response(lambda r: "/grids/locate?" in r.url) as located:
        page.evaluate(
            "() => { const b = GG.map.getBounds();"
            " GG.map.fire('click', {latlng: L.latLng(b.getNorth() + 0.2, b.getEast() + 0.2)}); }"
        )
    assert located.value.status == 404
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    assert popup.inner_text() == OUTSIDE_CLICK_TEXT == "此处不在本区网格范围内"
    close = page.locator(".leaflet-popup-close-button")
    assert (close.get_attribute("title"), close.get_attribute("aria-label")) == ("关闭", "关闭")  # not "Close popup"


def test_the_list_shows_the_report_time_and_sorts_newest_first_on_request(
    desk: Tab, live: LiveServer, api: httpx.Client, clean_db: Engine
) -> None:
    """review30 gap 1: each list item says 上报 MM-DD HH:mm; 排序 按灯色 (red first) or 最新上报优先."""
    older, newer = report(api, seed=501), report(api, seed=502)
    with clean_db.begin() as conn:  # the older one overdue: red
        conn.execute(text("UPDATE cases SET due_at = now() - interval '3 days' WHERE id = :id"), {"id": older["id"]})
    page = desk.page
    open_console(desk, live)
    page.wait_for_selector(f'#gg-list li[data-id="{newer["id"]}"]')
    ids = page.eval_on_selector_all("#gg-list li", "ls => ls.map(l => Number(l.dataset.id))")
    assert ids == [older["id"], newer["id"]]  # by light: red first
    when = page.locator(f'#gg-list li[data-id="{newer["id"]}"] small').inner_text()
    created = newer["created_at"]
    assert when.startswith(f"上报 {created[5:10]} {created[11:16]} · 时限 "), when
    # 按灯色 asks the API for the most urgent first (review40 U2: a page of the newest, sorted, hid older red ones)
    assert [u for u in desk.watch.requests if "/cases?" in u and "sort=due" in u]
    with page.expect_request(lambda r: "/cases?" in r.url and "sort=newest" in r.url):
        page.select_option("#gg-sort", "newest")
    page.wait_for_function(
        f"() => Array.from(document.querySelectorAll('#gg-list li')).map(l => Number(l.dataset.id)).join() === "
        f"'{newer['id']},{older['id']}'"
    )
    ids = page.eval_on_selector_all("#gg-list li", "ls => ls.map(l => Number(l.dataset.id))")
    assert ids == [newer["id"], older["id"]]
    desk.shot("newest-first")


def test_a_grid_code_that_names_no_grid_says_so(desk: Tab, live: LiveServer, api: httpx.Client) -> None:
    """review30 gap 3: a well-formed code of no grid is not just 共 0 件 (asked of /grids/{code} on 筛选 only)."""
    case = report(api, seed=601)
    page = desk.page
    open_console(desk, live)
    grid = page.locator('#gg-filters input[name="grid"]')
    grid.fill("999999999")
    with page.expect_response(lambda r: r.url.endswith("/grids/999999999")) as asked:
        page.click('#gg-filters button[type="submit"]')
    assert asked.value.status == 404
    # Said with this filter's count only (the list of the filter before, 共 1 件, may still be shown meanwhile).
    page.wait_for_function("() => /没有此网格编码/.test(document.getElementById('gg-count').textContent)")
    assert page.inner_text("#gg-count") == "共 0 件 · 网格编码「999999999」:没有此网格编码"
    desk.shot("no-such-grid")
    grid.fill(case["street_code"])
    with page.expect_response(lambda r: r.url.endswith(f"/grids/{case['street_code']}")) as asked:
        page.click('#gg-filters button[type="submit"]')
    assert asked.value.status == 200
    page.wait_for_function("() => /^共 1 件$/.test(document.getElementById('gg-count').textContent)")
    grids_asked = [u for u in desk.watch.requests if "/grids/" in u and "/grids/locate" not in u]
    assert len(grids_asked) == 2  # once per 筛选, not per keystroke or poll


def test_a_missing_grid_is_said_with_its_own_count_not_the_list_shown_before(
    desk: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """The grid check answering before the filtered list said 共 1 件 (the list before) · 没有此网格编码 (a CI run
    caught it): the note joins this filter's count only. The list is held back here so the 404 comes first."""
    report(api, seed=611)
    page = desk.page
    open_console(desk, live)
    page.evaluate(
        """() => { window.ggCounts = []; const c = document.getElementById('gg-count');
                   new MutationObserver(() => ggCounts.push(c.textContent)).observe(c, {childList: true,
                     characterData: true, subtree: true});
                   const update = GG.cases.update.bind(GG.cases);
                   GG.cases.update = () => setTimeout(update, 400); }"""
    )
    page.locator('#gg-filters input[name="grid"]').fill("999999999")
    with page.expect_response(lambda r: r.url.endswith("/grids/999999999")):
        page.click('#gg-filters button[type="submit"]')
    page.wait_for_function("() => /^共 0 件/.test(document.getElementById('gg-count').textContent)")
    assert page.inner_text("#gg-count") == "共 0 件 · 网格编码「999999999」:没有此网格编码"
    assert [t for t in page.evaluate("() => ggCounts") if "没有此网格编码" in t and not t.startswith("共 0 件")] == []


def test_a_case_filed_by_another_system_shows_its_number(desk: Tab, live: LiveServer, api: httpx.Client) -> None:
    """review29 gap 2: a 12345 工单号 filed with a report is in its detail (来源单号); a case without one has none."""
    hotline = report(api, seed=501, source="hotline", external_ref="12345-20261128-0042")
    plain = report(api, seed=502)
    page = desk.page
    open_console(desk, live)
    detail = open_case(page, hotline, "dispatcher")
    assert "来源单号12345-20261128-0042" in detail.inner_text().replace(" ", "").replace("\n", "")
    detail = open_case(page, plain, "dispatcher")
    assert "来源单号" not in detail.inner_text()


def test_a_grid_filter_outlines_the_grid_and_brings_it_into_view(
    desk: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """review30 gap 2: filtering by a tier-3 grid drew its 4 cases in a corner of the whole district; the grid is
    now outlined and the map zooms to it, and 清除 takes the outline away."""
    case = report(api, seed=701)
    page = desk.page
    open_console(desk, live)
    page.evaluate(f"() => GG.map.setView([{case['lat'] + 0.05}, {case['lon'] + 0.05}], 11, {{animate: false}})")
    page.locator('#gg-filters input[name="grid"]').fill(case["tier3_code"])
    page.click('#gg-filters button[type="submit"]')
    page.wait_for_function("() => !!GG.gridOutline")
    page.wait_for_function("() => GG.gridOutline.getBounds().contains(GG.map.getCenter())")
    fits, zoom = page.evaluate("() => [GG.map.getBounds().contains(GG.gridOutline.getBounds()), GG.map.getZoom()]")
    assert fits and zoom > 11, (fits, zoom)
    assert page.evaluate(f"() => GG.gridOutline.getBounds().contains([{case['lat']}, {case['lon']}])")
    desk.shot("grid-outlined")
    page.click('#gg-filters button[type="reset"]')
    page.wait_for_function("() => !GG.gridOutline")


def verified_with_its_answer_lost(desk: Tab, live: LiveServer, api: httpx.Client, seed: int) -> tuple:
    """A new case opened as 监督员, its 核实 submitted from the form: the server takes the step, the answer never
    arrives (the page says 无法连接服务器). (page, case, detail, the JSON bodies the page sent)."""
    page = desk.page
    case = report(api, seed=seed)
    open_console(desk, live)
    page.evaluate("() => GG.cases.stop()")
    detail = open_case(page, case, "supervisor")
    detail.locator('button[data-action="verify"]').click()
    sent: list[dict[str, Any]] = []

    def lose_the_answer(route: Any) -> None:
        sent.append(route.request.post_data_json)
        route.fetch()  # the server takes the step …
        route.abort("connectionreset")  # … and the answer never arrives

    page.route("**/actions/verify", lose_the_answer)
    detail.locator('form.gg-form button[type="submit"]').click()
    msg = detail.locator('form.gg-form[data-action="verify"] .gg-form-msg')
    msg.wait_for(state="visible")
    assert "无法连接服务器" in msg.inner_text()
    assert api.get(f"/cases/{case['id']}").json()["state"] == "verified"  # taken, though the page does not know
    page.unroute("**/actions/verify")
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/actions/verify") else None)
    return page, case, detail, sent


def test_submitting_again_after_a_lost_answer_takes_the_step_once(
    desk: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """The 核实 reaches the server but its answer is lost (无法连接服务器); 提交 again sends the form's key again and
    shows the case as verified — one step in the timeline, no 409."""
    page, case, detail, sent = verified_with_its_answer_lost(desk, live, api, seed=203)
    with page.expect_response(lambda r: r.url.endswith("/actions/verify")) as again:
        detail.locator('form.gg-form button[type="submit"]').click()
    assert again.value.status == 200 and again.value.headers["idempotent-replayed"] == "true"
    page.wait_for_function("() => /已办理:核实/.test(document.getElementById('gg-detail').innerText)")
    keys = [s["idempotency_key"] for s in sent]
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 36
    timeline = api.get(f"/cases/{case['id']}").json()["timeline"]
    assert [t["action"] for t in timeline] == ["report", "verify"]
    desk.shot("resubmit-after-lost-answer")


def test_a_changed_form_sent_after_a_lost_answer_says_the_step_stands(
    desk: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """review34 D4: the form changed after its lost answer and sent again is a 409 idempotency_key_reused; the
    console said a report's text and "案件已被他人更新". It says the step stands and the change was not sent."""
    page, case, detail, sent = verified_with_its_answer_lost(desk, live, api, seed=204)
    detail.locator('form.gg-form textarea[name="note"]').fill("补充:现场已拍照")
    with page.expect_response(lambda r: r.url.endswith("/actions/verify")) as again:
        detail.locator('form.gg-form button[type="submit"]').click()
    assert again.value.status == 409
    assert sent[1]["idempotency_key"] == sent[0]["idempotency_key"] and sent[1]["note"] == "补充:现场已拍照"
    page.wait_for_function("() => /此前提交的「核实」已办理/.test(document.getElementById('gg-detail').innerText)")
    text_ = detail.inner_text()
    assert "本次修改未提交:此前提交的「核实」已办理(当时应答丢失)" in text_ and "已显示办理后的最新内容" in text_
    assert "他人" not in text_ and "上报" not in text_.split("本次修改未提交")[1].split("\n")[0]
    assert [t["action"] for t in api.get(f"/cases/{case['id']}").json()["timeline"]] == ["report", "verify"]
    desk.shot("changed-form-after-lost-answer")
