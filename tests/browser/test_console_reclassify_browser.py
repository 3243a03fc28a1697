"""The console's 核实 form corrects the reported class (review45 U2): a select of the case's scheme's classes, the
reported one kept when none is chosen; the step is routed again for the chosen class."""

from __future__ import annotations

import httpx2 as httpx

from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_console_browser import open_console, report


def test_the_verify_form_corrects_the_class(desk: Tab, live: LiveServer, api: httpx.Client) -> None:
    case = report(api, seed=611)
    page = desk.page
    open_console(desk, live)
    page.evaluate("() => GG.cases.stop()")
    page.select_option("#gg-role", "supervisor")
    page.evaluate(f"() => {{ GG.openCase({case['id']}); }}")
    detail = page.locator("#gg-detail")
    detail.locator('button[data-action="verify"]').click()
    form = detail.locator('form.gg-form[data-action="verify"]')
    pick = form.locator('select[name="class_code"]')
    assert pick.locator("option").first.inner_text() == "(不更正:暴露垃圾)" and pick.input_value() == ""
    options = pick.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert "06010" not in options and "01023" in options and all(len(v) in (0, 5) for v in options)
    assert "更正类别(选填)" in form.inner_text()
    pick.select_option("01023")
    with page.expect_response(lambda r: r.url.endswith("/actions/verify")) as done:
        form.locator('button[type="submit"]').click()
    assert done.value.status == 200
    after = api.get(f"/cases/{case['id']}").json()
    assert (after["class_code"], after["state"]) == ("01023", "verified")
    assert "不明井盖异常" in after["routing"]["decision"]["explanation"]
    assert not desk.watch.bad, desk.watch.bad
