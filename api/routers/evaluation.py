"""综合评价 and governance risks: indicator tables and risk scores per period, as JSON or CSV."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import EngineDep
from gisgrid.cli.evaluation import indicators, parse_period
from gisgrid.risk_service import risk_table

router = APIRouter(tags=["evaluation 综合评价"])

Subject = Literal["region", "department", "supervisor", "grid_worker", "intake", "shift_lead", "dispatcher"]
Level = Literal["unit_grid", "tier3", "tier2", "tier1", "district"]
PeriodQuery = Annotated[str, Query(description="2026-10, 2026-Q3, 2026-W40, 2026 or 2026-10-01..2026-11-01")]


def _table(df: pd.DataFrame, fmt: str, name: str) -> Any:
    if fmt == "csv":
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        return Response(
            "\ufeff" + buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return {"count": len(df), "data": json.loads(df.to_json(orient="records", force_ascii=False, date_format="iso"))}


@router.get("/evaluation", summary="综合评价 Indicators, score, grade and rank per subject")
def evaluation(
    request: Request,
    engine: EngineDep,
    period: PeriodQuery,
    subject: Subject = "region",
    level: Level = "tier3",
    format: Literal["json", "csv"] = "json",
) -> Any:
    table = indicators(engine, request.app.state.cases, parse_period(period), subject, level)
    return _table(table, format, f"evaluation-{subject}-{period}")


@router.get("/risks/{kind}", summary="治理风险 Risk scores with explanations")
def risk(
    request: Request,
    engine: EngineDep,
    kind: Literal["selective", "overload", "escalation", "paper_closure"],
    period: PeriodQuery,
    format: Literal["json", "csv"] = "json",
) -> Any:
    with engine.connect() as conn:
        table = risk_table(conn, request.app.state.cases.events, kind, parse_period(period))
    return _table(table, format, f"risk-{kind}-{period}")
