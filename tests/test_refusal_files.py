"""The refusals and warnings files of the imports always describe the run that wrote them (review43 D2, D3, U1):
a clean re-run removes the previous run's file and says so; a run that fails before its outcome leaves no file
and no temporary file; ``grids staff`` lists every problem and writes them with ``--errors``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid import cases as svc
from gisgrid import components_store, history
from gisgrid.boundaries import BoundaryOptions
from gisgrid.cli import app
from gisgrid.errors import InvalidInput
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from tests.fixtures import STREETS, load_small_district, write_small_district
from tests.test_components_store import LAMP, inside_points, run, write_csv
from tests.test_history_import import NOW, changed, sample_rows, write_rows

runner = CliRunner()
LAMP_DEPT = "990000000000000012"  # 城市照明管理处


@pytest.fixture
def district(clean_db: Engine, tmp_path: Path) -> Engine:
    load_small_district(clean_db, tmp_path)
    return clean_db


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------ components import


def test_a_clean_component_rerun_removes_the_previous_refusals_and_warnings(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(4, seed=43)
    out = tmp_path / "out"
    refusals, warnings = out / "fix_ref.csv", out / "fix_ref.warnings.csv"
    first = [
        {"class_code": LAMP, "ZGBMDM": LAMP_DEPT, "ZGBMMC": "路灯所", "lon": xs[0], "lat": ys[0]},  # a warning
        {"class_code": LAMP, "ZGBMDM": LAMP_DEPT, "ZGBMMC": "", "lon": "abc", "lat": ys[1]},  # refused
    ]
    s1 = run(district, write_csv(tmp_path / "fix1.csv", first), errors_path=refusals)
    assert (s1.inserted, s1.refused, s1.errors_path, s1.warnings_path) == (1, 1, refusals, warnings)
    assert files_in(out) == ["fix_ref.csv", "fix_ref.warnings.csv"]

    fixed = [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(xs[2:], ys[2:], strict=True)]
    s2 = run(district, write_csv(tmp_path / "fix2.csv", fixed), errors_path=refusals)
    assert (s2.inserted, s2.refused, s2.errors_path, s2.warnings_path) == (2, 0, None, None)
    assert files_in(out) == []
    assert s2.to_text().splitlines() == [
        "read 2, inserted 2, updated 0, unchanged 0, refused 0",
        "generated 2 identifiers",
        f"no refusals (removed the previous run's {refusals})",
        f"no warnings (removed the previous run's {warnings})",
    ]
    again = [{"class_code": LAMP, "lon": xs[0] + 0.0001, "lat": ys[0]}]
    s3 = run(district, write_csv(tmp_path / "fix3.csv", again), errors_path=refusals)  # nothing to remove: no line
    assert s3.to_text().splitlines() == [
        "read 1, inserted 1, updated 0, unchanged 0, refused 0",
        "generated 1 identifiers",
    ]


def test_a_component_import_whose_write_fails_leaves_no_refusals_file(
    district: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusals are put in place only after the commit: a write failing after the rows were read and checked
    (serials exhausted, a lost connection …) leaves neither the file nor its temporary file; a previous run's
    file stays as that complete run left it."""
    xs, ys = inside_points(1, seed=44)
    rows = [{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}, {"class_code": LAMP, "lon": "abc", "lat": ys[0]}]
    path = write_csv(tmp_path / "c.csv", rows)
    out = tmp_path / "out"
    out.mkdir()

    def fail(*_args: object, **_kw: object) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(components_store, "write_components", fail)
    with pytest.raises(RuntimeError, match="connection lost"):
        run(district, path, errors_path=out / "ref.csv")
    assert files_in(out) == []

    (out / "ref.csv").write_bytes(b"row,field,value,reason\r\n9,lon,x,previous run\r\n")
    with pytest.raises(RuntimeError, match="connection lost"):
        run(district, path, errors_path=out / "ref.csv")
    assert files_in(out) == ["ref.csv"]
    assert (out / "ref.csv").read_bytes() == b"row,field,value,reason\r\n9,lon,x,previous run\r\n"


# ------------------------------------------------------------------------------------------ history import


