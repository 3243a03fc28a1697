"""综合评价 and governance risks: indicator tables and risk scores per period, as JSON, CSV or (indicators) XLSX."""

from __future__ import annotations

import io
import json
import re
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from api.dependencies import known_query_only
from api.deps import EngineDep
from gisgrid.evaluation import Period
from gisgrid.evaluation_service import (
    AS_OF_HELP,
    PERIOD_HELP,
    answer_meta,
    calendar_warning_en,
    heavy_slot,
    indicators,
    is_heavy,
    refuse_long_pdf,
    refuse_long_xlsx,
    render_sheet_pdf,
    table_title,
    write_xlsx,
)
from gisgrid.risk_service import risk_table
from gisgrid.spreadsheet import to_csv
from maps import choropleth
from maps.choropleth import no_cases_named, parse_period_param

# A misspelt parameter (asof=) is refused, not ignored: the answer would silently be judged as of now.
router = APIRouter(tags=["evaluation 综合评价"], dependencies=[Depends(known_query_only)])

Subject = Literal["region", "department", "supervisor", "grid_worker", "intake", "shift_lead", "dispatcher"]
Level = Literal["unit_grid", "tier3", "tier2", "tier1", "district"]
PeriodQuery = Annotated[str, Query(description=PERIOD_HELP)]
AsOfQuery = Annotated[str | None, Query(description=AS_OF_HELP)]


