"""立案数分值 per group of departments (review49 F7; standards: "宜根据部门工作职责分组设定"): the departments
catalogue's optional ``score_group`` column and ``score,department:GROUP,…`` rows of rules/evaluation.csv.

Three departments with 60 立案 each in March 2025, every case handled, checked and closed on time (结案率 1,
按期处置率 1, 返工率 0): D1 in group 环卫 (0–200 → 100), D2 in group 市政 (< 51 → 80, 51 or more → 70), D3 in no
group (the default table: 51–100 → 90). Composite = 10 % × 立案数分值 + 90 % × 100."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from gisgrid import cases as svc
from gisgrid.catalogue import load_catalogue
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import RULES_FILE, evaluate, load_evaluation_rules, with_every_unit
from gisgrid.settings import PROJECT_ROOT, Settings
from tests.test_evaluation import CAL, D1, D2, D3, LIMITS, MARCH, History, ts
from tests.test_evaluation_city_rules import late_case  # noqa: F401  (the fixture: one case in 2025-09)

GROUP_ROWS = (
    "score,department:环卫,filed_score,filed_per_month,,201,100,环卫 0–200 → 100\n"
    "score,department:环卫,filed_score,filed_per_month,201,,60,\n"
    "score,department:市政,filed_score,filed_per_month,,51,80,\n"
    "score,department:市政,filed_score,filed_per_month,51,,70,\n"
)
GROUPS = {D1: "环卫", D2: "市政"}
N_LINES = len(RULES_FILE.read_text(encoding="utf-8").splitlines())


def rules_file(tmp_path: Path, extra: str = GROUP_ROWS) -> Path:
    path = tmp_path / "evaluation.csv"
    path.write_text(RULES_FILE.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def sixty_each() -> tuple[pd.DataFrame, pd.DataFrame]:
    h = History()
    first = ts("2025-03-03 09:00")
    for cid in range(1, 181):
        at = first + pd.Timedelta(hours=3 * (cid - 1))  # the last on 2025-03-25

        def when(minutes: int, at: pd.Timestamp = at) -> str:
            return str((at + pd.Timedelta(minutes=minutes)).tz_localize(None))

        dep = (D1, D2, D3)[(cid - 1) % 3]
        h.report(cid, when(0), source="patrol", actor="S1", tier3="41990100100101", grid="G1", limit_h=4)
        h.act(cid, "request_verify", when(1), "I1", "intake")
        h.act(cid, "verify", when(2), "S1", "supervisor")
        h.act(cid, "file", when(3), "L1", "shift_lead")
        h.act(cid, "dispatch", when(4), "P1", "dispatcher", department=dep)
        h.act(cid, "handle", when(5), dep, "department")
        h.act(cid, "request_check", when(6), "I1", "intake")
        h.act(cid, "check", when(7), "S1", "supervisor")
        h.act(cid, "close", when(8), "L1", "shift_lead")
    return h.frames()


COLUMNS = ["filed", "filed_per_month", "filed_score", "score_group", "closure_rate", "score", "grade"]


def test_same_filed_count_scored_by_each_departments_group_table(tmp_path: Path) -> None:
    rules = load_evaluation_rules(rules_file(tmp_path), groups={**GROUPS, "990000000000000004": "园林"})
    cases, transitions = sixty_each()
    table = evaluate(cases, transitions, CAL, LIMITS, MARCH, "department", as_of=MARCH.end, rules=rules)
    got = table.set_index("subject")[COLUMNS]
    assert got.loc[[D1, D2, D3]].values.tolist() == [
        [60, 60.0, 100.0, "环卫", 1.0, 100.0, "A"],
        [60, 60.0, 70.0, "市政", 1.0, 97.0, "A"],
        [60, 60.0, 90.0, "", 1.0, 99.0, "A"],  # no group: the default department table
    ]
    # 园林 has no table of its own: its department is scored by the default table and says so ('').
    assert dict(rules.department_groups) == GROUPS
    # Without groups (the package's rules) every department is scored by the default table.
    plain = evaluate(cases, transitions, CAL, LIMITS, MARCH, "department", as_of=MARCH.end)
    assert (
        plain.set_index("subject").loc[[D1, D2, D3], ["filed_score", "score_group", "score"]].values.tolist()
        == [[90.0, "", 99.0]] * 3
    )
    # A catalogue department without a case is listed with the group whose table would score it.
    every = with_every_unit(table, "department", [D1, "990000000000000005"], rules=rules)
    assert every.set_index("subject").loc["990000000000000005", "score_group"] == ""
    every = with_every_unit(table.iloc[1:], "department", [D1], rules=rules)
    assert every.set_index("subject").loc[D1, ["score_group", "grade"]].tolist() == ["环卫", "不参评"]


def refusal(path: Path, groups: dict[str, str] | None = GROUPS) -> str:
    with pytest.raises(InvalidInput) as err:
        load_evaluation_rules(path, groups=groups)
    return err.value.message


def test_a_group_table_with_a_gap_an_open_end_or_an_overlap_is_refused_naming_file_and_row(tmp_path: Path) -> None:
    path = rules_file(
        tmp_path,
        "score,department:环卫,filed_score,filed_per_month,10,201,100,\n"
        "score,department:环卫,filed_score,filed_per_month,301,1000,60,\n"
        "score,department:市政,filed_score,filed_per_month,,60,80,\n"
        "score,department:市政,filed_score,filed_per_month,51,,70,\n",
    )
    a, b, c, d = (N_LINES + i for i in (1, 2, 3, 4))
    assert refusal(path) == (
        f"evaluation rules: 4 problem(s):\n{path.absolute()}: row {a}, field 'lower': the filed_score bins of "
        "department:环卫 leave counts from 0 to 10 without a score (leave the first lower empty)\n"
        f"{path.absolute()}: row {b}, field 'upper': the filed_score bins of department:环卫 leave counts of 1000 "
        "or more without a score (leave the last upper empty)\n"
        f"{path.absolute()}: row {b}, field 'lower': the filed_score bins of department:环卫 leave a gap from 201 "
        f"to 301 (rows {a} and {b})\n"
        f"{path.absolute()}: row {d}, field 'lower': the filed_score bins of department:市政 in rows {c} and {d} "
        "overlap from 51 to 60"
    )


def test_an_unknown_or_empty_group_is_refused_naming_file_and_row(tmp_path: Path) -> None:
    path = rules_file(tmp_path, GROUP_ROWS + "score,department:绿化,filed_score,filed_per_month,,,100,\n")
    assert refusal(path) == (
        f"evaluation rules: 1 problem(s):\n{path.absolute()}: row {N_LINES + 5}, field 'subject': "
        "unknown score group '绿化': no department has score_group 绿化 (groups: 市政, 环卫)"
    )
    path = rules_file(tmp_path, "score,department:,filed_score,filed_per_month,,,100,\n")
    assert refusal(path) == (
        f"evaluation rules: 1 problem(s):\n{path.absolute()}: row {N_LINES + 1}, field 'subject': "
        "the group is needed after department:"
    )
    # The shipped catalogue names no group: a group row there is refused (no departments file says score_group).
    path = rules_file(tmp_path)
    assert refusal(path, groups={}) == "evaluation rules: 4 problem(s):\n" + "\n".join(
        f"{path.absolute()}: row {N_LINES + i}, field 'subject': unknown score group '{g}': no department has "
        f"score_group {g} (groups: none)"
        for i, g in ((1, "环卫"), (2, "环卫"), (3, "市政"), (4, "市政"))
    )


def test_the_departments_catalogue_reads_score_group_and_a_city_row_replaces_it(tmp_path: Path) -> None:
    city = tmp_path / "departments.csv"
    city.write_text(
        f"code,name,kind,score_group\n{D1},区城市管理委员会,government,\n{D3},区环境卫生服务中心,public_institution,环卫\n"
        "990000000000000009,某部门,government,a:b\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as err:
        load_catalogue(PROJECT_ROOT / "data" / "catalogue", [city])
    assert f"{city}: row 4, field 'score_group': a score group name has no ':' or ','" in err.value.message
    city.write_text(
        f"code,name,kind,score_group\n{D1},区城市管理委员会,government,\n{D3},区环境卫生服务中心,public_institution,环卫\n",
        encoding="utf-8",
    )
    assert load_catalogue(PROJECT_ROOT / "data" / "catalogue", [city]).department_groups == {D3: "环卫"}


def test_the_api_scores_each_department_by_its_citys_group_table(
    late_case: Engine,  # noqa: F811
    settings: Settings,
    tmp_path: Path,
) -> None:
    """A city's departments file groups 区环境卫生服务中心 as 环卫 and its rules give 环卫 a table: the API's
    department table names the group and its rules are loaded with the city's groups."""
    city = tmp_path / "city"
    shutil.copytree(PROJECT_ROOT / "data", city, ignore=shutil.ignore_patterns("*.md"))
    deps = city / "catalogue" / "departments.csv"
    lines = deps.read_text(encoding="utf-8").splitlines()
    lines[0] += ",score_group"
    lines = [line + (",环卫" if line.startswith(D3) else ",") if i else line for i, line in enumerate(lines)]
    deps.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (city / "rules" / "evaluation.csv").write_text(
        RULES_FILE.read_text(encoding="utf-8") + GROUP_ROWS.split("score,department:市政")[0], encoding="utf-8"
    )
    loaded_rules = svc.load_services(settings.model_copy(update={"catalogue_dir": city})).evaluation_rules
    assert dict(loaded_rules.department_groups) == {D3: "环卫"}
    with TestClient(create_app(settings.model_copy(update={"catalogue_dir": city}))) as c:
        body = c.get("/evaluation", params={"period": "2025-09", "subject": "department"})
        assert body.status_code == 200, body.text
        groups = {r["subject"]: r["score_group"] for r in body.json()["data"]}
    assert groups[D3] == "环卫" and groups[D1] == ""
