"""The documented exit codes as a shell script sees them: the installed command run in its own process.

``CliRunner`` runs click in standalone mode and so cannot see what ``gisgrid.cli.main`` does with the code a
``typer.Exit`` carries; these tests run ``python -m gisgrid`` (the same ``main`` as the console script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text

from gisgrid.settings import Settings
from tests.test_components_store import LAMP, inside_points


def gisgrid(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        GISGRID_DATABASE_URL=settings.database_url or "",
        GISGRID_DATA_DIR=str(tmp_path / "data"),
    )
    return subprocess.run(
        [sys.executable, "-m", "gisgrid", *args], capture_output=True, text=True, env=env, timeout=120
    )


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_components_import_all_or_nothing_with_a_refusal_exits_1(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    xs, ys = inside_points(2)
    src = tmp_path / "c.csv"
    pd.DataFrame(
        [{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}, {"class_code": "01999", "lon": xs[1], "lat": ys[1]}]
    ).to_csv(src, index=False)
    r = gisgrid(settings, tmp_path, "components", "import", str(src), "--all-or-nothing")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "read 2, inserted 0, updated 0, unchanged 0, refused 1" in r.stdout
    assert "nothing written" in r.stdout
    assert count(loaded, "components") == 0


def test_components_import_that_writes_exits_0(loaded: Engine, settings: Settings, tmp_path: Path) -> None:
    xs, ys = inside_points(1)
    src = tmp_path / "c.csv"
    pd.DataFrame([{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}]).to_csv(src, index=False)
    r = gisgrid(settings, tmp_path, "components", "import", str(src))
    assert r.returncode == 0, r.stdout + r.stderr
    # review38 U12: the summary is the first line (no empty line from the progress bar), and all of stdout
    assert r.stdout == "read 1, inserted 1, updated 0, unchanged 0, refused 0\ngenerated 1 identifiers\n"
    assert count(loaded, "components") == 1


def test_components_import_with_some_rows_refused_exits_3(loaded: Engine, settings: Settings, tmp_path: Path) -> None:
    """review42 U3: a partial import (rows written, others refused) is told apart from a clean one (0) and from a
    refused file (1) — also in a dry run, which would write the same."""
    xs, ys = inside_points(2)
    src = tmp_path / "c.csv"
    pd.DataFrame(
        [{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}, {"class_code": "01999", "lon": xs[1], "lat": ys[1]}]
    ).to_csv(src, index=False)
    r = gisgrid(settings, tmp_path, "components", "import", str(src), "--dry-run")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "read 2, would insert 1, would update 0, unchanged 0, refused 1" in r.stdout
    assert count(loaded, "components") == 0
    r = gisgrid(settings, tmp_path, "components", "import", str(src))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "read 2, inserted 1, updated 0, unchanged 0, refused 1" in r.stdout
    assert count(loaded, "components") == 1


def test_a_mistyped_option_exits_2_and_is_never_taken_for_a_partial_import(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """left22: 2 is click's usage error — the command line was wrong and nothing ran —, so a partial import is 3;
    a script reading 2 as "some rows imported" would have believed a file loaded that was never read."""
    xs, ys = inside_points(1)
    src = tmp_path / "c.csv"
    pd.DataFrame([{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}]).to_csv(src, index=False)
    r = gisgrid(settings, tmp_path, "components", "import", str(src), "--dry-rn")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "No such option: --dry-rn" in r.stderr, r.stderr
    assert count(loaded, "components") == 0
    r = gisgrid(settings, tmp_path, "cases", "import-history", str(src), "--all-or-nuthing")
    assert r.returncode == 2, r.stdout + r.stderr
    assert count(loaded, "cases") == 0


def test_components_import_of_a_row_with_a_cell_too_many_is_one_line(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review42 U2: not pandas' tokenizer text (newline and all); the row refusal's words, zh-CN first."""
    xs, ys = inside_points(5)
    rows = [f"{LAMP},{x},{y},路灯,备注" for x, y in zip(xs, ys, strict=True)]
    rows[4] += ",多余"
    src = tmp_path / "c1.csv"
    src.write_text("class_code,lon,lat,name,note\n" + "\n".join(rows) + "\n", encoding="utf-8")
    r = gisgrid(settings, tmp_path, "components", "import", str(src))
    assert (r.returncode, r.stdout) == (1, ""), r.stderr
    assert r.stderr == f"error: {src}: 第 6 行有 6 列,表头只有 5 列 / line 6 has 6 cells, the header 5\n"
    # In the first row pandas raised nothing: it took the extra cell for the row labels and shifted every column.
    rows[0] += ",多余"
    src.write_text("class_code,lon,lat,name,note\n" + "\n".join(rows[:4]) + "\n", encoding="utf-8")
    r = gisgrid(settings, tmp_path, "components", "import", str(src))
    assert (r.returncode, r.stdout) == (1, ""), r.stderr
    assert r.stderr == f"error: {src}: 第 2 行有 6 列,表头只有 5 列 / line 2 has 6 cells, the header 5\n"
    assert count(loaded, "components") == 0


