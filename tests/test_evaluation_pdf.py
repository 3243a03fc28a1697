"""The printed 考核表 (review49 F10): ``GET /evaluation?format=pdf``, ``gisgrid evaluate --out NAME.pdf`` and the
pure :func:`render_sheet_pdf` — the XLSX's rows with its title row and 全区合计 line, zh-CN headers, landscape A4,
the header repeated on every page, laid out by the 交办单's WeasyPrint path; refused as the XLSX is.

The record: R1 of ``test_evaluation_as_of`` (one case of 2025-09, closed 2025-10-09), read back with pypdf."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pypdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.main import create_app
from gisgrid.cli import app
from gisgrid.evaluation_service import parse_period, pdf_cell, render_sheet_pdf, write_table
from gisgrid.settings import Settings
from tests.test_evaluation_as_of import late_case  # noqa: F401  (a fixture)

runner = CliRunner()
A4_LANDSCAPE = (841.89, 595.28)  # points


@pytest.fixture
def client(late_case: Engine, settings: Settings) -> Iterator[TestClient]:  # noqa: F811  (the fixture above)
    with TestClient(create_app(settings)) as c:
        yield c


def pages_of(pdf: bytes) -> list[str]:
    """Each page's text, without the spaces and line breaks a wrapped cell puts between its characters."""
    return ["".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def refusal(r: Any) -> tuple[int, str, Any]:
    """A refused answer's status, error code and items (its message may name now, a minute later the next time)."""
    body = r.json()
    detail = body["detail"]
    return r.status_code, body["error"], detail["items"] if isinstance(detail, dict) else detail


def size_of(pdf: bytes) -> tuple[float, float]:
    box = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    return round(float(box.width), 2), round(float(box.height), 2)


def test_the_api_prints_the_sheet_as_the_xlsx_gives_it(client: TestClient) -> None:
    q = {"period": "2025-09", "subject": "region", "level": "tier1", "as_of": "2025-10-15", "format": "pdf"}
    r = client.get("/evaluation", params=q)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == 'attachment; filename="evaluation-tier1-2025-09.pdf"'
    assert r.content.startswith(b"%PDF-") and size_of(r.content) == A4_LANDSCAPE
    (page,) = pages_of(r.content)
    assert page.startswith("测试区一级网格(街道)考核表·2025年9月·评价时点2025-10-1500:00区域编码名称上报数有效上报数")
    # The node counts and their rates, then the two streets and the 合计 line (1 of 1 on time: 100.0%).
    assert "应核实数按时核实数按时核实率应核查数按时核查数按时核查率应派遣数按时派遣数按时派遣率" in page
    assert page.index("西城街道") < page.index("东关街道") < page.index("全区合计") < page.index("评价时点:")
    total = page[page.index("全区合计") :]
    # 上报数 1, 有效上报数 1, 待定上报数 0, 有效上报率, 立案数 1, 立案率, 监督举报 0, 0.0 %, then 1 of 1 node each.
    assert total.startswith("全区合计110100.0%1100.0%00.0%11100.0%11100.0%11100.0%"), total
    assert "暂定:否" in page and "第1页/共1页" in page
    # The departments: the 合计 note of the XLSX's 说明 sheet is printed below the table too.
    dep = client.get("/evaluation", params={**q, "subject": "department"})
    assert dep.status_code == 200 and "专业部门合计只含派遣到部门的案件" in "".join(pages_of(dep.content))
    # Refused as the XLSX is: the same status and the same answer.
    for bad in ({"as_of": "2099-01-01"}, {"period": "2025-13"}, {"as_of": "2025-08-31T12:00"}, {"level": "tier9"}):
        xlsx = client.get("/evaluation", params={**q, **bad, "format": "xlsx"})
        pdf = client.get("/evaluation", params={**q, **bad})
        assert refusal(pdf) == refusal(xlsx), bad
        assert 400 <= pdf.status_code < 500 and pdf.headers["content-type"] == "application/json", bad
    unknown = client.get("/evaluation", params={**q, "format": "docx"})
    assert unknown.status_code == 422 and "'pdf'" in unknown.text


def test_the_command_writes_the_pdf(late_case: Engine, settings: Settings, tmp_path: Path) -> None:  # noqa: F811
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    out = tmp_path / "sheet.pdf"
    args = ["evaluate", "--period", "2025-09", "--subject", "department", "--as-of", "2025-10-15", "--top", "0"]
    r = runner.invoke(app, [*args, "--out", str(out)], env=env)
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.output
    (page,) = pages_of(out.read_bytes())
    assert page.startswith("测试区专业部门考核表·2025年9月·评价时点2025-10-1500:00部门编码名称派遣案件数回退数")
    assert "区环境卫生服务中心" in page and "全区合计" in page
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "sheet.docx")], env=env)
    assert bad.exit_code != 0 and str(bad.exception) == "--out: sheet.docx: use a .csv, .xlsx or .pdf file"
    assert not (tmp_path / "sheet.docx").exists()


