"""The ``gisgrid`` command as analysts run it: help everywhere, file-only grid making, one-line refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import typer
from sqlalchemy import Engine, make_url, text
from typer.testing import CliRunner

from gisgrid.cli import app
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, legacy_gbk_shapefile, small_district, write_small_district
from tests.test_ops_settings import run_main

runner = CliRunner()


def _all_command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd: object, prefix: list[str]) -> None:
        # typer vendors its own click: recognise groups by their sub-commands, not by class.
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "gisgrid")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "<bool>" not in result.output  # review22 D9: typer 0.29 printed "--help <bool>" on every screen


def test_expected_commands_exist() -> None:
    names = {" ".join(p) for p in _all_command_paths()}
    assert {
        "db up",
        "db down",
        "db status",
        "db url",
        "db upgrade",
        "db downgrade",
        "boundaries import",
        "boundaries list",
        "boundaries replace",
        "boundaries remove",
        "grids make",
        "grids generate",
        "grids tiers",
        "grids staff",
        "grids export",
        "demo load",
        "serve",
    } <= names


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".csv", ".shp"])
def test_grids_make_writes_the_file_without_a_database(tmp_path: Path, suffix: str) -> None:
    src = write_small_district(tmp_path)
    out = tmp_path / f"cells{suffix}"
    result = runner.invoke(app, ["grids", "make", str(src), "--out", str(out)], env={"GISGRID_DATABASE_URL": ""})
    assert result.exit_code == 0, result.output
    assert "unit grids in 3 units (cut in EPSG:4547)" in result.output
    assert "difference 0.00000 %" in result.output
    assert result.output.rstrip().endswith(" (coordinates in EPSG:4490)")
    back = gpd.read_file(out) if suffix != ".csv" else None
    if back is not None:
        code_col = "code" if "code" in back.columns else "CODE"
        assert back[code_col].astype(str).str.len().eq(15).all()
        assert back[code_col].astype(str).str[:12].isin(COMMUNITIES).all()
        assert back.crs.to_epsg() == (4326 if suffix == ".geojson" else 4490)  # GeoJSON reads as RFC 7946 lon/lat


def test_grids_make_writes_the_coordinates_out_crs_asks_for(tmp_path: Path) -> None:
    """review32 D6: --crs is the CRS the cells are cut in; --out-crs the one the file holds, checked as an export's."""
    src = write_small_district(tmp_path)
    out = tmp_path / "cells.gpkg"
    args = ["grids", "make", str(src), "--out", str(out), "--out-crs", "EPSG:4547"]
    result = runner.invoke(app, args, env={"GISGRID_DATABASE_URL": ""})
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"wrote {out} (coordinates in EPSG:4547)")
    back = gpd.read_file(out)
    assert back.crs.to_epsg() == 4547 and back.total_bounds[0] > 1000  # metres
    refused = runner.invoke(app, [*args[:-1], "EPSG:3857"], env={"GISGRID_DATABASE_URL": ""})
    assert refused.exit_code == 1 and "3857" in str(refused.exception or refused.output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cell-area", "1"], "--cell-area 1 m² is out of range"),
        (["--cell-area", "10000000"], "--cell-area 10,000,000 m² is out of range"),
        (["--crs", "EPSG:4326"], "geographic"),
        (["--crs", "EPSG:4554"], "outside"),
        (["--sliver", "1"], "--sliver 1.0 is out of range; use a fraction of the cell area from 0"),  # review25 U4
        (["--sliver", "-0.1"], "--sliver -0.1 is out of range"),
    ],
)
def test_grids_make_refusals_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    src = write_small_district(tmp_path)
    out = tmp_path / "cells.gpkg"
    r = subprocess.run(
        [sys.executable, "-m", "gisgrid", "grids", "make", str(src), "--out", str(out), *args],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert message in r.stderr.lower()
    assert not out.exists()


def test_boundaries_import_dry_run_via_cli(clean_db: Engine, settings: Settings, tmp_path: Path) -> None:
    src = write_small_district(tmp_path)
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    result = runner.invoke(app, ["boundaries", "import", str(src), "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert "read 6 units: 1 district, 2 street, 3 community" in result.output
    assert "dry run: nothing written" in result.output
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM admin_units")).scalar_one() == 0

    stored = runner.invoke(app, ["boundaries", "import", str(src)], env=env)
    assert stored.exit_code == 0 and "stored: 6 inserted, 0 updated" in stored.output
    generated = runner.invoke(app, ["grids", "generate"], env=env)
    assert generated.exit_code == 0 and "unit grids for 3 units (EPSG:4547)" in generated.output
    # A first cut issues every code (test_code_stability: what a regeneration keeps, issues and retires).
    assert (
        "单元网格编码:沿用 0 个,恢复 0 个,新编 96 个(419902001001001、419902001001002、419902001001003、"
        "419902001001004、419902001001005等,另 91 个),停用 0 个 / unit-grid codes: kept 0, restored 0, newly issued "
        "96 (419902001001001, "
        "419902001001002, 419902001001003, 419902001001004, 419902001001005 and 91 more), retired 0\n"
    ) in generated.output
    again = runner.invoke(app, ["grids", "generate"], env=env)
    assert (
        "单元网格编码:沿用 96 个,恢复 0 个,新编 0 个,停用 0 个 / unit-grid codes: kept 96, restored 0, newly issued 0, "
        "retired 0\n"
    ) in again.output
    tiers = runner.invoke(app, ["grids", "tiers", "--target-size", "20"], env=env)
    assert tiers.exit_code == 0 and "tier 1: 2 streets, tier 2: 3 communities" in tiers.output


def test_cases_from_the_command_line(
    clean_db: Engine,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gisgrid.boundaries import BoundaryOptions
    from gisgrid.grids import workflows
    from tests.test_components_store import inside_points

    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    workflows.generate_grids(clean_db)
    xs, ys = inside_points(1, seed=4)
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    report = ["cases", "report", "--class", "06010", "--lon", str(xs[0]), "--lat", str(ys[0])]
    report += ["--datum", "cgcs2000", "--key", "cli-1"]
    r = runner.invoke(app, report, env=env)
    assert r.exit_code == 0, r.output
    assert "created: case" in r.output
    again = runner.invoke(app, report, env=env)  # a retry with the same key
    assert "already reported (same key)" in again.output
    with clean_db.connect() as conn:
        case_id = conn.execute(text("SELECT id FROM cases")).scalar_one()
    done = runner.invoke(
        app,
        ["cases", "act", str(case_id), "verify", "--role", "supervisor", "--actor", "王伟", "--version", "1"],
        env=env,
    )
    assert done.exit_code == 0 and "核实 (verified), version 2" in done.output
    listed = runner.invoke(app, ["cases", "list", "--state", "verified"], env=env)
    assert "1 case(s)" in listed.output
    # closing a verified case is refused as gisgrid prints it: exit 1, one line naming the state and the states
    # 结案 is allowed from, the database left as it was
    close = ["cases", "act", str(case_id), "close", "--role", "shift_lead", "--actor", "x", "--version", "2"]
    assert run_main(monkeypatch, capsys, *close, **env) == (
        1,
        "error: 案件当前为「已核实(待立案)」,不能办理「结案」(可办理的状态:已核查(待结案)) / close is not allowed in "
        "state 'verified' (核实); allowed from: checked\n",
    )
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT state, version FROM cases")).one() == ("verified", 2)


def test_serve_listens_with_tcp_nodelay_ready_socket_and_names_a_busy_port() -> None:
    import socket

    from gisgrid.cli.serve import listen
    from gisgrid.errors import ConfigError

    sock = listen("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY on accepted connections only when the listener's proto is IPPROTO_TCP
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
        port = sock.getsockname()[1]
        sock.listen()
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            listen("127.0.0.1", port)
    finally:
        sock.close()


def test_the_services_own_warnings_reach_the_user_as_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not Python's ``file.py:249: CalendarYearUnknown: …`` followed by a line of source code."""
    import gisgrid.cli
    from gisgrid.calendar import CalendarYearUnknown
    from gisgrid.cli import _one_line_warning

    passed_on: list[tuple] = []
    monkeypatch.setattr(gisgrid.cli, "_python_showwarning", lambda *a, **k: passed_on.append(a))

    _one_line_warning(CalendarYearUnknown("chinesecalendar has no holiday data for 2027"), CalendarYearUnknown,
                      "/x/gisgrid/evaluation.py", 249)  # fmt: skip
    assert capsys.readouterr().err == "warning: chinesecalendar has no holiday data for 2027\n"
    other = UserWarning("other")
    _one_line_warning(other, UserWarning, "/x/lib.py", 7)
    assert passed_on == [(other, UserWarning, "/x/lib.py", 7)] and capsys.readouterr().err == ""  # as Python does


def test_grids_make_reads_a_legacy_gbk_shapefile_and_src_encoding_overrides(tmp_path: Path) -> None:
    src = legacy_gbk_shapefile(small_district().rename(columns={"parent_code": "parent"}), tmp_path / "legacy.shp")
    out = tmp_path / "cells.gpkg"
    env = {"GISGRID_DATABASE_URL": ""}
    result = runner.invoke(app, ["grids", "make", str(src), "--out", str(out), "--parent-field", "parent"], env=env)
    assert result.exit_code == 0, result.output
    assert "warning: legacy.shp: no .cpg and no language driver: read as GB18030 (not UTF-8)" in result.output
    names = gpd.read_file(out).drop_duplicates("community_code").sort_values("community_code")
    assert names["community_name"].tolist() == ["桃园社区", "紫荆社区", "东明社区"]
    assert set(names["district_name"]) == {"测试区"}
    args = ["grids", "make", str(src), "--out", str(out), "--parent-field", "parent", "--src-encoding", "gbk"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "GB18030" not in result.output
    assert sorted(set(gpd.read_file(out)["street_name"])) == sorted(["西城街道", "东关街道"])


def test_demo_load_help_says_all_it_loads_and_how_to_change_the_amounts() -> None:
    """Review 26 D6: the help names the components and the simulated case record, with the options to change them."""
    result = runner.invoke(app, ["demo", "load", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "a synthetic component registry (--components, default 20,000)" in said
    assert "a simulated case record of the last 60 days (--history-days; about 8,600 cases" in said
    assert "--history-days" in said and "0: none" in said


def test_cases_list_help_names_every_order() -> None:
    """review44 D8: the group's line for ``list`` said "newest first unless --sort updated", with no ``due``."""
    group = runner.invoke(app, ["cases", "--help"], env={"COLUMNS": "200"})
    assert group.exit_code == 0, group.output
    assert "List cases, newest first unless --sort updated or due" in " ".join(group.output.split())
    listed = runner.invoke(app, ["cases", "list", "--help"], env={"COLUMNS": "200"})
    said = " ".join(listed.output.split())
    assert "or due (running deadline first, then 挂账)" in said


def test_demo_load_takes_the_days_of_simulated_cases_and_refuses_a_negative_count(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gisgrid.cli import demo

    asked: list[dict] = []
    folders: list[Path] = []
    monkeypatch.setenv("GISGRID_DATA_DIR", str(tmp_path))

    class _Engine:
        url = make_url("postgresql://unused@localhost/demo_cli")

        def dispose(self) -> None:
            pass

    monkeypatch.setattr(demo, "prepare_database", lambda settings, echo, **_kw: "postgresql://unused")
    monkeypatch.setattr(demo, "make_engine", lambda url: _Engine())
    monkeypatch.setattr(
        demo, "load_demo", lambda engine, folder, **kw: folders.append(folder) or asked.append(kw) or "loaded"
    )
    result = runner.invoke(app, ["demo", "load", "--history-days", "0", "--components", "0"])
    assert result.exit_code == 0, result.output
    assert (asked[0]["history_days"], asked[0]["components"]) == (0, 0)
    assert folders[0] == tmp_path / "demo" / "demo_cli"  # one folder per database
    result = runner.invoke(app, ["demo", "load"])
    assert (asked[1]["history_days"], asked[1]["components"]) == (60, 20_000)
    for option in ("--history-days", "--components"):
        result = runner.invoke(app, ["demo", "load", option, "-1"], env={"COLUMNS": "200"})
        assert result.exit_code == 2 and len(asked) == 2
        said = " ".join(result.output.split())
        assert f"Invalid value for '{option}': -1 is not in the range x>=0." in said, said


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        ("113,34,114", "范围须为四个以逗号分隔的数字 / --bbox: expected 4 numbers, got 3"),
        ("a,b,c,d", "范围须为四个以逗号分隔的数字 / --bbox: 'a,b,c,d' is not four comma-separated numbers"),
        (
            "114,35,113,34",
            "范围超出经纬度界限或最小最大值颠倒 / --bbox: need minLon < maxLon within ±180 and minLat < maxLat "
            "within ±90",
        ),
    ],
)
def test_components_list_refuses_a_bad_bbox_before_the_database(tmp_path: Path, bbox: str, message: str) -> None:
    """``components list --bbox`` was split unchecked: text ended in a float() traceback, three numbers reached the
    query (a zip() traceback there). Now parsed as the API and ``cases list`` parse it, before any database."""
    env = {
        **os.environ,
        "GISGRID_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "GISGRID_DATA_DIR": str(tmp_path),
    }
    r = subprocess.run(
        [sys.executable, "-m", "gisgrid", "components", "list", "--bbox", bbox], capture_output=True, text=True, env=env
    )
    assert (r.returncode, r.stderr, r.stdout) == (1, f"error: {message}\n", "")


def test_recompute_deadlines_offers_and_takes_text_or_json_only() -> None:
    """review58 M6: --help offered geojson, which was then refused with exit 1; a value it does not take is a
    command-line error (exit 2, before any database), as every other command's."""
    shown = runner.invoke(app, ["cases", "recompute-deadlines", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "<text|json>" in shown.output and "geojson" not in shown.output
    refused = runner.invoke(app, ["cases", "recompute-deadlines", "--format", "geojson"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2
    assert "Invalid value for '--format': 'geojson' is not one of 'text', 'json'." in refused.output
