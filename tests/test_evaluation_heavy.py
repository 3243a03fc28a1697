"""Heavy evaluation answers over HTTP (review54 F2): a workbook of more than XLSX_MAX_ROWS_HTTP rows is refused
with the CLI as the remedy, as the PDF is over 300; the unit grids (any form, the map too) and every workbook take
one of a few per-process slots, and a request finding them all taken is answered 503 ``evaluation_busy`` with
``Retry-After`` at once, instead of queueing on the worker threads.

The record: R1 of ``test_evaluation_as_of`` (one case of 2025-09, closed 2025-10-09; two streets)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from gisgrid import evaluation_service
from gisgrid.errors import Busy
from gisgrid.evaluation_service import HEAVY_EVALUATION_SLOTS, XLSX_MAX_ROWS_HTTP, heavy_slot, is_heavy
from gisgrid.settings import Settings
from tests.test_evaluation_as_of import late_case  # noqa: F401  (a fixture)

Q = {"period": "2025-09", "subject": "region", "level": "tier1", "as_of": "2025-10-15"}
M = {"period": "2025-09", "level": "tier1", "as_of": "2025-10-15", "indicator": "score"}  # the map's
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def client(late_case: Engine, settings: Settings) -> Iterator[TestClient]:  # noqa: F811  (the fixture above)
    with TestClient(create_app(settings)) as c:
        yield c


def test_the_cap_leaves_room_for_a_streets_unit_grids() -> None:
    assert XLSX_MAX_ROWS_HTTP == 5000 and HEAVY_EVALUATION_SLOTS == 2


def test_a_workbook_too_long_for_http_is_refused_naming_the_cli(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluation_service, "XLSX_MAX_ROWS_HTTP", 1)  # the two streets of the record: one too many
    r = client.get("/evaluation", params={**Q, "format": "xlsx"}, headers={"Accept-Language": "zh-CN"})
    english = (
        "the table has 2 rows; an XLSX over HTTP holds at most 1: choose a higher level, download the CSV, "
        "or run gisgrid evaluate --out NAME.xlsx on the server"
    )
    assert (r.status_code, r.json()) == (
        422,
        {
            "error": "invalid_input",
            "reason": "xlsx_too_many_rows",
            "detail": {
                "message": english,
                "items": [
                    {
                        "field": "format",
                        "reason": english,
                        "code": "xlsx_too_many_rows",
                        "value": "xlsx",
                        "limit": {"max_rows": 1},
                    }
                ],
            },
            "message_zh": "考核表共 2 行,网页下载的 Excel 最多 1 行:请选更高的层级,下载 CSV,"
            "或在服务器上用 gisgrid evaluate --out NAME.xlsx 生成",
        },
    )
    assert client.get("/evaluation", params={**Q, "format": "csv"}).status_code == 200  # the CSV still given
    monkeypatch.setattr(evaluation_service, "XLSX_MAX_ROWS_HTTP", 2)  # exactly at the cap: given
    r = client.get("/evaluation", params={**Q, "format": "xlsx"})
    assert (r.status_code, r.headers["content-type"]) == (200, XLSX_TYPE)


def test_what_takes_a_slot() -> None:
    assert [is_heavy(level) for level in ("unit_grid", "tier3", "tier2", "tier1", "district")] == [
        True, False, False, False, False,
    ]  # fmt: skip
    assert [is_heavy("tier3", fmt) for fmt in ("json", "csv", "xlsx", "pdf")] == [False, False, True, False]
    assert is_heavy("unit_grid", "json", "department") is False  # the level is the regions' only
    assert is_heavy("tier3", "xlsx", "grid_worker") is True


@pytest.fixture
def slots_taken() -> Iterator[None]:
    """Every heavy slot held by other work (here: this test's thread) while the test runs."""
    with heavy_slot(), heavy_slot():
        yield


BUSY = (
    "the server is making 2 large evaluation tables already (unit grids or XLSX); try again in 10 s",
    "服务器正在生成其他大型考核表,请稍后重试",
)


def test_a_heavy_answer_finding_every_slot_taken_is_a_503_with_retry_after(
    client: TestClient, slots_taken: None
) -> None:
    for path, params in (
        ("/evaluation", {**Q, "level": "unit_grid"}),
        ("/evaluation", {**Q, "level": "unit_grid", "format": "csv"}),
        ("/evaluation", {**Q, "format": "xlsx"}),
        ("/evaluation", {**Q, "subject": "department", "format": "xlsx"}),
        ("/evaluation/map", {**M, "level": "unit_grid"}),
    ):
        r = client.get(path, params=params, headers={"Accept-Language": "zh-CN"})
        assert (r.status_code, r.headers.get("retry-after"), r.headers.get("cache-control")) == (503, "10", "no-store")
        assert r.json() == {"error": "busy", "reason": "evaluation_busy", "detail": BUSY[0], "message_zh": BUSY[1]}
    # Light answers do not wait for the slots: the other levels as JSON, CSV or PDF, the map of a street level.
    assert client.get("/evaluation", params=Q).status_code == 200
    assert client.get("/evaluation", params={**Q, "format": "csv"}).status_code == 200
    assert client.get("/evaluation/map", params=M).status_code == 200


def test_a_slot_is_given_back_after_the_answer_and_after_a_refusal(client: TestClient) -> None:
    with heavy_slot():  # one slot left: taken and given back by each request in turn
        assert client.get("/evaluation", params={**Q, "level": "unit_grid"}).status_code == 200
        monkeypatch = pytest.MonkeyPatch()
        with monkeypatch.context() as m:
            m.setattr(evaluation_service, "XLSX_MAX_ROWS_HTTP", 1)
            big = client.get("/evaluation", params={**Q, "format": "xlsx"})
            assert big.status_code == 422 and big.json()["reason"] == "xlsx_too_many_rows"
            [item] = big.json()["detail"]["items"]
            assert item == {
                "field": "format",
                "reason": "the table has 2 rows; an XLSX over HTTP holds at most 1: choose a higher level, download "
                "the CSV, or run gisgrid evaluate --out NAME.xlsx on the server",
                "code": "xlsx_too_many_rows",
                "value": "xlsx",
                "limit": {"max_rows": 1},
            }
        bad = client.get("/evaluation", params={**Q, "period": "bad", "level": "unit_grid"})
        assert bad.status_code == 422 and bad.json()["reason"] == "period_unreadable"
        [item] = bad.json()["detail"]["items"]
        assert item == {
            "field": "period",
            "reason": "'bad' is not a month (2026-10), quarter (2026-Q3), week (2026-W40), year (2026) or range "
            "(2026-10-01..2026-11-01, the end excluded)",
            "code": "period_unreadable",
            "value": "bad",
        }
        assert client.get("/evaluation", params={**Q, "format": "xlsx"}).status_code == 200
        assert client.get("/evaluation/map", params={**M, "level": "unit_grid"}).status_code == 200


def test_two_heavy_answers_run_at_once_a_third_is_turned_away() -> None:
    """The slots themselves, without a server: two holders at once, the third refused while they hold."""
    entered, release = threading.Barrier(HEAVY_EVALUATION_SLOTS + 1), threading.Event()

    def hold() -> None:
        with heavy_slot():
            entered.wait(timeout=30)
            release.wait(timeout=30)

    threads = [threading.Thread(target=hold) for _ in range(HEAVY_EVALUATION_SLOTS)]
    for t in threads:
        t.start()
    entered.wait(timeout=30)  # both inside
    with pytest.raises(Busy) as refused, heavy_slot():
        pass
    assert (refused.value.code, refused.value.reason, refused.value.retry_after) == ("busy", "evaluation_busy", 10)
    with heavy_slot(heavy=False):  # a light answer takes none
        pass
    release.set()
    for t in threads:
        t.join()
    with heavy_slot():  # both given back
        pass
