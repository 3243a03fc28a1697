"""Benchmark: monthly indicators of every subject over 1,000,000 cases, beside one plain SQL aggregate (按期处置率).

    .venv/bin/python scripts/bench/evaluation.py [--cases 1000000] [--layout year|month] [--runs 3]

Sets up a throwaway database (Z区, 38,415 unit grids), simulates a history of ``--cases`` cases the way
``gisgrid simulate`` does (:func:`gisgrid.simulate.simulate` + :func:`gisgrid.history.write_history`, open clocks
included) and writes it (timed apart). ``--layout``:

- ``year`` — the cases are spread over 2025 and the evaluated month (``--month``, default 2025-09) holds its
  share (~1/12): the database a city has after a year, evaluated monthly;
- ``month`` — every case is reported in the evaluated month (the stricter reading: 1,000,000 cases in one month).

Then, ``--runs`` times (median reported), one after the other on a cold connection:

- gisgrid: :func:`gisgrid.history.read_history` of the month (cases + transitions) → :func:`gisgrid.evaluation
  .prepare` once → indicator tables of every region level (unit_grid, tier3, tier2, tier1, district), the
  departments and every post (supervisor, grid_worker, intake, shift_lead, dispatcher), each scored, graded and
  ranked;
- plain SQL: one query computing 按期处置率 (on-time disposal rate) per tier-3 grid — the same definition
  (disposal nodes opened by 派遣/返工 and closed by 处置, cancelled by 回退; working time between them from a
  working-calendar function, minus 挂账/缓办 time; 延期 deadlines; open nodes counted when overdue, a suspended
  case's too when its node ran past the deadline before the 挂账) — and nothing else. Its helpers are set up
  untimed: ``bench_work_pos(ts)``, the working calendar
  (working µs since a fixed day, one inlinable expression over a constant array per day, from the same
  ``WorkingCalendar``), and ``bench_disposal_limits`` (the limit of each class). Timed: the month's case-id range
  (as read_history uses it) and the query, with ``enable_nestloop = off`` and ``work_mem = 64MB`` for it (the
  planner underestimates its CTEs and otherwise picks nested loops that run for many minutes).

Prints cases, transitions, read / compute / total time of gisgrid, the SQL time and the ratio, and checks that
both give the same 按期处置率 in every tier-3 grid. ``--keep`` leaves the database for another run and ``--reuse``
takes it as it is (no simulation).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from gisgrid import cases as case_svc
from gisgrid import history
from gisgrid.calendar import WorkingCalendar
from gisgrid.evaluation import Period, WorkClock, evaluate_all, prepare, rank
from gisgrid.settings import Settings
from gisgrid.simulate import classes_from_catalogue, node_hours_from_catalogue, simulate
from gisgrid.storage import migrate
from gisgrid.storage.database import (
    create_database_if_missing,
    drop_database,
    ensure_postgis,
    make_engine,
    prepare_database,
)

SEED = 2025
CHUNK = 100_000  # cases per write_history call


# --------------------------------------------------------------------------------------- set-up


def open_database(name: str, *, reuse: bool) -> tuple[Engine, Any, bool]:
    """(engine, server URL, fresh): a new migrated database with Z区, or the kept one when ``reuse``."""
    from gisgrid.demo_loader import load_demo

    settings = Settings()
    server = prepare_database(settings, echo=lambda _m: None, check=False, create=True)
    url = server.set(database=name)
    if reuse:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM cases")).scalar_one() > 0:
                    return engine, server, False
        except Exception:  # no such database: build it
            pass
        engine.dispose()
    drop_database(server, name)
    create_database_if_missing(server, name)
    engine = make_engine(url)
    ensure_postgis(engine)
    migrate.upgrade(url)
    load_demo(engine, settings.data_path / "bench", echo=lambda _m: None, components=0, history_days=0)
    return engine, server, True


def effective_days(calendar: WorkingCalendar, first: dt.date, days: int) -> float:
    """Working days + 0.8 × other days: the simulator's daily weights."""
    return sum(1.0 if calendar.is_working_day(first + dt.timedelta(days=d)) else 0.8 for d in range(days))


