"""The console's 考核表 in headless Chromium (review49 F6): the 评价时点 typed goes into the map and the download,
a quarter or a year is asked for by the span chosen, and a refused download is said beside its link, not a
download the browser cancels without a word."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pypdf
import pytest
from sqlalchemy import Engine

from gisgrid import cases as svc
from gisgrid import history
from gisgrid.settings import Settings
from tests.browser.conftest import LiveServer, Tab
from tests.test_evaluation_as_of import HEADER, R1


@pytest.fixture
def record(live: LiveServer, clean_db: Engine, settings: Settings, tmp_path: Path) -> Engine:
    """R1 (2025-09-30, to 990000000000000003, closed 2025-10-09) in the small district (``live`` loads it)."""
    services = svc.load_services(settings)
    src = tmp_path / "r1.csv"
    src.write_text(HEADER + "\n" + R1, encoding="utf-8")
    summary = history.import_history(
        clean_db, src, services, history.HistoryImportOptions(errors_path=tmp_path / "r1.errors.csv")
    )
    assert (summary.imported_cases, summary.refused_rows) == (1, 0), summary.to_text()
    return clean_db


def test_the_evaluation_time_goes_into_the_map_and_the_download_and_a_refused_download_is_shown(
    record: Engine, desk: Tab, live: LiveServer
) -> None:
    page = desk.page
    page.goto(live.url + "/console")
    page.wait_for_function("() => window.GG && GG.map && GG.cases")
    page.click("#gg-eval summary")
    page.fill('#gg-eval-form input[name="period"]', "2025-09")
    page.select_option("#gg-eval-subject", "department")
    page.fill('#gg-eval-form input[name="as_of"]', "2025-10-15T00:00")
    href = page.get_attribute("#gg-eval-xlsx", "href")
    assert href == "/evaluation?period=2025-09&subject=department&level=tier3&format=xlsx&as_of=2025-10-15T00%3A00"
    with page.expect_download() as got:
        page.click("#gg-eval-xlsx")
    assert got.value.suggested_filename == "evaluation-department-2025-09.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(got.value.path().read_bytes()))["2025-09 专业部门"]
    assert sheet["A1"].value == "测试区 专业部门考核表 · 2025年9月 · 评价时点 2025-10-15 00:00"
    names = [row[1] for row in sheet.iter_rows(min_row=3, values_only=True)]
    assert len(names) == 20 and names[0] == "区环境卫生服务中心" and names[-1] == "全区合计"  # 19 + 合计
    assert page.is_hidden("#gg-eval-error")
    # The same sheet printed: the PDF beside it, the same query but its format.
    assert page.get_attribute("#gg-eval-pdf", "href") == href.replace("format=xlsx", "format=pdf")
    with page.expect_download() as got:
        page.click("#gg-eval-pdf")
    assert got.value.suggested_filename == "evaluation-department-2025-09.pdf"
    pdf = got.value.path().read_bytes()
    assert pdf.startswith(b"%PDF-")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "测试区 专业部门考核表 · 2025年9月 · 评价时点 2025-10-15 00:00" in text and "全区合计" in text
    assert page.is_hidden("#gg-eval-error")
    # The map, judged at the same moment, says so.
    page.click('#gg-eval-form button[type="submit"]')
    page.wait_for_function("() => /截至 2025-10-15 00:00/.test(document.getElementById('gg-eval-legend').innerText)")
    # The quarter of the month chosen.
    page.select_option('#gg-eval-form select[name="span"]', "quarter")
    assert page.get_attribute("#gg-eval-xlsx", "href").startswith("/evaluation?period=2025-Q3&subject=department&")
    page.select_option('#gg-eval-form select[name="span"]', "month")
    # A 评价时点 in the future: the download is refused and the panel says why, beside the link; no file.
    page.fill('#gg-eval-form input[name="as_of"]', "2099-01-01T00:00")
    downloads: list[object] = []
    page.on("download", lambda d: downloads.append(d))
    page.click("#gg-eval-xlsx")
    page.wait_for_function("() => /考核表未下载/.test(document.getElementById('gg-eval-error').innerText)")
    error = page.inner_text("#gg-eval-error")
    assert error.startswith("考核表未下载:评价时点:评价时点不能晚于当前时间(尚未到期的环节不能算作超时)"), error
    assert "as_of" not in error.split("服务器原文")[0]
    assert downloads == [] and page.is_hidden("#gg-error")  # said beside the form, not at the top of the panel
    # The PDF is refused the same way, beside its link.
    page.evaluate("() => { document.getElementById('gg-eval-error').textContent = ''; }")
    page.click("#gg-eval-pdf")
    page.wait_for_function("() => /考核表未下载/.test(document.getElementById('gg-eval-error').innerText)")
    assert page.inner_text("#gg-eval-error") == error and downloads == []
    # The map refused the same way, beside the form.
    page.click('#gg-eval-form button[type="submit"]')
    page.wait_for_function("() => /专题图未生成/.test(document.getElementById('gg-eval-error').innerText)")
    assert "评价时点:评价时点不能晚于当前时间" in page.inner_text("#gg-eval-error")
    desk.shot("evaluation-refused-download")
    # Before the period start: its own reason.
    page.fill('#gg-eval-form input[name="as_of"]', "2025-08-31T12:00")
    page.click("#gg-eval-xlsx")
    page.wait_for_function("() => /评价时点须晚于评价期开始/.test(document.getElementById('gg-eval-error').innerText)")
    assert downloads == [] and not desk.watch.off_origin() and not desk.watch.failed


BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (dt.datetime(2026, 12, 31, 10, tzinfo=BEIJING), "2026-11"),  # a 31st: 30 days back was still December
        (dt.datetime(2027, 3, 1, 10, tzinfo=BEIJING), "2027-02"),  # 1 March: 30 days back was January
        (dt.datetime(2026, 1, 1, 1, tzinfo=BEIJING), "2025-12"),  # New Year in Beijing, still 31 Dec in UTC
    ],
)
def test_the_evaluation_period_starts_as_the_month_before_today_in_beijing(
    desk: Tab, live: LiveServer, now: dt.datetime, month: str
) -> None:
    """review57 F12: the form's 期间 defaulted to "now minus 30 days"; it is the calendar month just ended, of the
    Beijing date (the page's clock pinned)."""
    page = desk.page
    page.clock.set_fixed_time(now)
    page.goto(live.url + "/console")
    page.wait_for_function("() => window.GG && GG.map && GG.cases")
    assert page.evaluate("() => new Date().toISOString()") == now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert page.input_value('#gg-eval-form input[name="period"]') == month
