"""A simulated history written to PostGIS and evaluated back: the CLI an evaluator uses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid.cli import app
from gisgrid.errors import InvalidInput
from gisgrid.settings import Settings
from tests.fixtures import load_small_district

runner = CliRunner()
#: How a period that is no period is refused (the value named before it).
UNREADABLE = (
    "is not a month (2026-10), quarter (2026-Q3), week (2026-W40), year (2026) or range (2026-10-01..2026-11-01, "
    "the end excluded)"
)


def test_simulate_writes_a_history_and_evaluate_ranks_it(clean_db: Engine, settings: Settings, tmp_path: Path) -> None:
    load_small_district(clean_db, tmp_path)
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    r = runner.invoke(
        app, ["simulate", "--days", "60", "--seed", "3", "--start", "2025-09-01", "--rate", "0.3"], env=env
    )
    assert r.exit_code == 0, r.output
    with clean_db.connect() as conn:
        n_cases, n_steps, years = conn.execute(
            text(
                "SELECT count(*), (SELECT count(*) FROM case_transitions), count(DISTINCT left(case_no, 4)) FROM cases"
            )
        ).one()
        unique_numbers = conn.execute(text("SELECT count(DISTINCT case_no) FROM cases")).scalar_one()
        orphan_steps = conn.execute(
            text("SELECT count(*) FROM case_transitions t LEFT JOIN cases c ON c.id = t.case_id WHERE c.id IS NULL")
        ).scalar_one()
    assert f"wrote {n_cases} cases" in r.output and n_cases > 100 and n_steps > 5 * n_cases
    assert unique_numbers == n_cases and years == 1 and orphan_steps == 0

    out = tmp_path / "tier3.csv"
    ev = runner.invoke(
        app, ["evaluate", "--period", "2025-10", "--subject", "region", "--level", "tier3", "--out", str(out)], env=env
    )
    assert ev.exit_code == 0, ev.output
    table = pd.read_csv(out, encoding="utf-8-sig", dtype={"subject": str})
    assert {"subject", "score", "grade", "rank", "rank_change"} <= set(table.columns)
    assert table["rank"].tolist() == sorted(table["rank"].tolist())
    assert set(table["grade"].dropna()) <= {*"ABCDE", "不参评"}
    xlsx = tmp_path / "departments.xlsx"
    dep = runner.invoke(
        app, ["evaluate", "--period", "2025-10", "--subject", "department", "--out", str(xlsx)], env=env
    )
    assert dep.exit_code == 0 and xlsx.exists(), dep.output
    assert len(pd.read_excel(xlsx, header=1)) == 20  # below its title row: the 19 departments, then the 合计
    empty = runner.invoke(app, ["evaluate", "--period", "2024-01", "--subject", "department", "--top", "20"], env=env)
    assert empty.exit_code == 0, empty.output  # an empty month: every department listed, 不参评 (review49 F5)
    assert empty.output.count("不参评") == 19
    coming = runner.invoke(app, ["evaluate", "--period", "2100-01"], env=env)  # a period not begun: refused
    assert (coming.exit_code, type(coming.exception)) == (1, InvalidInput)
    assert str(coming.exception).startswith(
        "该评价期内没有上报的案件:2100-01 尚未开始(始于 2100-01-01 00:00) / no cases were reported in 2100-01: it "
        "begins 2100-01-01T00:00:00+08:00, after now ("
    ), coming.exception
    bad = runner.invoke(app, ["evaluate", "--period", "last month"], env=env)
    assert (bad.exit_code, type(bad.exception), str(bad.exception)) == (
        1,
        InvalidInput,
        f"period: 'last month' {UNREADABLE}",
    )


def test_evaluation_and_risks_over_http(clean_db: Engine, settings: Settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    load_small_district(clean_db, tmp_path)
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    r = runner.invoke(
        app, ["simulate", "--days", "45", "--seed", "5", "--start", "2025-09-15", "--rate", "0.3"], env=env
    )
    assert r.exit_code == 0, r.output
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        ev = client.get("/evaluation", params={"period": "2025-10", "subject": "department"})
        assert ev.status_code == 200, ev.text
        rows = ev.json()["data"]
        assert {"subject", "score", "grade", "rank"} <= set(rows[0])
        # the catalogue's 19 departments, 4 不参评 (no case of theirs that month); the seeded history's best first
        assert (len(rows), [r["grade"] for r in rows].count("不参评")) == (19, 4)
        assert (rows[0]["subject"], rows[0]["grade"], rows[0]["rank"]) == ("990000000000000008", "A", 1)
        csv = client.get("/evaluation", params={"period": "2025-10", "level": "tier1", "format": "csv"})
        assert csv.status_code == 200 and csv.text.startswith("\ufeff") and "subject" in csv.text.splitlines()[0]
        with clean_db.connect() as conn:
            tier3s = conn.execute(text("SELECT count(DISTINCT tier3_code) FROM unit_grids")).scalar_one()
            closing = conn.execute(  # the unit grids where a case reported that month is closed
                text(
                    "SELECT count(DISTINCT unit_grid_code) FROM cases WHERE state = 'closed' AND closed_at IS NOT NULL "
                    "AND created_at >= '2025-10-01T00:00+08:00' AND created_at < '2025-11-01T00:00+08:00'"
                )
            ).scalar_one()
        # one row per subject of each risk's level: every tier-3 grid, both streets; 纸面结案 every unit grid where a
        # case of the month was closed (95 of 96 in this seeded history)
        assert closing == 95
        subjects = {"selective": tier3s, "overload": tier3s, "escalation": 2, "paper_closure": closing}
        for kind, n in subjects.items():
            risk = client.get(f"/risks/{kind}", params={"period": "2025-10"})
            assert risk.status_code == 200, (kind, risk.text)
            data = risk.json()["data"]
            # a history simulated without planted patterns: nothing flagged (review57 F7)
            assert (len(data), [r["subject"] for r in data if r["flagged"]]) == (n, []), kind
            for row in data:
                assert {"subject", "score", "flagged", "explanation"} <= set(row)
                assert 0 <= row["score"] <= 1
        gossip = client.get("/risks/gossip", params={"period": "2025-10"})
        assert (gossip.status_code, gossip.json()["detail"]["items"]) == (
            422,
            [
                {
                    "field": "kind",
                    "reason": "Input should be 'selective', 'overload', 'escalation' or 'paper_closure'",
                    "code": "literal_error",
                }
            ],
        )
        someday = client.get("/evaluation", params={"period": "someday"})
        assert (someday.status_code, someday.json()["reason"], someday.json()["detail"]["items"]) == (
            422,
            "period_unreadable",
            [{"field": "period", "reason": f"'someday' {UNREADABLE}", "code": "period_unreadable", "value": "someday"}],
        )
        coming = client.get("/evaluation", params={"period": "2100-01"})  # not begun: its own reason
        assert (coming.status_code, coming.json()["reason"]) == (422, "no_cases_in_period")
        [item] = coming.json()["detail"]["items"]
        assert (item["field"], item["code"], item["value"]) == ("period", "no_cases_in_period", "2100-01")
        assert item["reason"].startswith(
            "no cases were reported in 2100-01: it begins 2100-01-01T00:00:00+08:00, after now ("
        )


def test_simulate_refuses_unknown_or_wrong_level_plants_and_says_what_it_planted(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    load_small_district(clean_db, tmp_path)
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    with clean_db.connect() as conn:
        street, tier3 = conn.execute(text("SELECT street_code, tier3_code FROM unit_grids ORDER BY code LIMIT 1")).one()
    base = ["simulate", "--days", "2", "--seed", "3", "--start", "2025-09-01", "--rate", "0.05"]
    r = runner.invoke(app, [*base, "--plant", f"selective=99999999999999,escalation={tier3}"], env=env)
    assert r.exit_code == 1 and isinstance(r.exception, InvalidInput)
    assert r.exception.message.startswith(
        f"plant: selective=99999999999999: not a loaded tier-3 grid code; escalation={tier3}: a tier-3 grid code, "
        "not a street code ("
    )
    r = runner.invoke(app, [*base, "--plant", "selective="], env=env)
    assert r.exit_code == 1 and r.exception.message == "--plant: 'selective=' names no code (KIND=CODE;CODE)"
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0  # refused before writing
    r = runner.invoke(app, [*base, "--plant", f"selective={tier3},escalation={street}"], env=env)
    assert r.exit_code == 0, r.output
    assert f"planted selective: {tier3}\n" in r.output and f"planted escalation: {street}\n" in r.output
