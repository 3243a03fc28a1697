"""The ceiling for the intake benchmark: an endpoint on the same stack as ``POST /cases`` (FastAPI + uvicorn, an
asyncpg pool sized like the app's intake pool, PostGIS) that only inserts the report as a row — no locating,
routing, duplicates, deadlines or log — as lean as the stack allows: one autocommit INSERT, no thread hop."""

from __future__ import annotations

import json
import os

from fastapi import FastAPI, Request
from pydantic import BaseModel

from api.deps import AsyncPool
from gisgrid.constants import STORAGE_SRID
from gisgrid.settings import Settings
from gisgrid.storage.database import parse_url

app = FastAPI()
app.state.pool = AsyncPool(
    parse_url(os.environ["GISGRID_DATABASE_URL"]),
    Settings().db_pool_size,
    application_name="gisgrid-bench-bare",
    server_settings={},
)


class Report(BaseModel):
    class_code: str
    lon: float
    lat: float
    datum: str = "wgs84"
    description: str | None = None
    source: str = "patrol"


@app.post("/bare", status_code=201)
async def bare(body: Report, request: Request) -> dict[str, int]:
    pool = await request.app.state.pool.get()
    new_id = await pool.fetchval(
        f"INSERT INTO bench_bare (payload, geom) VALUES ($1::jsonb, ST_SetSRID(ST_MakePoint($2, $3), {STORAGE_SRID})) "
        "RETURNING id",
        json.dumps(body.model_dump(), ensure_ascii=False),
        body.lon,
        body.lat,
    )
    return {"id": int(new_id)}
