"""Risk analytics over the stored record: loads the inputs the pure ``gisgrid.risks`` functions need."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

from gisgrid import history, risks
from gisgrid.cases import CaseServices
from gisgrid.errors import InvalidInput, Reason
from gisgrid.evaluation import Period

KINDS = ("selective", "overload", "escalation", "paper_closure")


def risk_table(conn: Connection, services: CaseServices, kind: str, period: Period) -> pd.DataFrame:
    """One risk for the cases reported in ``period``: score, flag, explanation and the numbers, worst first."""
    if kind not in KINDS:
        raise InvalidInput(
            f"kind: must be one of {', '.join(KINDS)}", detail=[{"field": "kind"}], reason=Reason.LITERAL_ERROR
        )
    cases, steps = history.read_history(conn, period, services.disposal_limits)
    if cases.empty:
        raise InvalidInput(
            f"no cases were reported in {period.shown}", detail=[{"field": "period"}], reason=Reason.NO_CASES_IN_PERIOD
        )
    if kind == "selective":
        cells = history.cells_for_simulation(conn)
        components = pd.read_sql(text("SELECT unit_grid_code, count(*) AS components FROM components GROUP BY 1"), conn)
        out = risks.selective_reporting(
            cases,
            hard_classes=services.events.hard_classes,
            components=components if len(components) else None,
            adjacency=risks.adjacency(cells, "tier3"),
        )
    elif kind == "overload":
        staff = pd.read_sql(
            text("SELECT code AS tier3_code, jsonb_array_length(staff) AS staff FROM management_grids WHERE tier = 3"),
            conn,
        )
        out = risks.grid_overload(cases, steps, staff[staff["staff"] > 0], start=period.start, end=period.end)
    elif kind == "escalation":
        out = risks.escalation_pileup(cases, steps, services.calendar, as_of=period.end)
    else:
        out = risks.paper_closure(cases)
    return out.sort_values(["flagged", "score"], ascending=False, kind="stable").reset_index(drop=True)