def generate(engine: Engine, services: Any, n_cases: int, first: dt.date, days: int) -> dict[str, float]:
    """Simulate about ``n_cases`` cases over ``days`` days from ``first`` and write them (as ``gisgrid simulate``)."""
    with engine.connect() as conn:
        cells = history.cells_for_simulation(conn, None)
    classes = classes_from_catalogue(services.events)
    # Recurrences (reported again after closure) add ~1 % over a year, less over a month: at least n_cases.
    rate = n_cases / (len(cells) * effective_days(WorkingCalendar(), first, days))
    t0 = time.perf_counter()
    node_hours = node_hours_from_catalogue(services.events, services.calendar.hours.hours_per_day)
    sim = simulate(
        cells, list(services.departments), classes, node_hours=node_hours, days=days, seed=SEED, start=first, rate=rate
    )
    t1 = time.perf_counter()
    print(f"simulated {len(sim.cases):,} cases / {len(sim.transitions):,} transitions in {t1 - t0:.1f} s", flush=True)
    # write_history in blocks of consecutive ids (bounded memory). write_history moves a block's ids (1…n) past
    # the stored ones: each block is numbered from 1, so the stored ids are the simulation's and duplicate_of
    # (always an earlier case) still points at the right one.
    cases, steps = sim.cases, sim.transitions
    del sim
    step_case = steps["case_id"].to_numpy()
    n_cases = n_steps = 0
    for lo in range(0, len(cases), CHUNK):
        block = cases.iloc[lo : lo + CHUNK]
        first_id, last_id = int(block["id"].iloc[0]), int(block["id"].iloc[-1])
        a, b = np.searchsorted(step_case, [first_id, last_id + 1])
        shift = first_id - 1
        block = block.assign(id=block["id"] - shift, duplicate_of=block["duplicate_of"] - shift)
        block_steps = steps.iloc[a:b].assign(case_id=step_case[a:b] - shift)
        written = history.write_history(engine, block, block_steps, services)
        if written.first_id != first_id:
            raise RuntimeError(f"ids moved: block from {first_id} stored from {written.first_id}")
        n_cases, n_steps = n_cases + written.cases, n_steps + written.transitions
        print(f"  written {n_cases:,} cases / {n_steps:,} transitions ({time.perf_counter() - t1:.0f} s)", flush=True)
    t2 = time.perf_counter()
    del cases, steps
    gc.collect()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE cases"))
        conn.execute(text("VACUUM ANALYZE case_transitions"))
    t3 = time.perf_counter()
    print(
        f"history: {n_cases:,} cases / {n_steps:,} transitions over {days} days from {first} (rate {rate:.4f} per "
        f"unit grid and working day); simulate {t1 - t0:.1f} s, write_history {t2 - t1:.1f} s (COPY + open clocks), "
        f"VACUUM ANALYZE {t3 - t2:.1f} s",
        flush=True,
    )
    return {"simulate_s": t1 - t0, "write_s": t2 - t1, "vacuum_s": t3 - t2}


# --------------------------------------------------------------------------------------- the SQL side


def install_sql_calendar(engine: Engine, calendar: WorkingCalendar, first: dt.date, last: dt.date) -> None:
    """The working calendar for SQL: ``bench_work_pos(ts)`` = working µs since ``first`` (as ``WorkClock``), one
    inlinable expression over a constant array of cumulated working time per day; and the disposal limits."""
    clock = WorkClock(calendar, first, last)
    cum = ",".join(str(int(v)) for v in clock._cum[:-1])  # the clock's own table of working µs per day
    working = ",".join("true" if w else "false" for w in clock.working)
    tz = str(calendar.tz)
    local = f"(ts AT TIME ZONE '{tz}')"
    tod = f"(date_part('epoch', {local} - date_trunc('day', {local})) * 1e6)"
    day = f"(({local})::date - DATE '{first.isoformat()}' + 1)"
    insides = [
        " + ".join(f"least(greatest({tod} - {s}, 0), {e - s})" for s, e in zip(starts, ends, strict=True))
        for starts, ends, _ in clock.schedules
    ]
    if len(insides) == 1:
        inside = insides[0]
    else:  # seasonal working hours: each day's schedule
        schedule = ",".join(str(int(k)) for k in clock.schedule)
        whens = " ".join(f"WHEN {k} THEN {text_}" for k, text_ in enumerate(insides))
        inside = f"CASE ('{{{schedule}}}'::int[])[{day}] {whens} END"
    with engine.begin() as conn:
        conn.execute(
            text(
                f"""
                CREATE OR REPLACE FUNCTION bench_work_pos(ts timestamptz) RETURNS double precision
                LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
                    SELECT ('{{{cum}}}'::bigint[])[{day}]
                         + CASE WHEN ('{{{working}}}'::boolean[])[{day}] THEN {inside} ELSE 0 END
                $$
                """
            )
        )


