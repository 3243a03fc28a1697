"""``demo load`` writes its files per database: ``$GISGRID_DATA_DIR/demo/<database>/`` (review38 U15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gisgrid.cli import app
from gisgrid.demo_loader import demo_folder
from gisgrid.settings import Settings

runner = CliRunner()


@pytest.mark.parametrize(
    ("database", "folder"),
    [("gisgrid", "gisgrid"), ("rev38", "rev38"), ("网格_演示", "网格_演示"), ("a/../b", "a_.._b"), ("..", "__")],
)
def test_demo_folder_is_per_database_and_a_plain_name(tmp_path: Path, database: str, folder: str) -> None:
    assert demo_folder(tmp_path, database) == tmp_path / "demo" / folder


def test_demo_load_writes_into_the_folder_of_its_database(
    clean_db: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_load(engine: Engine, folder: Path, **_: Any) -> str:
        seen["folder"] = folder
        return "loaded"

    monkeypatch.setattr("gisgrid.cli.demo.load_demo", fake_load)
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path)}
    result = runner.invoke(app, ["demo", "load"], env=env)
    assert result.exit_code == 0, result.output
    database = make_url(settings.database_url or "").database
    assert database and database.startswith("gisgrid_test_")
    assert seen["folder"] == tmp_path / "demo" / database
