"""The ceiling for the intake benchmark: an endpoint on the same stack (FastAPI + uvicorn + SQLAlchemy +
PostGIS) that only inserts the report as a row — no locating, routing, duplicates, deadlines or log — as lean as
the stack allows: one autocommit INSERT on a pool sized like the app's."""

from __future__ import annotations

import json
import os

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from gisgrid.settings import Settings
from gisgrid.storage.database import make_engine

size = Settings().db_pool_size
engine = make_engine(
    os.environ["GISGRID_DATABASE_URL"], pool_size=size, max_overflow=size, isolation_level="AUTOCOMMIT"
)
app = FastAPI()


class Report(BaseModel):
    class_code: str
    lon: float
    lat: float
    datum: str = "wgs84"
    description: str | None = None
    source: str = "patrol"


@app.post("/bare", status_code=201)
def bare(body: Report) -> dict[str, int]:
    with engine.connect() as conn:
        new_id = conn.execute(
            text(
                "INSERT INTO bench_bare (payload, geom) VALUES (CAST(:p AS jsonb), "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4490)) RETURNING id"
            ),
            {"p": json.dumps(body.model_dump(), ensure_ascii=False), "x": body.lon, "y": body.lat},
        ).scalar_one()
    return {"id": int(new_id)}