def install_limits(engine: Engine, limits: dict[tuple[str, str, str | None], history.DisposalHours]) -> None:
    """Each class's default disposal limit (disposal type None: the simulated cases carry the default) in working
    hours, as the query counts; a default in calendar hours (cjt214's urgent classes, not simulated) is left out."""
    rows = [
        {"s": s, "c": c, "h": hours}
        for (s, c, kind), (hours, unit, _) in limits.items()
        if kind is None and unit == "working_hours"
    ]
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_disposal_limits"))
        conn.execute(text("CREATE TABLE bench_disposal_limits (scheme text, class_code text, limit_h float8)"))
        conn.execute(
            text("INSERT INTO bench_disposal_limits VALUES (:s, :c, :h)"),
            rows,
        )
        conn.execute(text("ANALYZE bench_disposal_limits"))


SQL_ID_RANGE = (
    "SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM cases WHERE created_at >= :start AND created_at < :end"
)
#: 按期处置率 per tier-3 grid, the whole definition in one statement (see the module docstring).
SQL_ON_TIME_DISPOSAL = """
WITH c AS (
    SELECT c.id, c.tier3_code, round(l.limit_h * 3600e6) AS limit_us
    FROM cases c JOIN bench_disposal_limits l ON l.scheme = c.scheme AND l.class_code = c.class_code
    WHERE c.created_at >= :start AND c.created_at < :end
),
t AS MATERIALIZED (  -- the steps that matter, read once (through the case_id index: the month's id range)
    SELECT t.case_id, t.id, t.action, t.at, t.details
    FROM case_transitions t JOIN c ON c.id = t.case_id
    WHERE t.case_id BETWEEN :lo AND :hi AND t.at < :as_of
      AND t.action IN ('dispatch', 'rework', 'handle', 'return', 'suspend', 'resume', 'approve_extension')
),
steps AS (
    SELECT case_id, action, at, lead(action) OVER w AS next_action, lead(at) OVER w AS next_at
    FROM t WHERE action IN ('dispatch', 'rework', 'handle', 'return')
    WINDOW w AS (PARTITION BY case_id ORDER BY at, id)
),
nodes AS (  -- opened by 派遣/返工, closed by the next 处置; a later opener drops it, a 回退 ends it (kept if late)
    SELECT row_number() OVER () AS node, case_id, at AS open_at, coalesce(next_at, :as_of) AS end_at,
           coalesce(next_action = 'handle', false) AS closed, coalesce(next_action = 'return', false) AS returned
    FROM steps
    WHERE action IN ('dispatch', 'rework') AND (next_action IS NULL OR next_action IN ('handle', 'return'))
),
paused AS (  -- 挂账/缓办 intervals: suspend → resume (or as_of)
    SELECT case_id, at AS s0, coalesce(next_at, :as_of) AS s1
    FROM (
        SELECT case_id, action, at, lead(action) OVER w AS next_action, lead(at) OVER w AS next_at
        FROM t WHERE action IN ('suspend', 'resume')
        WINDOW w AS (PARTITION BY case_id ORDER BY at, id)
    ) s
    WHERE action = 'suspend' AND (next_action IS NULL OR next_action = 'resume')
),
node_paused AS (
    SELECT n.node,
           sum(bench_work_pos(least(n.end_at, p.s1)) - bench_work_pos(greatest(n.open_at, p.s0))) AS paused_us
    FROM nodes n JOIN paused p ON p.case_id = n.case_id
    WHERE least(n.end_at, p.s1) > greatest(n.open_at, p.s0)
    GROUP BY n.node
),
approvals AS (
    SELECT case_id, at, (details ->> 'new_due_at')::timestamptz AS new_due
    FROM t WHERE action = 'approve_extension' AND details ? 'new_due_at'
),
extension AS (  -- the last approved 延期 inside the node: allowed = working time to the new deadline, net of 挂账
    SELECT DISTINCT ON (n.node) n.node, n.case_id, n.open_at, a.at, a.new_due
    FROM nodes n JOIN approvals a ON a.case_id = n.case_id AND a.at >= n.open_at AND a.at <= n.end_at
    ORDER BY n.node, a.at DESC
),
extension_allowed AS (
    SELECT x.node, round(bench_work_pos(x.new_due) - bench_work_pos(x.open_at) - coalesce(sum(
               bench_work_pos(least(x.at, p.s1)) - bench_work_pos(greatest(x.open_at, p.s0))
           ) FILTER (WHERE p.s0 IS NOT NULL AND least(x.at, p.s1) > greatest(x.open_at, p.s0)), 0)) AS allowed_us
    FROM extension x LEFT JOIN paused p ON p.case_id = x.case_id
    GROUP BY x.node, x.new_due, x.open_at
),
judged AS (
    SELECT c.tier3_code, n.closed,
           round(bench_work_pos(n.end_at) - bench_work_pos(n.open_at) - coalesce(np.paused_us, 0)) AS elapsed_us,
           greatest(c.limit_us, x.allowed_us) AS allowed_us
    FROM nodes n JOIN c ON c.id = n.case_id
    LEFT JOIN node_paused np ON np.node = n.node
    LEFT JOIN extension_allowed x ON x.node = n.node
)
SELECT tier3_code,
       count(*) FILTER (WHERE closed OR elapsed_us > allowed_us) AS to_dispose,
       count(*) FILTER (WHERE closed AND elapsed_us <= allowed_us) AS on_time
FROM judged
WHERE closed OR elapsed_us > allowed_us  -- open or returned: counted when late (挂账 time is not elapsed time)
GROUP BY tier3_code
ORDER BY tier3_code
"""


