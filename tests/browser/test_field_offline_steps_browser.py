"""我的任务 offline: a step taken on a case opened from the list kept on the phone (a basement, a tunnel) is queued in
the outbox with the case's version as the phone holds it and its idempotency key, said plainly to wait for the
network (待联网提交), marked on the task list, and sent exactly once, in order, when the network returns; a case
someone else changed meanwhile is refused (409), never overwritten: the step is shown not done with the reason in
Chinese, what was typed and the photos kept, to reopen the case online or discard."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx2 as httpx
from sqlalchemy import Engine, text

from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_field_browser import a_photo
from tests.browser.test_field_status_browser import wait_for_notice
from tests.browser.test_field_tasks_browser import (
    SUPERVISOR,
    buttons,
    handled,
    listed,
    open_task,
    reported,
    stand_at,
    step,
    two_grids,
)


def transitions(engine: Engine, cid: int) -> list[tuple[str, int, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, version, idempotency_key FROM case_transitions WHERE case_id = :c ORDER BY id"),
            {"c": cid},
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def go_offline(phone: Tab, cid: int) -> None:
    """The network cut (as the offline report test cuts it) and 我的任务 shown from the list kept on the phone."""
    page = phone.page
    phone.context.set_offline(True)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '离线'")
    page.click("#gf-tasks-refresh")
    page.wait_for_function("() => document.getElementById('gf-tasks-hint').textContent.indexOf('离线:') === 0")
    assert cid in listed(page)


def two_handled_offline(phone: Tab, live: LiveServer, api: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two handled cases side by side in the 网格员's tasks, then the network cut: the kept list shows both."""
    (lon, lat, _grid), _ = two_grids(api)
    first = handled(api, live, lon, lat, "已清运")
    second = handled(api, live, lon + 1e-5, lat, "已清扫")
    stand_at(phone, live, lon, lat, "grid_worker")
    phone.page.wait_for_selector(f'#gf-tasks li[data-id="{second["id"]}"]')
    go_offline(phone, first["id"])
    return first, second


