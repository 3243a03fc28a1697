"""A city's own evaluation rules (GISGRID_CATALOGUE_DIR/rules/evaluation.csv) score and grade the API's and the
CLI's evaluation, and the console map's grade classes (review27 D1: the package's file was always read); a bad
one is refused by the command before it reads anything (review27 D7).

One 暴露垃圾 case (tests.test_evaluation_as_of's R1, handled a day late): open and overdue as of 10-10 09:00, closed
late as of now.
The city moves the region's 立案数分值 weight (10 %) to 监督举报率 and puts A at 95, D at 50–60, E below 50."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.main import create_app
from gisgrid import cases as svc
from gisgrid import history
from gisgrid.cli import app
from gisgrid.settings import PROJECT_ROOT, Settings
from tests.test_evaluation_as_of import HEADER, R1

runner = CliRunner()
COLUMNS = ["filed_score", "public_report_rate", "closure_rate", "on_time_closure_rate", "score", "grade"]
# R1 handled a day later (10-10 09:30: 1.5 + 7.5 + 1 = 10 working hours > 4), judged as of 10-10 09:00 (open and
# overdue, so 应结案 and not closed — as of the period end it was not yet due, review49 #2) and as of now:
# open: 10 % × 75 + 20 % × 100 + 15 % × 100 = 42.5 → D; the city's 30 % × 100 + 15 % × 100 = 45 → E (below its
# 50). Closed late: 42.5 + 30 % × 100 = 72.5 → C; the city's 45 + 30 % × 100 = 75 → B (75–95).
LATE_R1 = R1.replace("2025-10-09T", "2025-10-10T")
PACKAGE = ([75.0, 0.0, 0.0, 0.0, 42.5, "D"], [75.0, 0.0, 1.0, 0.0, 72.5, "C"])
CITY = ([75.0, 0.0, 0.0, 0.0, 45.0, "E"], [75.0, 0.0, 1.0, 0.0, 75.0, "B"])
AT_END, NOW = {"as_of": "2025-10-10T09:00"}, {}


@pytest.fixture
def late_case(loaded: Engine, services: svc.CaseServices, tmp_path: Path) -> Engine:
    src = tmp_path / "r1.csv"
    src.write_text(HEADER + "\n" + LATE_R1, encoding="utf-8")
    summary = history.import_history(
        loaded, src, services, history.HistoryImportOptions(errors_path=tmp_path / "r1.errors.csv")
    )
    assert (summary.imported_cases, summary.refused_rows) == (1, 0), summary.to_text()
    return loaded


def city_copy(tmp_path: Path, **replacements: str) -> Path:
    city = tmp_path / "city"
    shutil.copytree(PROJECT_ROOT / "data", city, ignore=shutil.ignore_patterns("*.md"))
    rules = city / "rules" / "evaluation.csv"
    text = rules.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    rules.write_text(text, encoding="utf-8")
    return city


@pytest.fixture
def city(tmp_path: Path) -> Path:
    return city_copy(
        tmp_path,
        **{
            "weight,region,filed_score,,,,0.10,": "weight,region,filed_score,,,,0.00,",
            "weight,region,1-public_report_rate,,,,0.20,": "weight,region,1-public_report_rate,,,,0.30,",
            "grade,,A,,90,,,": "grade,,A,,95,,,",
            "grade,,B,,75,90,,": "grade,,B,,75,95,,",
            "grade,,D,,40,60,,": "grade,,D,,50,60,,",
            "grade,,E,,,40,,": "grade,,E,,,50,,",
        },
    )


def row(records: list[dict[str, object]]) -> list[object]:
    """R1's unit grid's row (every unit grid is listed; the others had no case)."""
    [r] = [r for r in records if r["reports"]]
    return [r[c] for c in COLUMNS]


def test_the_api_scores_and_grades_by_the_citys_rules(late_case: Engine, settings: Settings, city: Path) -> None:
    q = {"period": "2025-09", "level": "unit_grid"}
    for where, expected in ((None, PACKAGE), (city, CITY)):
        with TestClient(
            create_app(settings if where is None else settings.model_copy(update={"catalogue_dir": where}))
        ) as c:
            for when, values in zip((AT_END, NOW), expected, strict=True):
                body = c.get("/evaluation", params={**q, **when})
                assert body.status_code == 200, body.text
                assert row(body.json()["data"]) == values, (where, when)
            legend = c.get("/evaluation/map", params={**q, **AT_END, "indicator": "grade"}).json()["legend"]
            graded = [g for g in legend if g["class"] is not None]
            assert [g["label"][0] for g in graded if g["count"]] == [expected[0][-1]], where  # D, E: the city's
            assert [g["label"] for g in graded] == (
                ["A (≥ 90)", "B (75–90)", "C (60–75)", "D (40–60)", "E (< 40)"]
                if where is None
                else ["A (≥ 95)", "B (75–95)", "C (60–75)", "D (50–60)", "E (< 50)"]
            ), where


def test_the_cli_scores_and_grades_by_the_citys_rules(
    late_case: Engine, settings: Settings, city: Path, tmp_path: Path
) -> None:
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    base = ["evaluate", "--period", "2025-09", "--level", "unit_grid"]
    for where, expected in ((None, PACKAGE), (city, CITY)):
        extra = {} if where is None else {"GISGRID_CATALOGUE_DIR": str(where)}
        for when, values in zip((["--as-of", "2025-10-10T09:00"], []), expected, strict=True):
            out = tmp_path / "table.csv"
            r = runner.invoke(app, [*base, *when, "--out", str(out)], env={**env, **extra})
            assert r.exit_code == 0, r.output
            table = pd.read_csv(out, encoding="utf-8-sig")
            assert row(table.to_dict("records")) == values, (where, when)


def test_the_cli_refuses_a_bad_city_rules_file_naming_file_row_and_field(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_ops_settings import run_main

    city = city_copy(
        tmp_path,
        **{"weight,department,": "weight,departmen,", "grade,,A,,90,,,": "grade,,A,,95,,,"},
    )
    rules = city / "rules" / "evaluation.csv"
    code, err = run_main(
        monkeypatch,
        capsys,
        "evaluate",
        "--period",
        "2025-09",
        "--subject",
        "department",
        GISGRID_CATALOGUE_DIR=str(city),
        GISGRID_DATABASE_URL=settings.database_url or "",
        GISGRID_DATA_DIR=str(tmp_path / "data"),
    )
    subject = "one of region, department, supervisor, intake, shift_lead, dispatcher"
    assert (code, err) == (
        1,
        "error: evaluation rules: 6 problem(s):\n"
        + "".join(
            f"{rules}: row {n}, field 'subject': unknown subject 'departmen': {subject}\n" for n in (15, 16, 17, 18)
        )
        + f"{rules}: no weight rows for department (weight,department,…)\n"
        f"{rules}: row 48, field 'lower': grade bands leave a gap: scores from 90 to 95 get no grade (B in row 49 "
        "ends at 90, A in row 48 starts at 95)\n",
    )
