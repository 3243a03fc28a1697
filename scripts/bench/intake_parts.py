"""Where one report's cost goes, part by part, on one asyncpg connection with no other load.

    GISGRID_BENCH_REUSE=1 .venv/bin/python scripts/bench/intake.py     # once: makes and keeps the database
    .venv/bin/python scripts/bench/intake_parts.py [--reports 2000]

Against the kept benchmark database (``gisgrid_bench_intake``: Z区 and 1,000,000 components) it files reports the
way ``POST /cases`` does, but one part at a time for all of them: the domain work in Python (draft, routing and
deadline, the answer and its JSON), the read statement, the write statement — each with the client's CPU and the
PostgreSQL backend's (from ``/proc``) — and a bare ``SELECT 1`` round trip for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import numpy as np
from sqlalchemy.engine import URL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REUSE_ENV, bench_database, reused

from gisgrid import case_intake
from gisgrid import cases as svc
from gisgrid.demo import demo_components_points, make_demo_district
from gisgrid.settings import Settings
from gisgrid.storage.database import asyncpg_connect_args
from gisgrid.storage.prepared import init_async_connection

CLASSES = ["06010", "06012", "09009", "01037", "03005", "06001"]  # as intake.py


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, clock ticks of 10 ms


async def measure(url: URL, services: svc.CaseServices, n: int) -> None:
    conn = await asyncpg.connect(**asyncpg_connect_args(url), server_settings=case_intake.INTAKE_SESSION_SETTINGS)
    await init_async_connection(conn)
    pid = conn.get_server_pid()
    pts = np.column_stack(demo_components_points(n + 200, 11, make_demo_district()))
    run = uuid.uuid4().hex[:8]
    items = [
        case_intake.Intake(
            class_code=CLASSES[i % len(CLASSES)],
            lon=float(x),
            lat=float(y),
            datum="cgcs2000",
            description="bench",
            source="patrol",
            reporter="bench",
            reporter_role="supervisor",
            idempotency_key=f"parts-{run}-{i}",
        )
        for i, (x, y) in enumerate(pts)
    ]
    for item in items[:200]:  # warm: plans, caches
        await case_intake.intake_async(conn, services, item)
    items = items[200:]
    now = svc.local_now(None)

    def per(seconds: float) -> str:
        return f"{seconds / n * 1000:.3f} ms"

    t = time.process_time()
    drafts = [case_intake._draft(services, item, now) for item in items]
    draft_cpu = time.process_time() - t
    c0, p0 = time.process_time(), backend_cpu(pid)
    reads = [(await case_intake._INTAKE_READ.rows_async(conn, d.read_params()))[0] for d in drafts]
    read_client, read_pg = time.process_time() - c0, backend_cpu(pid) - p0
    t = time.process_time()
    params = [case_intake._write_params(services, d, r, []) for d, r in zip(drafts, reads, strict=True)]
    route_cpu = time.process_time() - t
    c0, p0 = time.process_time(), backend_cpu(pid)
    rows = [await d.write.rows_async(conn, p) for d, p in zip(drafts, params, strict=True)]
    write_client, write_pg = time.process_time() - c0, backend_cpu(pid) - p0
    t = time.process_time()
    bodies = [json.dumps(svc.case_summary(services, r[0], role=None), ensure_ascii=False) for r in rows]
    answer_cpu = time.process_time() - t
    one = await conn.prepare("SELECT 1")
    c0, p0 = time.process_time(), backend_cpu(pid)
    for _ in range(n):
        await one.fetchval()
    rt_client, rt_pg = time.process_time() - c0, backend_cpu(pid) - p0
    await conn.close()
    print(f"{n} reports, one connection, no other load (per report):")
    size = len(bodies[0].encode())
    python = f"draft {per(draft_cpu)}, routing + deadline {per(route_cpu)}, answer + JSON {per(answer_cpu)}"
    print(f"  Python: {python} ({size} B)")
    print(f"  read statement : client CPU {per(read_client)}, PostgreSQL CPU {per(read_pg)}")
    print(f"  write statement: client CPU {per(write_client)}, PostgreSQL CPU {per(write_pg)}")
    print(f"  SELECT 1 round trip: client CPU {per(rt_client)}, PostgreSQL CPU {per(rt_pg)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=int, default=2000)
    args = ap.parse_args()
    os.environ[REUSE_ENV] = "1"  # the kept database of intake.py, never dropped here
    with bench_database("gisgrid_bench_intake") as (engine, url):
        if not reused(engine):
            sys.exit("run GISGRID_BENCH_REUSE=1 .venv/bin/python scripts/bench/intake.py first (it loads the database)")
        services = svc.load_services(Settings())
        asyncio.run(measure(url, services, args.reports))


if __name__ == "__main__":
    main()
