"""The field page's statuses around one report (review38): one report is one case however often submit fires, a
second tap after it shows no errors, a lost answer is one status, and the page says what it cannot know yet
(the grid offline, cases reported on another phone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_field_browser import REPORTER, a_photo, cases_of, tap_the_map_centre
from tests.test_components_store import inside_points

NOTICE = "() => document.getElementById('gf-notice').textContent"


def open_field(tab: Tab, live: LiveServer) -> None:
    tab.page.goto(live.url + "/field")
    tab.page.wait_for_selector('#gf-classes li[data-code="06010"]')


def fill_a_report(page: Any) -> None:
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    tap_the_map_centre(page)


def wait_for_notice(page: Any, start: str) -> str:
    page.wait_for_function(f"() => document.getElementById('gf-notice').textContent.indexOf({start!r}) === 0")
    return str(page.evaluate(NOTICE))


#: Resolves once the page has finished all a submit set going: the tap's own handler chain run, no submit in
#: progress, no flush (nor one asked for), nothing in flight, nothing queued, 上报 enabled again. After this state a
#: late second send can no longer come (review57 F4: a state waited for in the page, not a fixed wait).
IDLE = """async () => {
  const tick = () => new Promise((done) => setTimeout(done, 10));
  const idle = async () => !GF.sending && !GF.flushing && !GF.again && GF.inFlight == null
    && !document.getElementById("gf-submit").disabled && (await GF.outbox.all()).length === 0;
  await tick();
  while (!(await idle())) { await tick(); }
  return true;
}"""


def wait_until_idle(page: Any) -> None:
    assert page.evaluate(IDLE) is True


def test_several_submits_in_one_task_file_one_case(phone: Tab, live: LiveServer, clean_db: Engine) -> None:
    """review38 D3: three submit events in one task (before the first send() runs) → one POST, one case; U8: a report
    without photos says 未附照片, not 附 0 张照片."""
    page = phone.page
    open_field(phone, live)
    fill_a_report(page)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.evaluate("() => { for (let i = 0; i < 3; i++) { document.getElementById('gf-submit').click(); } }")
    said = wait_for_notice(page, "已上报:案件 ")
    wait_until_idle(page)
    [(_, case_no, _, photos)] = cases_of(clean_db, REPORTER)
    assert photos == 0
    assert posts == [live.url + "/cases/form"]
    assert said == f"已上报:案件 {case_no}(未附照片)"
    assert page.is_hidden("#gf-error")
    assert page.evaluate("() => GF.outbox.all()") == []


def test_a_second_tap_right_after_a_report_shows_no_errors(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """review38 D4: the tap right after a report (the form emptied) is ignored, the success notice stays alone; later
    a tap on the empty form is checked as before."""
    page = phone.page
    open_field(phone, live)
    fill_a_report(page)
    page.set_input_files("#gf-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-thumbs img")
    page.click("#gf-submit")
    said = wait_for_notice(page, "已上报:案件 ")
    page.wait_for_function("() => !document.getElementById('gf-submit').disabled")
    page.click("#gf-submit")  # the second tap
    wait_until_idle(page)
    [(_, case_no, _, photos)] = cases_of(clean_db, REPORTER)
    assert photos == 1
    assert said == page.evaluate(NOTICE) == f"已上报:案件 {case_no}(附 1 张照片)"
    assert page.is_hidden("#gf-error")
    page.wait_for_function("() => Date.now() >= GF.quietUntil")  # a tap on the empty form later: what is missing
    page.click("#gf-submit")
    page.locator("#gf-error").wait_for(state="visible")
    assert page.locator("#gf-error").inner_text() == "请选择类别\n请定位(GPS 或地图点选),或附带含 GPS 的照片"
    assert len(cases_of(clean_db, REPORTER)) == 1


def test_a_lost_answer_is_one_status_and_an_empty_reconnect_says_so(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """review38 U7: the report reaches the server but its answer is lost: notice, queue line and badge say the same
    (未收到服务器应答); 立即发送 then gets the same case (此前已送达). Reconnecting with nothing queued says only that
    the network is back."""
    page = phone.page
    open_field(phone, live)
    fill_a_report(page)
    page.set_input_files("#gf-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-thumbs img")
    reached: list[int] = []

    def answer_lost(route: Any) -> None:
        reached.append(route.fetch().status)  # the server takes the report …
        route.abort("connectionreset")  # … and its answer never arrives

    page.route("**/cases/form", answer_lost)
    page.click("#gf-submit")
    page.wait_for_function("() => document.querySelector('#gf-queue li small') !== null")
    line = page.locator("#gf-queue li small")
    page.wait_for_function(
        "() => document.querySelector('#gf-queue li small').textContent === '未收到服务器应答,稍后自动重发'"
    )
    assert reached == [201] and len(cases_of(clean_db, REPORTER)) == 1
    assert page.evaluate(NOTICE) == "未收到服务器应答,稍后自动重发(已保存在本机,见「待发送」)"
    assert line.inner_text() == "未收到服务器应答,稍后自动重发"
    assert page.locator("#gf-net").inner_text() == "服务器无应答"
    assert page.locator("#gf-queue-n").inner_text() == "1"
    phone.shot("answer-lost")

    page.unroute("**/cases/form")
    page.click("#gf-retry")
    said = wait_for_notice(page, "已上报:案件 ")
    [(_, case_no, _, photos)] = cases_of(clean_db, REPORTER)
    assert photos == 1
    assert said == f"已上报:案件 {case_no}(附 1 张照片)(此前已送达)"
    assert page.locator("#gf-net").inner_text() == "在线"
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'")

    phone.context.set_offline(True)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '离线'")
    phone.context.set_offline(False)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '在线'")
    page.wait_for_function("() => document.getElementById('gf-notice').textContent.indexOf('网络已恢复') === 0")
    page.evaluate("() => GF.flushing")
    assert page.evaluate(NOTICE) == "网络已恢复。"
    assert len(cases_of(clean_db, REPORTER)) == 1


def test_a_server_error_is_one_status_on_the_notice_and_the_queue_line(
    phone: Tab, live: LiveServer, clean_db: Engine
) -> None:
    """As for a lost answer: a 503 leaves the report queued, and the notice no longer says 正在发送 beside a queue
    line that says the server could not take it."""
    page = phone.page
    open_field(phone, live)
    fill_a_report(page)
    page.route(
        "**/cases/form",
        lambda route: route.fulfill(status=503, content_type="application/json", body='{"error": "unavailable"}'),
    )
    page.click("#gf-submit")
    page.wait_for_function("() => document.querySelector('#gf-queue li small') !== null")
    said = "服务器暂时无法处理(503),稍后重试"
    page.wait_for_function(f"() => document.querySelector('#gf-queue li small').textContent === '{said}'")
    assert page.evaluate(NOTICE) == f"{said}(已保存在本机,见「待发送」)"
    assert cases_of(clean_db, REPORTER) == []


def test_an_offline_gps_fix_says_its_grid_comes_later(phone: Tab, live: LiveServer) -> None:
    """review38 U9: offline, a fix inside the district shows its coordinates and says the grid is found once online;
    online again, the grid is shown."""
    xs, ys = inside_points(1, seed=5)
    page = phone.page
    page.add_init_script(
        "navigator.geolocation.getCurrentPosition = function (ok) { setTimeout(function () {"
        f" ok({{coords: {{longitude: {float(xs[0])}, latitude: {float(ys[0])}, accuracy: 8}}}}); }}, 10); }};"
    )
    open_field(phone, live)
    phone.context.set_offline(True)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '离线'")
    page.click("#gf-gps")
    page.wait_for_function("() => document.getElementById('gf-loc').textContent.indexOf('GPS 定位:') === 0")
    grid = page.locator("#gf-grid")
    page.wait_for_function("() => document.getElementById('gf-grid').textContent !== ''")
    assert grid.inner_text() == "离线:网格待联网后确定"
    assert grid.get_attribute("class") == "gf-hint"
    phone.shot("offline-grid")
    phone.context.set_offline(False)
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('单元网格 ') === 0")
    assert grid.get_attribute("class") == "gf-hint"


def test_my_reports_say_they_are_this_phones(phone: Tab, live: LiveServer) -> None:
    """review38 U6: a new phone shows 暂无 under a line saying the list is this phone's own."""
    page = phone.page
    open_field(phone, live)
    assert page.locator("#gf-mine-hint").inner_text() == "本机记录:仅显示在此手机上提交的上报。"
    assert page.locator("#gf-mine li").all_inner_texts() == ["暂无"]
