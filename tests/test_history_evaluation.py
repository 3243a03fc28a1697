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
    assert dep.exit_code == 0, dep.output and xlsx.exists()
    assert len(pd.read_excel(xlsx, header=1)) == 20  # below its title row: the 19 departments, then the 合计
    empty = runner.invoke(app, ["evaluate", "--period", "2024-01", "--subject", "department", "--top", "20"], env=env)
    assert empty.exit_code == 0, empty.output  # an empty month: every department listed, 不参评 (review49 F5)
    assert empty.output.count("不参评") == 19
    coming = runner.invoke(app, ["evaluate", "--period", "2100-01"], env=env)  # a period not begun: refused
    assert coming.exit_code != 0
    bad = runner.invoke(app, ["evaluate", "--period", "last month"], env=env)
    assert bad.exit_code != 0


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
        assert rows and {"subject", "score", "grade", "rank"} <= set(rows[0])
        csv = client.get("/evaluation", params={"period": "2025-10", "level": "tier1", "format": "csv"})
        assert csv.status_code == 200 and csv.text.startswith("\ufeff") and "subject" in csv.text.splitlines()[0]
        for kind in ("selective", "overload", "escalation", "paper_closure"):
            risk = client.get(f"/risks/{kind}", params={"period": "2025-10"})
            assert risk.status_code == 200, (kind, risk.text)
            for row in risk.json()["data"]:
                assert {"subject", "score", "flagged", "explanation"} <= set(row)
                assert 0 <= row["score"] <= 1
        assert client.get("/risks/gossip", params={"period": "2025-10"}).status_code == 422
        assert client.get("/evaluation", params={"period": "someday"}).status_code == 422
        assert client.get("/evaluation", params={"period": "2100-01"}).status_code == 422  # not begun


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
