"""综合评价 over the stored record: reads the history a period needs and runs the pure ``gisgrid.evaluation``
functions on it, in the deployment's working calendar (the one deadlines were set in)."""

from __future__ import annotations

import re

import pandas as pd
from sqlalchemy import Engine

from gisgrid import history
from gisgrid.cases import CaseServices
from gisgrid.errors import InvalidInput, Reason
from gisgrid.evaluation import Period, evaluate, rank

#: How a period is written (CLI help and API docs say it with these words).
PERIOD_HELP = "2026-10 (month), 2026-Q3, 2026-W40, 2026, 2026-10..2026-12 (through), or dates A..B (B excluded)"
_NAMED = re.compile(r"\d{4}(-(\d{1,2}|Q\d|W\d{1,2}))?")


def parse_period(text: str) -> Period:
    """``2026-10`` (month), ``2026-Q3``, ``2026-W40``, ``2026``, or a range: ``2026-10-01..2026-11-01`` between two
    dates (the end excluded) or ``2026-10..2026-12`` from the first named period through the last."""
    text = text.strip()
    try:
        if ".." in text:
            a, b = (side.strip() for side in text.split("..", 1))
            return Period.between(
                parse_period(a).start if _NAMED.fullmatch(a) else a,
                parse_period(b).end if _NAMED.fullmatch(b) else b,
            )
        if "-Q" in text:
            y, q = text.split("-Q")
            return Period.quarter(int(y), int(q))
        if "-W" in text:
            y, w = text.split("-W")
            return Period.week(int(y), int(w))
        if len(text) == 4:
            return Period.year(int(text))
        y, m = text.split("-")
        return Period.month(int(y), int(m))
    except (ValueError, TypeError):
        raise InvalidInput(
            f"period: {text!r} is not a month (2026-10), quarter (2026-Q3), week (2026-W40), year (2026) or "
            "range (2026-10-01..2026-11-01, the end excluded)",
            reason=Reason.PERIOD_UNREADABLE,
        ) from None


def indicators(engine: Engine, services: CaseServices, period: Period, subject: str, level: str) -> pd.DataFrame:
    """Indicators for ``period`` ranked, with rank changes against the period before."""
    limits = history.disposal_limits(services.events, services.calendar.hours.hours_per_day)
    node_limits = services.events.node_limits
    with engine.connect() as conn:
        now_cases, now_steps = history.read_history(conn, period, limits)
        before = period.previous()
        old_cases, old_steps = history.read_history(conn, before, limits)
    if now_cases.empty:
        raise InvalidInput(f"no cases were reported in {period.label}", reason=Reason.NO_CASES_IN_PERIOD)
    calendar = services.calendar
    opts = {"level": level, "urgent_node_limits": services.events.urgent_node_limits}
    table = evaluate(now_cases, now_steps, calendar, node_limits, period, subject, **opts)
    previous = (
        evaluate(old_cases, old_steps, calendar, node_limits, before, subject, **opts) if not old_cases.empty else None
    )
    return rank(table, previous=rank(previous) if previous is not None else None)