def test_a_clean_history_rerun_removes_the_previous_refusals_file(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """The history import's default refusals file, FILE.errors.csv, is removed by a run that refuses nothing."""
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    h1 = write_rows(tmp_path / "h1.csv", changed(24, at="2025-09-04T11:30:00"))
    dry = runner.invoke(app, ["cases", "import-history", str(h1), "--dry-run"], env=env)
    assert dry.exit_code == 3, dry.output  # some cases refused, the others would be imported
    assert (tmp_path / "h1.errors.csv").is_file()

    write_rows(h1, sample_rows())  # fixed
    again = runner.invoke(app, ["cases", "import-history", str(h1)], env=env)
    assert again.exit_code == 0, again.output
    assert not (tmp_path / "h1.errors.csv").exists()
    assert again.output.splitlines()[-2:] == [
        "read 28 rows (4 cases): imported 4 cases (28 transitions), refused 0 rows (0 cases)",
        f"no refusals (removed the previous run's {tmp_path / 'h1.errors.csv'})",
    ]


def test_a_history_import_whose_write_fails_leaves_no_refusals_file(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "h").mkdir()
    path = write_rows(tmp_path / "h" / "h.csv", changed(24, at="2025-09-04T11:30:00"))  # one case refused, 3 accepted

    def fail(*_args: object, **_kw: object) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(history, "write_history_in", fail)
    options = history.HistoryImportOptions(errors_path=path.with_name("h.errors.csv"), now=NOW)
    with pytest.raises(RuntimeError, match="connection lost"):
        history.import_history(loaded, path, services, options)
    assert files_in(path.parent) == ["h.csv"]


# ------------------------------------------------------------------------------------------ grids staff


@pytest.fixture
def imported(clean_db: Engine, tmp_path: Path) -> Engine:
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    return clean_db


def test_a_refused_staff_file_lists_every_problem_and_writes_them_with_errors(imported: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "staff_bad.csv"
    bad.write_text(
        "grid_code,role,name,phone\n"
        f"{STREETS[0]},网格长,王伟,13800000001\n"
        f"{STREETS[0]},组长,李娜,13800000002\n"
        f"4199010010011,网格员,,13800000003\n"
        f"{STREETS[1]},网格员,张三,138\n",
        encoding="utf-8",
    )
    ref = tmp_path / "out" / "staff_ref.csv"
    with pytest.raises(InvalidInput) as err:
        workflows.import_staff(imported, bad, errors_path=ref)
    assert err.value.message == (
        f"{bad}: 4 problem(s), nothing imported:\n"
        "row 3 field role: role must be one of 网格长/网格员/监督员/专职网格员/兼职网格员\n"
        "row 4 field grid_code: no management grid '4199010010011'\n"
        "row 4 field name: name is empty\n"
        "row 5 field phone: '138' is not a phone number\n"
        f"refusals written to {ref}"
    )
    written = pd.read_csv(ref, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert written.to_dict("records") == [
        {
            "row": "3",
            "field": "role",
            "value": "组长",
            "reason": "role must be one of 网格长/网格员/监督员/专职网格员/兼职网格员",
        },
        {"row": "4", "field": "grid_code", "value": "4199010010011", "reason": "no management grid '4199010010011'"},
        {"row": "4", "field": "name", "value": "", "reason": "name is empty"},
        {"row": "5", "field": "phone", "value": "138", "reason": "'138' is not a phone number"},
    ]

    many = tmp_path / "staff_many.csv"
    many.write_text(
        "grid_code,role,name,phone\n" + "".join(f"{STREETS[0]},网格员,员{i},12ab\n" for i in range(23)),
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as err:
        workflows.import_staff(imported, many)
    lines = err.value.message.splitlines()
    assert lines[0] == f"{many}: 23 problem(s), nothing imported:"
    assert lines[1:] == [f"row {r} field phone: '12ab' is not a phone number" for r in range(2, 22)] + [
        "… and 3 more problem(s) (all with --errors FILE)"
    ]

    fixed = tmp_path / "staff.csv"
    fixed.write_text(f"grid_code,role,name,phone\n{STREETS[0]},网格长,王伟,13800000001\n", encoding="utf-8")
    notes: list[str] = []
    assert workflows.import_staff(imported, fixed, errors_path=ref, notes=notes) == 1
    assert notes == [f"no refusals (removed the previous run's {ref})"]
    assert files_in(ref.parent) == []


def test_grids_staff_takes_errors_from_the_command_line(imported: Engine, settings: Settings, tmp_path: Path) -> None:
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    bad = tmp_path / "bad.csv"
    bad.write_text(f"grid_code,role,name,phone\n{STREETS[0]},网格员,王伟,138\n", encoding="utf-8")
    ref = tmp_path / "ref.csv"
    refused = runner.invoke(app, ["grids", "staff", str(bad), "--errors", str(ref)], env=env)
    assert isinstance(refused.exception, InvalidInput)  # main() prints it as an error: line, exit 1
    assert refused.exception.message == (
        f"{bad}: 1 problem(s), nothing imported:\nrow 2 field phone: '138' is not a phone number\n"
        f"refusals written to {ref}"
    )
    assert ref.is_file()
    bad.write_text(f"grid_code,role,name,phone\n{STREETS[0]},网格员,王伟,13800000001\n", encoding="utf-8")
    done = runner.invoke(app, ["grids", "staff", str(bad), "--errors", str(ref)], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-2:] == [
        "staff set for 1 grids",
        f"no refusals (removed the previous run's {ref})",
    ]
    assert not ref.exists()


def test_grids_staff_shows_the_changes_and_removes_people_only_with_replace(
    imported: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review44 U1: a file adding one 网格员 silently dropped the grid's 网格长 and the others."""
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    first = tmp_path / "staff.csv"
    first.write_text(
        "grid_code,role,name,phone\n"
        f"{STREETS[0]},网格长,王伟,13800000001\n{STREETS[0]},网格员,李娜,13800000002\n"
        f"{STREETS[1]},网格长,张三,13800000003\n",
        encoding="utf-8",
    )
    done = runner.invoke(app, ["grids", "staff", str(first)], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        f"grid {STREETS[0]}: 2 added, 0 removed, 0 changed",
        f"grid {STREETS[1]}: 1 added, 0 removed, 0 changed",
        "staff set for 2 grids",
    ]

    def staff() -> list[tuple[str, str | None, list[str]]]:
        with imported.connect() as conn:
            rows = conn.execute(
                text("SELECT code, leader_name, staff FROM management_grids WHERE code = ANY(:c) ORDER BY code"),
                {"c": list(STREETS)},
            ).all()
        return [(r.code, r.leader_name, [m["name"] for m in r.staff]) for r in rows]

    before = [(STREETS[0], "王伟", ["王伟", "李娜"]), (STREETS[1], "张三", ["张三"])]
    assert staff() == before
    one_more = tmp_path / "one_more.csv"
    one_more.write_text(f"grid_code,role,name,phone\n{STREETS[0]},网格员,测试员,13800000000\n", encoding="utf-8")
    refused = runner.invoke(app, ["grids", "staff", str(one_more)], env=env)
    removal = f"grid {STREETS[0]}: 1 added, 2 removed (王伟 网格长, 李娜 网格员), 0 changed"
    assert refused.output.splitlines() == [removal]
    assert isinstance(refused.exception, InvalidInput)  # main() prints it as an error: line, exit 1
    assert refused.exception.message == (
        "文件会从 1 个网格移除 2 人(文件列出的网格,其人员名单以文件为准)/ the file would remove 2 person(s) from "
        "1 grid(s) (the file's rows replace the list of each grid it names): add their rows to keep them, or run "
        "again with --replace to remove them; nothing written"
    )
    assert staff() == before

    dry = runner.invoke(app, ["grids", "staff", str(one_more), "--replace", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        f"grid {STREETS[0]}: 1 added, 2 removed (王伟 网格长, 李娜 网格员), 0 changed",
        "dry run: staff would be set for 1 grids; nothing written",
    ]
    assert staff() == before

    kept = tmp_path / "kept.csv"
    kept.write_text(
        "grid_code,role,name,phone\n"
        f"{STREETS[0]},网格长,王伟,13800000001\n{STREETS[0]},网格员,李娜,13900000002\n"
        f"{STREETS[0]},网格员,测试员,13800000000\n{STREETS[1]},网格长,张三,13800000003\n",
        encoding="utf-8",
    )
    done = runner.invoke(app, ["grids", "staff", str(kept)], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        f"grid {STREETS[0]}: 1 added, 0 removed, 1 changed",
        "1 grid(s) unchanged",
        "staff set for 2 grids",
    ]
    replaced = runner.invoke(app, ["grids", "staff", str(one_more), "--replace"], env=env)
    assert replaced.exit_code == 0, replaced.output
    assert replaced.output.splitlines() == [
        f"grid {STREETS[0]}: 0 added, 2 removed (王伟 网格长, 李娜 网格员), 0 changed",
        "staff set for 1 grids",
    ]
    assert staff() == [(STREETS[0], None, ["测试员"]), (STREETS[1], "张三", ["张三"])]