def run_sql(engine: Engine, period: Period) -> tuple[float, pd.DataFrame]:
    params = {
        "start": period.start.to_pydatetime(),
        "end": period.end.to_pydatetime(),
        "as_of": period.end.to_pydatetime(),
    }
    engine.dispose()
    t0 = time.perf_counter()
    with engine.begin() as conn:
        # Tuned for this query: the planner underestimates the rows of the CTEs filtered on window results and
        # would otherwise pick nested loops that run for many minutes; sorts fit in memory.
        conn.execute(text("SET LOCAL enable_nestloop = off"))
        conn.execute(text("SET LOCAL work_mem = '64MB'"))
        # The month's id range first (as read_history does), so that the planner reads the steps by index.
        lo, hi = conn.execute(text(SQL_ID_RANGE), params).one()
        rows = conn.execute(text(SQL_ON_TIME_DISPOSAL), {**params, "lo": lo, "hi": hi}).all()
    elapsed = time.perf_counter() - t0
    out = pd.DataFrame(rows, columns=["subject", "to_dispose", "on_time"])
    out["on_time_disposal_rate"] = out["on_time"] / out["to_dispose"].where(out["to_dispose"] > 0)
    return elapsed, out


# --------------------------------------------------------------------------------------- the gisgrid side


def run_gisgrid(
    engine: Engine, services: Any, period: Period, limits: dict[tuple[str, str, str | None], history.DisposalHours]
) -> tuple[dict[str, float], dict[str, pd.DataFrame], tuple[int, int]]:
    calendar = WorkingCalendar()
    node_limits = services.events.node_limits
    engine.dispose()
    t0 = time.perf_counter()
    with engine.connect() as conn:
        cases, steps = history.read_history(conn, period, limits)
    t1 = time.perf_counter()
    facts = prepare(cases, steps, calendar, node_limits, period, as_of=period.end)  # as run_sql judges
    t2 = time.perf_counter()
    tables = {name: rank(table) for name, table in evaluate_all(facts).items()}
    t3 = time.perf_counter()
    times = {"read": t1 - t0, "prepare": t2 - t1, "tables": t3 - t2, "compute": t3 - t1, "total": t3 - t0}
    return times, tables, (len(cases), len(steps))


