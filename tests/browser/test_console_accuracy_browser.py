"""The console's case detail shows a report's location accuracy (review45 D3): 位置精度, flagged above the photos'
limit (MAX_GPS_ERROR_M); no line for a report that gave none."""

from __future__ import annotations

import httpx2 as httpx

from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_console_browser import open_console, report


def test_the_case_detail_shows_the_location_accuracy(desk: Tab, live: LiveServer, api: httpx.Client) -> None:
    coarse, fine, none = (
        report(api, seed=621, accuracy_m=812.4),
        report(api, seed=622, accuracy_m=6.0),
        report(api, seed=623),
    )
    page = desk.page
    open_console(desk, live)
    page.evaluate("() => GG.cases.stop()")
    detail = page.locator("#gg-detail")
    shown = []
    for case in (coarse, fine, none):
        page.evaluate(f"() => {{ GG.openCase({case['id']}); }}")
        page.wait_for_function(f"() => GG.shown && GG.shown.id === {case['id']}")
        line = detail.locator("dt:text-is('位置精度') + dd")
        shown.append(line.inner_text() if line.count() else None)
    assert shown == ["约 812 米(超过 50 米,位置可能不准)", "约 6 米", None]
    assert not desk.watch.bad, desk.watch.bad
