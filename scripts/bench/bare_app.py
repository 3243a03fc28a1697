"""The ceiling for the intake benchmark: an endpoint on the same stack (FastAPI + uvicorn + SQLAlchemy +
PostGIS) that only inserts the report as a row — no locating, routing, duplicates, deadlines or log."""

from __future__ import annotations

import json
import os

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from gisgrid.storage.database import make_engine

engine = make_engine(os.environ["GISGRID_DATABASE_URL"], pool_size=10, max_overflow=20)
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
    with engine.begin() as conn:
        new_id = conn.execute(
            text(
                "INSERT INTO bench_bare (payload, geom) VALUES (CAST(:p AS jsonb), "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4490)) RETURNING id"
            ),
            {"p": json.dumps(body.model_dump(), ensure_ascii=False), "x": body.lon, "y": body.lat},
        ).scalar_one()
    return {"id": int(new_id)}