def test_a_check_queued_offline_arrives_exactly_once_with_its_note_and_photo(
    phone: Tab, live: LiveServer, api: httpx.Client, clean_db: Engine, tmp_path: Any
) -> None:
    (lon, lat, _grid), _ = two_grids(api)
    done = handled(api, live, lon, lat, "已清运")
    page = phone.page
    stand_at(phone, live, lon, lat, "grid_worker")
    page.wait_for_selector(f'#gf-tasks li[data-id="{done["id"]}"]')
    go_offline(phone, done["id"])
    assert "(办理先存本机,联网后提交)" in page.locator("#gf-tasks-hint").inner_text()

    task = open_task(page, done["id"])
    assert task.locator(".gf-task-offline").inner_text() == (
        "未连上服务器:此为本机保存的任务。办理将保存在本机「待发送」,联网后提交;如案件已被他人更新,则不提交并提示。"
    )
    assert buttons(page) == [("check", "核查"), ("rework", "返工")]  # the kept list's allowed_actions
    posts: list[Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.set_input_files("#gf-task-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-task-thumbs img")
    page.fill("#gf-task-text", "地下室积水已排干")
    page.click('#gf-task button[data-action="check"]')
    said = wait_for_notice(page, "已保存核查")
    assert said == (
        f"已保存核查:案件 {done['case_no']}(附 1 张照片),待联网提交(见「待发送」,联网后按顺序提交一次;"
        "案件如已被他人更新则不提交)"
    )
    assert page.is_hidden("#gf-task")
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '1'")
    line = page.locator("#gf-queue li.gf-step")
    assert line.locator("b").inner_text() == f"核查 · 案件 {done['case_no']}"
    assert line.locator(".gf-status").inner_text() == "待联网提交"
    # the task list marks the case: nobody takes the step twice
    mark = page.locator(f'#gf-tasks li[data-id="{done["id"]}"] .gf-task-queued')
    assert mark.inner_text() == "已核查,待联网提交"
    open_task(page, done["id"])
    assert buttons(page) == [] and "待联网提交" in task.locator(".gf-task-queued").inner_text()
    queued = page.evaluate("() => GF.outbox.all()")
    assert len(queued) == 1
    rec = queued[0]
    assert (rec["kind"], rec["caseId"], rec["action"], rec["version"], rec["text"]) == (
        "step", done["id"], "check", done["version"], "地下室积水已排干"
    )  # fmt: skip
    assert len(rec["photos"]) == 1 and len(rec["key"]) == 36
    page.evaluate("() => GF.flush()")  # the retry timer while offline: nothing leaves
    assert posts == [] and page.locator("#gf-queue-n").inner_text() == "1"
    assert api.get(f"/cases/{done['id']}").json()["state"] == "handled"
    phone.shot("step-queued-offline")

    phone.context.set_offline(False)  # the `online` event sends the outbox
    said = wait_for_notice(page, "已核查(离线办理,已提交)")
    assert said == f"已核查(离线办理,已提交):案件 {done['case_no']}(附 1 张照片),现为「核查」"
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'")
    page.evaluate("() => Promise.all([GF.flush(), GF.flush()])")  # timer + event racing: still one step
    assert [(p.url, p.headers["idempotency-key"], p.headers["x-actor"]) for p in posts] == [
        (f"{live.url}/cases/{done['id']}/actions/check/form", rec["key"], quote(SUPERVISOR))
    ]
    case = api.get(f"/cases/{done['id']}").json()
    assert case["state"] == "checked"
    checks = [t for t in case["timeline"] if t["action"] == "check"]
    assert len(checks) == 1
    assert (checks[0]["role"], checks[0]["actor"], checks[0]["details"]) == (
        "grid_worker", SUPERVISOR, {"result": "地下室积水已排干"}
    )  # fmt: skip
    assert [p["kind"] for p in case["photos"]] == ["after", "evidence"]
    assert [t for t in transitions(clean_db, done["id"]) if t[0] == "check"] == [
        ("check", done["version"] + 1, rec["key"])
    ]
    page.wait_for_function(f"() => !document.querySelector('#gf-tasks li[data-id=\"{done['id']}\"]')")
    assert not phone.watch.bad, phone.watch.bad


def test_a_verify_queued_offline_on_a_case_changed_meanwhile_is_refused_and_kept(
    phone: Tab, live: LiveServer, api: httpx.Client, clean_db: Engine, tmp_path: Any
) -> None:
    (lon, lat, _grid), _ = two_grids(api)
    mine = reported(api, lon, lat, "地下通道井盖缺失")  # reported as 暴露垃圾 (06010)
    page = phone.page
    stand_at(phone, live, lon, lat, "supervisor")
    page.wait_for_selector(f'#gf-tasks li[data-id="{mine["id"]}"]')
    go_offline(phone, mine["id"])
    task = open_task(page, mine["id"])
    assert buttons(page) == [("verify", "核实")]
    task.locator("#gf-task-search").fill("不明井盖")  # the class correction of 核实, offline too
    task.locator('#gf-task-classes li[data-code="01023"]').click()
    page.set_input_files("#gf-task-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-task-thumbs img")
    page.fill("#gf-task-text", "现场为井盖缺失,非垃圾")
    page.click('#gf-task button[data-action="verify"]')
    wait_for_notice(page, "已保存核实")
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '1'")

    step(api, mine["id"], "request_verify", "intake")  # the desk changed the case meanwhile (version 1 → 2)
    before = api.get(f"/cases/{mine['id']}").json()
    phone.context.set_offline(False)
    refused = page.locator("#gf-rejected .gf-refused-step")
    refused.wait_for()
    reason = f"案件 {mine['case_no']} 已被他人更新,此离线核实未提交:请联网后重新打开任务核对"
    assert refused.locator("h3").inner_text().startswith(f"未提交:核实 · 案件 {mine['case_no']} · ")
    assert refused.locator(".gf-reason").inner_text() == reason
    assert refused.locator(".gf-kept").inner_text() == (
        "核实情况:现场为井盖缺失,非垃圾 · 更正类别:不明井盖异常 · 1 张照片(已保留在本机)"
    )
    assert refused.locator("small").first.inner_text().startswith("服务器原文:(409) ")
    assert wait_for_notice(page, reason) == reason + "(所填内容和照片已保留,见页面顶部)"
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'")
    kept = page.evaluate("() => GF.outbox.all()")
    assert len(kept) == 1 and kept[0]["refused"]["status"] == 409 and len(kept[0]["photos"]) == 1
    after = api.get(f"/cases/{mine['id']}").json()  # not overwritten: the case as the desk left it
    assert (after["state"], after["version"], after["class_code"]) == ("reported", before["version"], "06010")
    assert after["timeline"] == before["timeline"] and after["photos"] == before["photos"]
    assert "verify" not in [t[0] for t in transitions(clean_db, mine["id"])]
    phone.shot("step-refused")

    # reopened online: the case as it is now, with what was typed, the class and the photo back in the form
    refused.locator("button.gf-reopen").click()
    page.wait_for_function("() => document.getElementById('gf-task-text') &&"
                           " document.getElementById('gf-task-text').value !== ''")  # fmt: skip
    assert task.locator(".gf-task-said").inner_text() == reason
    assert page.input_value("#gf-task-text") == "现场为井盖缺失,非垃圾"
    assert task.locator("#gf-task-class").inner_text() == "更正类别为:不明井盖异常(01023),原为 暴露垃圾"
    assert task.locator("#gf-task-thumbs img").count() == 1
    page.click('#gf-task button[data-action="verify"]')
    said = wait_for_notice(page, "已核实")
    assert said == f"已核实:案件 {mine['case_no']}(附 1 张照片),类别已更正为「不明井盖异常」,现为「核实」"
    page.wait_for_function("() => !document.querySelector('#gf-rejected .gf-refused-step')")
    assert page.evaluate("() => GF.outbox.all()") == []
    case = api.get(f"/cases/{mine['id']}").json()
    assert (case["state"], case["class_code"]) == ("verified", "01023")
    assert case["timeline"][-1]["note"] == "现场为井盖缺失,非垃圾"
    assert [p["kind"] for p in case["photos"]] == ["evidence"]
    stale = f"409 {live.url}/cases/{mine['id']}/actions/verify/form"
    assert phone.watch.bad == [stale], phone.watch.bad  # the queued step's refusal, and nothing else


def test_a_queued_step_refused_for_another_reason_says_the_servers_reason(phone: Tab, live: LiveServer) -> None:
    """Other refusals (role, state) are shown with the server's reason in Chinese, never dropped silently."""
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_function("() => window.GF && GF.stepRefusal")
    rec = {"caseNo": "2026008482", "action": "verify"}
    state = {"error": "transition_not_allowed", "reason": "transition_not_allowed",
             "detail": {"message": "verify is not allowed in state verified", "items": []}}  # fmt: skip
    got = page.evaluate("([r, b]) => GF.stepRefusal(r, b, 409)", [rec, state])
    assert got["reason"] == "案件 2026008482 的离线核实未提交:案件当前状态不能办理此操作"
    assert got["server"] == "(409) verify is not allowed in state verified"
    stale = {"error": "stale_version", "detail": {"message": "stale", "items": []}}
    got = page.evaluate("([r, b]) => GF.stepRefusal(r, b, 409)", [rec, stale])
    assert got["reason"] == "案件 2026008482 已被他人更新,此离线核实未提交:请联网后重新打开任务核对"
    role = {"error": "role_not_allowed", "detail": {"message": "role grid_worker may not verify", "items": []}}
    got = page.evaluate("([r, b]) => GF.stepRefusal(r, b, 403)", [{**rec, "action": "check"}, role])
    assert got["reason"] == "案件 2026008482 的离线核查未提交:当前身份无权办理此操作"


def test_steps_and_reports_queued_offline_go_in_the_order_taken_and_a_step_can_be_discarded(
    phone: Tab, live: LiveServer, api: httpx.Client, clean_db: Engine
) -> None:
    first, second = two_handled_offline(phone, live, api)
    page = phone.page
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    open_task(page, first["id"])
    page.click('#gf-task button[data-action="check"]')  # 核查 without a note: the JSON route
    wait_for_notice(page, "已保存核查")
    page.click('#gf-classes li[data-code="06010"]')  # then a report, located by the GPS fix
    page.fill("#gf-desc", "井边又有垃圾")
    page.click("#gf-submit")
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '2'")
    open_task(page, second["id"])
    page.fill("#gf-task-text", "仍有残留")
    page.click('#gf-task button[data-action="rework"]')
    wait_for_notice(page, "已保存返工")
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '3'")
    assert page.locator("#gf-tasks .gf-task-queued").all_inner_texts() == ["已核查,待联网提交", "已返工,待联网提交"]

    dialogs: list[str] = []

    def accept(d: Any) -> None:
        dialogs.append(d.message)
        d.accept()

    page.once("dialog", accept)
    page.locator("#gf-queue li.gf-step").nth(1).locator(".gf-discard").click()  # the 返工: changed their mind
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '2'")
    assert dialogs == ["放弃这条待发送的返工?照片和所填内容将从本机删除,不会发送。"]
    assert page.locator("#gf-notice").inner_text() == "已放弃一条待发送的返工。"
    assert page.locator("#gf-tasks .gf-task-queued").all_inner_texts() == ["已核查,待联网提交"]

    phone.context.set_offline(False)
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'")
    page.wait_for_selector("#gf-mine li[data-id]")
    assert posts == [f"{live.url}/cases/{first['id']}/actions/check", f"{live.url}/cases/form"]  # in order taken
    assert api.get(f"/cases/{first['id']}").json()["state"] == "checked"
    assert api.get(f"/cases/{second['id']}").json()["state"] == "handled"  # the discarded step never left
    assert [t[0] for t in transitions(clean_db, second["id"])][-1] == "handle"
    assert not phone.watch.bad, phone.watch.bad


def test_a_queued_step_can_be_edited_before_it_is_sent_and_a_closed_edit_goes_as_it_was(
    phone: Tab, live: LiveServer, api: httpx.Client, clean_db: Engine, tmp_path: Any
) -> None:
    """修改 on a step waiting in 待发送 puts it back in its task form (text, photo), held — not sent — meanwhile;
    taking the step again replaces it (one step, the new words, the new key); an edit closed untaken lets the step
    go as it was."""
    first, second = two_handled_offline(phone, live, api)
    page = phone.page
    for case, words in ((first, "积水已排干"), (second, "路面已清扫")):
        open_task(page, case["id"])
        if case is first:
            page.set_input_files("#gf-task-photos", str(a_photo(tmp_path)))
            page.wait_for_selector("#gf-task-thumbs img")
        page.fill("#gf-task-text", words)
        page.click('#gf-task button[data-action="check"]')
        wait_for_notice(page, "已保存核查")
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '2'")
    keys = {r["caseId"]: r["key"] for r in page.evaluate("() => GF.outbox.all()")}

    # the first: edited, taken again as 返工 with other words — it replaces the queued 核查
    page.locator(f'#gf-queue li[data-key="{keys[first["id"]]}"] button.gf-edit').click()
    page.wait_for_function("() => document.getElementById('gf-task-text') &&"
                           " document.getElementById('gf-task-text').value === '积水已排干'")  # fmt: skip
    assert page.locator("#gf-task-thumbs img").count() == 1  # the photo came back with it
    assert buttons(page) == [("check", "核查"), ("rework", "返工")]
    held = page.locator(f'#gf-queue li[data-key="{keys[first["id"]]}"] .gf-status').inner_text()
    assert held == "修改中:暂停发送,在任务中重新核查后替换此条;关闭任务则照原样发送"
    page.evaluate("() => GF.flush()")
    assert page.evaluate("() => GF.outbox.all()")[0]["held"] is True
    page.fill("#gf-task-text", "仍有积水,需返工")
    page.click('#gf-task button[data-action="rework"]')
    wait_for_notice(page, "已保存返工")
    queued = page.evaluate("() => GF.outbox.all()")
    assert sorted((r["caseId"], r["action"], r["text"], len(r["photos"])) for r in queued) == sorted(
        [(first["id"], "rework", "仍有积水,需返工", 1), (second["id"], "check", "路面已清扫", 0)]
    )
    assert keys[first["id"]] not in [r["key"] for r in queued]

    # the second: edited, then the task closed untaken — it goes as it was
    page.locator(f'#gf-queue li[data-key="{keys[second["id"]]}"] button.gf-edit').click()
    page.wait_for_function("() => document.getElementById('gf-task-text') &&"
                           " document.getElementById('gf-task-text').value === '路面已清扫'")  # fmt: skip
    page.click("#gf-task button.gf-task-close")
    page.wait_for_function(
        f"() => GF.outbox.all().then(function (a) {{ return a.filter(function (r) {{"
        f" return r.key === '{keys[second['id']]}' && !r.held; }}).length === 1; }})"
    )

    phone.context.set_offline(False)
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'")
    one = api.get(f"/cases/{first['id']}").json()
    two = api.get(f"/cases/{second['id']}").json()
    assert (one["state"], one["rework_count"]) == ("dispatched", 1)
    assert [t["action"] for t in one["timeline"]].count("check") == 0
    assert [t["details"]["reason"] for t in one["timeline"] if t["action"] == "rework"] == ["仍有积水,需返工"]
    assert two["state"] == "checked"
    assert [t["details"] for t in two["timeline"] if t["action"] == "check"] == [{"result": "路面已清扫"}]
    assert [t[2] for t in transitions(clean_db, second["id"]) if t[0] == "check"] == [keys[second["id"]]]
    assert not phone.watch.bad, phone.watch.bad
