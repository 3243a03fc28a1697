"""Risk analytics over the stored record: loads the inputs the pure ``gisgrid.risks`` functions need."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gisgrid import history, risks
from gisgrid.cases import CaseServices
from gisgrid.errors import InvalidInput, Reason
from gisgrid.evaluation import Period
from gisgrid.evaluation_service import resolve_as_of
from gisgrid.texts import bilingual

KINDS = ("selective", "overload", "escalation", "paper_closure")


def risk_table(
    conn: Connection, services: CaseServices, kind: str, period: Period, as_of: Any = None, *, now: Any = None
) -> pd.DataFrame:
    """One risk for the cases reported in ``period``: score, flag, explanation and the numbers, worst first.

    Judged at an evaluation time as ``/evaluation`` is (:func:`~gisgrid.evaluation_service.resolve_as_of`:
    ``as_of`` as given, else now; not later than now, after the period start): the cases reported before it, by
    their steps up to it (a closing after it is not one yet); ``table.attrs`` state ``as_of`` and ``provisional``
    (the period had not ended then), review44 U2."""
    if kind not in KINDS:
        raise InvalidInput(
            f"kind: must be one of {', '.join(KINDS)}", detail=[{"field": "kind"}], reason=Reason.LITERAL_ERROR
        )
    when = resolve_as_of(period, as_of, now)
    cases, steps = history.read_history(conn, period, services.disposal_limits)
    cases = cases[cases["created_at"] < when]
    steps = steps[steps["at"] <= when]
    # A case closed after the evaluation time was not closed then (纸面结案 counts those with a closed_at).
    cases = cases.assign(closed_at=cases["closed_at"].mask(cases["closed_at"] > when))
    if cases.empty:
        raise InvalidInput(
            bilingual(f"该评价期内没有上报的案件({period.shown})", f"no cases were reported in {period.shown}"),
            detail=[{"field": "period"}],
            reason=Reason.NO_CASES_IN_PERIOD,
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
        end = min(period.end, when)
        out = risks.grid_overload(cases, steps, staff[staff["staff"] > 0], start=period.start, end=end)
    elif kind == "escalation":
        out = risks.escalation_pileup(cases, steps, services.calendar, as_of=when)
    else:
        out = risks.paper_closure(cases)
    table = out.sort_values(["flagged", "score"], ascending=False, kind="stable").reset_index(drop=True)
    table.attrs.update(as_of=when, provisional=bool(when < period.end))
    return table