def test_components_import_of_metres_without_a_crs_is_refused_once(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review38 U2: one line for the file, with --src-crs, as the boundary import says it; not one per row."""
    src = tmp_path / "noprj.csv"
    src.write_text("class_code,PointX,PointY\n01037,471600.0,3845000.0\n01037,471650.0,3845050.0\n", encoding="utf-8")
    r = gisgrid(settings, tmp_path, "components", "import", str(src), "--errors", str(tmp_path / "refused.csv"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout == ""
    assert r.stderr == (
        f"error: {src}: the file has no CRS and its coordinates are not lon/lat (bounds [471600.0, 3845000.0, "
        "471650.0, 3845050.0]); pass --src-crs, e.g. EPSG:4547 (CGCS2000 3° GK CM 114E) or EPSG:4548 (CM 117E)\n"
    )
    assert not (tmp_path / "refused.csv").exists()
    assert count(loaded, "components") == 0


def test_history_import_with_every_row_refused_exits_1(loaded: Engine, settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "h.csv"
    src.write_text(
        "case_no,class_code,lon,lat,source,state,at\nX1,06010,113.7,34.75,patrol,bogus,2025-09-01T09:00:00+08:00\n",
        encoding="utf-8",
    )
    r = gisgrid(settings, tmp_path, "cases", "import-history", str(src))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "read 1 rows (1 cases): imported 0 cases (0 transitions), refused 1 rows (1 cases)" in r.stdout
    assert count(loaded, "cases") == 0


def test_history_import_with_some_cases_refused_exits_3(loaded: Engine, settings: Settings, tmp_path: Path) -> None:
    """review44 D2: as components import, a partial history import (cases written, others refused) exits 3 — told
    apart from a clean one (0) and from nothing imported (1) —, in a dry run too."""
    sample = Path(__file__).resolve().parents[1] / "data" / "demo" / "history-sample.csv"
    clean = gisgrid(settings, tmp_path, "cases", "import-history", str(sample), "--dry-run")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "refused 0 rows (0 cases)\ndry run: 4 cases" in clean.stdout, clean.stdout
    src = tmp_path / "h.csv"
    text_ = sample.read_text(encoding="utf-8")
    assert text_.count("2025000104,,,,,,,rejected,") == 1
    src.write_text(text_.replace("2025000104,,,,,,,rejected,", "2025000104,,,,,,,bogus,"), encoding="utf-8")
    r = gisgrid(settings, tmp_path, "cases", "import-history", str(src), "--dry-run")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "(1 cases)\ndry run: 3 cases" in r.stdout, r.stdout
    r = gisgrid(settings, tmp_path, "cases", "import-history", str(src), "--all-or-nothing")
    assert r.returncode == 1, r.stdout + r.stderr
    assert count(loaded, "cases") == 0
    r = gisgrid(settings, tmp_path, "cases", "import-history", str(src))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "read 28 rows (4 cases): imported 3 cases" in r.stdout, r.stdout
    assert count(loaded, "cases") == 3


def test_components_import_with_every_row_refused_exits_1(loaded: Engine, settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    pd.DataFrame([{"class_code": "01999", "lon": 113.7, "lat": 34.75}]).to_csv(src, index=False)
    r = gisgrid(settings, tmp_path, "components", "import", str(src))
    assert r.returncode == 1, r.stdout + r.stderr  # as cases import-history: nothing imported is a failure
    assert "read 1, inserted 0, updated 0, unchanged 0, refused 1" in r.stdout
    assert count(loaded, "components") == 0


def test_a_refused_recode_exits_3_naming_code_and_reason(loaded: Engine, settings: Settings, tmp_path: Path) -> None:
    r = gisgrid(settings, tmp_path, "boundaries", "recode", "419902001001", "419902001005")
    assert (r.returncode, r.stdout) == (3, ""), r.stderr
    assert r.stderr.startswith(
        "error [code_not_provisional]: recode 419902001001 → 419902001005 refused: 419902001001 (桃园社区, community) "
        "is not a 临时编码 provisional code"
    ), r.stderr
    assert count(loaded, "admin_units") == 6


def test_cases_list_with_a_malformed_class_exits_1_as_the_api_refuses_it(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    r = gisgrid(settings, tmp_path, "cases", "list", "--class", "abc")
    assert r.returncode == 1, r.stdout + r.stderr
    # zh-CN first: the reason's text (messages_zh.csv, as the API and the pages word it) before the English
    assert r.stderr == "error: 格式不正确 / class_code: an event class code has 4 or 5 digits, got 'abc'\n"
    assert r.stdout == ""


def test_a_refused_boundaries_remove_exits_3_and_a_file_replace_cannot_read_exits_1(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """left46 item 3: a refused edit of one unit is a recode's exit 3 (nothing written); an unreadable file, an
    import's exit 1."""
    r = gisgrid(settings, tmp_path, "boundaries", "remove", "419902002001")
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.startswith("error [unit_in_use]: remove 419902002001 refused: 社区 419902002001 东明社区 仍被引用")
    assert count(loaded, "admin_units") == 6
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    r = gisgrid(settings, tmp_path, "boundaries", "replace", "419902002001", str(empty))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith("error: ") and "no features" in r.stderr