def node_table(n: int) -> pd.DataFrame:
    """``n`` streets, the first two with 3 of 4 and 1 of 2 verifications on time, the rest none."""
    to_verify = [4, 2] + [0] * (n - 2)
    on_time = [3, 1] + [0] * (n - 2)
    table = pd.DataFrame(
        {
            "subject": [f"4199020{i:02d}" for i in range(1, n + 1)],
            "name": [f"第{i}街道" for i in range(1, n + 1)],
            "level": "tier1",
            "to_verify": to_verify,
            "on_time_verified": on_time,
            "on_time_verify_rate": [o / v if v else float("nan") for o, v in zip(on_time, to_verify, strict=True)],
            "score": [83.333333] + [float("nan")] * (n - 1),
            "grade": ["B"] + ["不参评"] * (n - 1),
        }
    )
    table.attrs.update(
        period=parse_period("2025-Q3"),
        as_of=pd.Timestamp("2025-09-15T09:30:00+08:00"),
        provisional=True,
        unknown_years=(),
        district="测试区",
        level="tier1",
    )
    return table


def test_the_total_is_recomputed_and_a_long_sheet_repeats_its_header_on_every_page(tmp_path: Path) -> None:
    """合计 4/6 = 66.7 % (not the mean 62.5 %); 80 streets run over pages, each headed by the table's header."""
    short = pages_of(render_sheet_pdf(node_table(2), "2025-Q3 一级网格(街道)", "region"))
    assert short[0].startswith("测试区一级网格(街道)考核表·2025年第3季度·评价时点2025-09-1509:30·暂定(评价期未结束)")
    assert "区域编码名称应核实数按时核实数按时核实率综合指标值等级" in short[0]  # 层级 is in the title, not a column
    assert "第1街道4375.0%83.33B" in short[0] and "第2街道2150.0%不参评" in short[0]
    assert "全区合计6466.7%" in short[0]
    write_table(node_table(80), tmp_path / "long.pdf", "2025-Q3 一级网格(街道)", "region")
    pdf = (tmp_path / "long.pdf").read_bytes()
    pages = pages_of(pdf)
    assert len(pages) >= 2 and size_of(pdf) == A4_LANDSCAPE
    assert all("区域编码名称应核实数按时核实数按时核实率" in page for page in pages)
    assert all(f"第{i}页/共{len(pages)}页" in page for i, page in enumerate(pages, start=1))
    text = "".join(pages)
    assert [text.count(f"第{i}街道") for i in (1, 80)] == [1, 1] and text.count("全区合计") == 1
    assert "全区合计6466.7%" in pages[-1]


def test_a_cell_reads_as_the_xlsx_formats_it() -> None:
    assert [pdf_cell("on_time_verify_rate", v) for v in (2 / 3, 1.0, float("nan"), None)] == ["66.7%", "100.0%", "", ""]
    assert [pdf_cell(c, v) for c, v in (("score", 83.3333), ("filed_per_month", 4 / 3), ("filed_score", 75.0))] == [
        "83.33", "1.33", "75.00",
    ]  # fmt: skip
    assert [pdf_cell(c, v) for c, v in (("to_verify", 6), ("rank", 3.0), ("unit_grids_from", "stored"))] == [
        "6", "3", "已登记网格",
    ]  # fmt: skip
    assert pdf_cell("level", "tier1") == "一级网格(街道)" and pdf_cell("name", "西城街道") == "西城街道"


def test_a_table_too_long_for_a_pdf_over_http_is_refused_naming_the_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its layout would hold the PDF slot the orders share for minutes: 422, the XLSX still given."""
    from gisgrid import evaluation_service

    monkeypatch.setattr(evaluation_service, "PDF_MAX_ROWS_HTTP", 1)  # the two streets of the record: one too many
    q = {"period": "2025-09", "subject": "region", "level": "tier1", "as_of": "2025-10-15"}
    r = client.get("/evaluation", params={**q, "format": "pdf"}, headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 422 and r.json()["reason"] == "pdf_too_many_rows"
    english = (
        "the table has 2 rows; a PDF over HTTP holds at most 1 (its layout holds the PDF slot the orders share): "
        "download the XLSX, choose a higher level, or run gisgrid evaluate --out NAME.pdf on the server"
    )
    assert r.json()["detail"] == {
        "message": english,
        "items": [
            {
                "field": "format",
                "reason": english,
                "code": "pdf_too_many_rows",
                "value": "pdf",
                "limit": {"max_rows": 1},
            }
        ],
    }
    assert r.json()["message_zh"].startswith("考核表共 2 行,网页下载的 PDF 最多 1 行:请下载 Excel")
    assert client.get("/evaluation", params={**q, "format": "xlsx"}).status_code == 200
