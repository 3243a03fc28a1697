"""Configuration, read from ``GISGRID_*`` environment variables (and ``.env``).

One ``Settings`` object is built at the edge (CLI entry, app factory, test fixture) and passed in;
nothing reads the environment at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Storage CRS for all geometry: CGCS2000 geographic (lon/lat). See docs/architecture.md.
STORAGE_SRID = 4490


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GISGRID_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an existing PostGIS server. Unset: the embedded cluster is used.",
    )
    data_dir: Path = Field(default=Path(".gisgrid"), description="Folder for the embedded cluster and state.")
    db_name: str = Field(default="gisgrid", description="Database name inside the embedded cluster.")
    db_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of the embedded cluster; unset picks a free one."
    )
    pg_bindir: Path | None = Field(default=None, description="PostgreSQL binaries folder; unset: auto-detect.")
    catalogue_dir: Path = Field(default=PROJECT_ROOT / "data", description="Catalogues and rules (data/).")
    catalogue_extra: list[Path] = Field(
        default_factory=list,
        description="City files extending/overriding the catalogues, e.g. GISGRID_CATALOGUE_EXTRA='[\"local.csv\"]'",
    )
    working_hours: str = Field(
        default="08:30-12:00,13:30-17:30", description="Working periods of a working day (工作时), local time"
    )
    calendar_file: Path | None = Field(
        default=None,
        description="CSV date,kind (休息日/holiday, 上班日/workday): the city's own days; a year listed is taken as "
        "fully described (e.g. next year's holidays before chinesecalendar has them)",
    )
    basemap_url: str | None = Field(
        default=None, description="Local XYZ basemap for the console, e.g. /basemap/{z}/{x}/{y}.png (default: none)"
    )
    basemap_attribution: str | None = Field(default=None, description="Attribution shown for that basemap")
    basemap_subdomains: str | None = Field(default=None, description="Values of {s} in the basemap URL (default abc)")
    basemap_datum: Literal["cgcs2000", "wgs84", "gcj02"] = Field(
        default="cgcs2000", description="Datum of the basemap tiles; gcj02 (AMap, Tencent) shifts it under the overlays"
    )
    tianditu_token: str | None = Field(
        default=None, description="天地图 Tianditu key: its vector basemap and labels when no basemap URL is set"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    db_pool_size: int = Field(
        default=16,
        ge=1,
        le=100,
        description="Database connections each server process keeps open per pool (as many again in bursts); "
        "below the concurrent requests a process serves, connections are opened and closed on every burst",
    )
    max_json_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Largest JSON request body in bytes (default 1 MB); larger ones get 413 before they are read. "
        "Photo forms have their own limit (10 photos of 15 MB)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from a browser (CORS), comma-separated, e.g. "
        "https://app.example.cn; '*' for any. Default none: same origin only",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: object) -> object:
        # Comma-separated in the environment (a JSON list works too); an origin has no path, so no trailing /.
        if isinstance(v, str):
            v = json.loads(v) if v.strip().startswith("[") else v.split(",")
        if isinstance(v, list):
            return [o.strip().rstrip("/") for o in v if isinstance(o, str) and o.strip()]
        return v

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        # Plain libpq-style URLs are accepted; the project's driver is psycopg2.
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        return v

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()


def catalogue_folder(settings_or_dir: Settings | Path | str, marker: str) -> Path:
    """The folder of the catalogue CSVs: ``data/catalogue`` under ``Settings.catalogue_dir``; a path given
    directly may be ``data/`` or ``data/catalogue/`` itself (the one holding ``marker``, a file every
    catalogue folder has)."""
    if isinstance(settings_or_dir, Settings):
        return Path(settings_or_dir.catalogue_dir) / "catalogue"
    base = Path(settings_or_dir)
    return base if (base / marker).exists() else base / "catalogue"
