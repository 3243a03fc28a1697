"""The field page's reporter name against the located grid's staff (review U5): the evaluation counts a report by
the name typed, so the tier-3 grid's 网格长/网格员 are offered as the name (a datalist) and another name gets a hint
under the field — a hint, not a refusal."""

from __future__ import annotations

import httpx2 as httpx
import pandas as pd
from sqlalchemy import Engine, text

from gisgrid.grids import store
from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_field_browser import REPORTER, cases_of, tap_the_map_centre
from tests.browser.test_field_status_browser import open_field, wait_for_notice

STAFF = [("王建国", "网格长"), (REPORTER, "网格员"), ("赵敏", "网格员")]
OPTIONS = "() => Array.from(document.querySelectorAll('#gf-staff option')).map(o => [o.value, o.label])"


def staff_every_tier3_grid(engine: Engine) -> None:
    """The same 网格长 and 网格员 on every tier-3 grid (the test need not know which one the map's centre is in)."""
    with engine.begin() as conn:
        codes = list(conn.execute(text("SELECT code FROM management_grids WHERE tier = 3 ORDER BY code")).scalars())
        rows = [(code, role, name, f"1380000000{i}") for code in codes for i, (name, role) in enumerate(STAFF)]
        assert store.save_staff(conn, pd.DataFrame(rows, columns=["grid_code", "role", "name", "phone"])) == len(codes)


def test_the_grids_staff_are_offered_and_another_name_gets_a_hint_not_a_refusal(
    phone: Tab, live: LiveServer, api: httpx.Client, clean_db: Engine
) -> None:
    staff_every_tier3_grid(clean_db)
    page = phone.page
    open_field(phone, live)
    assert page.get_attribute("#gf-name", "list") == "gf-staff"
    page.fill("#gf-name", "李纳")  # not located yet: no list to check the name against, no hint
    assert page.evaluate(OPTIONS) == [] and page.is_hidden("#gf-name-hint")

    tap_the_map_centre(page)
    page.wait_for_function("() => document.querySelectorAll('#gf-staff option').length > 0")
    assert page.evaluate(OPTIONS) == [list(m) for m in STAFF]
    loc = page.evaluate("() => GF.loc")
    grid = api.get("/grids/locate", params={"lon": loc["lon"], "lat": loc["lat"], "datum": loc["datum"]}).json()
    hint = page.locator("#gf-name-hint")
    assert hint.is_visible()
    assert hint.inner_text() == f"「李纳」不在本网格({grid['tier3']['name']})的网格员名单中:如为本网格网格员请核对姓名"
    assert hint.get_attribute("class") == "gf-hint" and page.is_hidden("#gf-error")

    page.fill("#gf-name", f" {REPORTER} ")  # one of the grid's staff (as sent: trimmed): no hint
    assert hint.is_hidden() and hint.inner_text() == ""
    page.fill("#gf-name", "李纳")
    assert hint.is_visible()

    # Another name is still reported, and remembered for the next report as before.
    page.click('#gf-classes li[data-code="06010"]')
    page.click("#gf-submit")
    assert wait_for_notice(page, "已上报:案件 ").startswith("已上报:案件 ")
    assert len(cases_of(clean_db, "李纳")) == 1
    assert page.evaluate("() => JSON.parse(localStorage.getItem('gisgrid.field.reporter'))") == "李纳"
    page.reload()
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    assert page.input_value("#gf-name") == "李纳" and page.is_hidden("#gf-name-hint")
    assert not phone.watch.bad, phone.watch.bad


def test_a_supervisor_gets_no_staff_hint(phone: Tab, live: LiveServer, clean_db: Engine) -> None:
    """review45 U6: a 监督员 is on no grid's staff list, so the name is checked only for a 网格员."""
    staff_every_tier3_grid(clean_db)
    page = phone.page
    open_field(phone, live)
    page.select_option("#gf-role", "supervisor")
    page.fill("#gf-name", "田芳娟")
    tap_the_map_centre(page)
    page.wait_for_function("() => document.querySelectorAll('#gf-staff option').length > 0")
    hint = page.locator("#gf-name-hint")
    assert hint.is_hidden() and hint.inner_text() == ""
    page.select_option("#gf-role", "grid_worker")  # the same name as a 网格员: the hint, at once
    assert hint.is_visible() and hint.inner_text().startswith("「田芳娟」不在本网格(")
    page.select_option("#gf-role", "supervisor")
    assert hint.is_hidden()
    assert not phone.watch.bad, phone.watch.bad