def compare(python: pd.DataFrame, sql: pd.DataFrame) -> str:
    """Per tier-3 grid: the same counted nodes, the same rate and the same late nodes (超期处置数)?"""
    p = python.set_index("subject")[["to_dispose", "on_time_disposal_rate", "overdue_disposals"]]
    s = sql.assign(overdue_disposals=sql["to_dispose"] - sql["on_time"]).set_index("subject")
    s = s[["to_dispose", "on_time_disposal_rate", "overdue_disposals"]]
    both = p.join(s, how="outer", suffixes=("_py", "_sql"))
    for col in ("to_dispose", "overdue_disposals"):
        both[[f"{col}_py", f"{col}_sql"]] = both[[f"{col}_py", f"{col}_sql"]].fillna(0)
    count_diff = int((both["to_dispose_py"] != both["to_dispose_sql"]).sum())
    late_diff = int((both["overdue_disposals_py"] != both["overdue_disposals_sql"]).sum())
    rate_diff = (both["on_time_disposal_rate_py"] - both["on_time_disposal_rate_sql"]).abs()
    nan_diff = int((both["on_time_disposal_rate_py"].isna() != both["on_time_disposal_rate_sql"].isna()).sum())
    total_py = python["to_dispose"].sum()
    on_py = (python["on_time_disposal_rate"].fillna(0) * python["to_dispose"]).sum()
    total_sql, on_sql = sql["to_dispose"].sum(), sql["on_time"].sum()
    return (
        f"{len(both)} tier-3 grids; counted disposal nodes {int(total_py):,} (gisgrid) vs {int(total_sql):,} (SQL); "
        f"district 按期处置率 {on_py / total_py:.6f} vs {on_sql / total_sql:.6f}; grids whose count differs: "
        f"{count_diff}, whose 超期处置数 differs: {late_diff}, whose rate differs by > 1e-12: "
        f"{int((rate_diff > 1e-12).sum()) + nan_diff} "
        f"(max |Δ| {np.nanmax(rate_diff.to_numpy()) if rate_diff.notna().any() else 0.0:.2e})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--layout", choices=("year", "month"), default="year")
    ap.add_argument("--month", default="2025-09", help="the evaluated month (YYYY-MM, in 2025)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--reuse", action="store_true", help="use the kept database as it is")
    args = ap.parse_args()
    year, month = (int(x) for x in args.month.split("-"))
    period = Period.month(year, month)
    first, days = (dt.date(year, 1, 1), 365) if args.layout == "year" else (period.start.date(), int(period.days))
    name = f"gisgrid_bench_evaluation_{args.layout}"
    settings = Settings()
    services = case_svc.load_services(settings)
    limits = history.disposal_limits(services.events, services.calendar.hours.hours_per_day)
    engine, server, fresh = open_database(name, reuse=args.reuse)
    try:
        if fresh:
            case_svc.sync_reference_data(engine, services)
            generate(engine, services, args.cases, first, days)
        install_sql_calendar(engine, WorkingCalendar(), first - dt.timedelta(days=7), dt.date(year + 1, 3, 1))
        install_limits(engine, limits)
        with engine.connect() as conn:
            stored, steps = conn.execute(
                text("SELECT count(*), (SELECT count(*) FROM case_transitions) FROM cases")
            ).one()
        print(
            f"database: {stored:,} cases, {steps:,} transitions (layout {args.layout}); evaluated month {period.label}",
            flush=True,
        )
        load_before = os.getloadavg()[0]
        runs: list[dict[str, float]] = []
        sql_times: list[float] = []
        tables: dict[str, pd.DataFrame] = {}
        sql_table = pd.DataFrame()
        counts = (0, 0)
        for k in range(args.runs):
            times, tables, counts = run_gisgrid(engine, services, period, limits)
            gc.collect()
            sql_s, sql_table = run_sql(engine, period)
            runs.append(times)
            sql_times.append(sql_s)
            print(
                f"run {k + 1}: gisgrid read {times['read']:.2f} s + prepare {times['prepare']:.2f} s + tables "
                f"{times['tables']:.2f} s = {times['total']:.2f} s; SQL {sql_s:.2f} s",
                flush=True,
            )
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        sql_med = statistics.median(sql_times)
        rows = sum(len(t) for t in tables.values())
        print(f"month {period.label}: {counts[0]:,} cases, {counts[1]:,} transitions (layout {args.layout})")
        print(f"tables: {len(tables)} ({rows:,} rows): " + ", ".join(f"{k} {len(v)}" for k, v in tables.items()))
        load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)"
        print(f"median of {args.runs} runs ({load}):")
        print(f"  gisgrid read_history          : {med['read']:6.2f} s")
        print(f"  gisgrid compute (prepare)     : {med['prepare']:6.2f} s")
        print(f"  gisgrid compute (11 tables)   : {med['tables']:6.2f} s")
        goal = "met" if med["total"] <= 5 else "NOT met"
        print(f"  gisgrid total                 : {med['total']:6.2f} s   (goal ≤ 5 s: {goal})")
        print(f"  plain SQL 按期处置率 / tier3  : {sql_med:6.2f} s")
        print(f"  ratio gisgrid / SQL           : {med['total'] / sql_med:6.2f}")
        print("agreement: " + compare(tables["region/tier3"], sql_table))
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(server, name)


if __name__ == "__main__":
    main()