def table_response(
    df: pd.DataFrame, fmt: str, name: str, meta: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Any:
    """JSON ``{**meta, count, data}`` or a CSV download (``headers`` as ``X-Evaluation-…`` headers)."""
    meta = meta or {}
    if fmt == "csv":
        buf = io.StringIO()
        to_csv(df, buf, index=False)  # a name such as =HYPERLINK(…) is not a formula in Excel
        sent = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
        sent |= {f"X-Evaluation-{k.replace('_', '-').title()}": v for k, v in (headers or {}).items()}
        return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8", headers=sent)
    data = json.loads(df.to_json(orient="records", force_ascii=False, date_format="iso"))
    return {**meta, "count": len(df), "data": data}


@router.get("/evaluation", summary="综合评价 Indicators, score, grade and rank per subject")
def evaluation(
    request: Request,
    engine: EngineDep,
    period: PeriodQuery,
    subject: Subject = "region",
    level: Level = "tier3",
    format: Literal["json", "csv", "xlsx", "pdf"] = "json",
    as_of: AsOfQuery = None,
) -> Any:
    """``{period, as_of, provisional, calendar_warning, count, data}``: the cases reported in ``period`` before
    ``as_of`` judged by their record up to it (default now; not later than now, after the period start);
    ``provisional`` is true when the period had not ended at ``as_of``; ``calendar_warning`` (zh-CN and English,
    else null) names the years the holiday calendar does not know that the working time behind the figures ran
    through, and the remedy. CSV states them in ``X-Evaluation-Period``, ``X-Evaluation-As-Of``,
    ``X-Evaluation-Provisional`` (true/false) and, only when there is one, ``X-Evaluation-Calendar-Warning``
    (English in ASCII: a header carries no Chinese). XLSX is the file ``gisgrid evaluate --out NAME.xlsx`` writes,
    for people: zh-CN headers and values, the sheets 字段说明 and 说明 (评价时点, 暂定, 日历提示), codes as text.
    PDF is the printed 考核表 (``gisgrid evaluate --out NAME.pdf``): the XLSX's rows, title row and 全区合计 line on
    landscape A4, the header repeated on each page, 说明 below (503 without WeasyPrint/Pango, as the 交办单 PDF).
    A CSV, XLSX or PDF of provisional figures is named ``…-provisional``."""
    p = parse_period_param(period)  # its refusals name the parameter, as /cases and /evaluation/map do
    # A level's unit grids, or a workbook: one of the process's few slots for the work, or 503 evaluation_busy
    with heavy_slot(is_heavy(level, format, subject)):
        return _evaluation(request, engine, p, subject, level, format, as_of)


def _evaluation(
    request: Request, engine: Engine, p: Period, subject: str, level: str, format: str, as_of: str | None
) -> Any:
    with no_cases_named(p):
        table = indicators(engine, request.app.state.cases, p, subject, level, as_of=as_of)
    meta = answer_meta(p, table)
    # An ASCII file name (2026-10, 2026-Q3; a range's instants without ':' '+' '/'): the header carries no Chinese.
    label = re.sub(r"[^0-9A-Za-z.-]+", "_", p.label)
    name = f"evaluation-{subject if subject != 'region' else level}-{label}"
    name += "-provisional" if meta["provisional"] else ""
    if format == "xlsx":
        refuse_long_xlsx(table)
        buf = io.BytesIO()
        write_xlsx(table, buf, table_title(p, subject, level), subject)
        return Response(
            buf.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    if format == "pdf":
        refuse_long_pdf(table)
        return Response(
            render_sheet_pdf(table, table_title(p, subject, level), subject),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )
    headers = {"period": meta["period"], "as_of": meta["as_of"], "provisional": str(meta["provisional"]).lower()}
    if meta["calendar_warning"] is not None:
        # A header is Latin-1 on the wire: the English text, its dashes as ASCII (Mon-Fri).
        english = calendar_warning_en(table.attrs["unknown_years"]) or ""
        headers["calendar_warning"] = english.replace("–", "-").encode("ascii", "replace").decode()
    return table_response(table, format, name, meta, headers)


@router.get("/evaluation/map", summary="综合评价专题图 One indicator over the regions of a level, classed, as GeoJSON")
def evaluation_map(
    request: Request,
    engine: EngineDep,
    period: PeriodQuery,
    indicator: Annotated[
        str, Query(description="An indicator column of the region table, e.g. on_time_disposal_rate, score, grade")
    ],
    level: Level = "tier3",
    scheme: Annotated[
        str, Query(description="quantiles, natural_breaks or equal_interval (mapclassify); aliases quantile, jenks")
    ] = choropleth.DEFAULT_SCHEME,
    k: Annotated[int, Query(ge=choropleth.MIN_K, le=choropleth.MAX_K, description="Classes")] = choropleth.DEFAULT_K,
    as_of: AsOfQuery = None,
) -> Response:
    """``{period, as_of, provisional, calendar_warning, level, indicator, indicator_label, title, scheme, k,
    subtitle, note, breaks, legend, features}`` (``provisional``, ``calendar_warning`` as ``GET /evaluation``;
    ``note`` carries the calendar warning too):
    ``legend`` = the classes (class, label, colour, count, lower, upper), a darker grey 不参评 entry for ungraded
    regions without a value and a grey 无数据 entry for regions without cases; ``features`` = a FeatureCollection
    of the regions (id = code; properties code, name, score, grade, rank, value, value_label, class, colour),
    simplified (~1 m) with coordinates to 6 decimals (CGCS2000)."""
    with heavy_slot(is_heavy(level)):
        body = choropleth.indicator_map_json(
            engine,
            request.app.state.cases,
            period=period,
            indicator=indicator,
            level=level,
            scheme=scheme,
            k=k,
            as_of=as_of,
        )
    # JSON text already, the regions' geometry put in as made once (choropleth.region_shapes): not parsed, not
    # written again
    return Response(body, media_type="application/json")


@router.get("/risks/{kind}", summary="治理风险 Risk scores with explanations")
def risk(
    request: Request,
    engine: EngineDep,
    kind: Literal["selective", "overload", "escalation", "paper_closure"],
    period: PeriodQuery,
    format: Literal["json", "csv"] = "json",
    as_of: AsOfQuery = None,
) -> Any:
    """``{period, as_of, provisional, count, data}``: the risk of the cases reported in ``period`` before ``as_of``,
    judged by their record up to it — ``as_of`` and ``provisional`` as ``GET /evaluation`` takes and states them
    (default now; ``provisional``: the period had not ended then). Rows worst first: subject, score (0–1),
    flagged, explanation and the numbers behind it. CSV states them in ``X-Evaluation-Period``,
    ``X-Evaluation-As-Of`` and ``X-Evaluation-Provisional``, and is named ``…-provisional`` when it is."""
    p = parse_period_param(period)
    with engine.connect() as conn, no_cases_named(p):
        table = risk_table(conn, request.app.state.cases, kind, p, as_of=as_of)
    meta = {"period": p.label, "as_of": table.attrs["as_of"].isoformat(), "provisional": table.attrs["provisional"]}
    label = re.sub(r"[^0-9A-Za-z.-]+", "_", p.label)  # an ASCII file name, as /evaluation's
    name = f"risk-{kind}-{label}" + ("-provisional" if meta["provisional"] else "")
    headers = {"period": meta["period"], "as_of": meta["as_of"], "provisional": str(meta["provisional"]).lower()}
    return table_response(table, format, name, meta, headers)
