"""Benchmark: sustained HTTP intake over the demo district holding N components, beside a bare insert endpoint.

    .venv/bin/python scripts/bench/intake.py [--components 1000000] [--clients 16] [--seconds 20]

Sets up a throwaway database (Z区 + N synthetic components), then for each side starts the server as
``gisgrid serve --workers 2`` does (uvicorn workers sharing one TCP_NODELAY socket) and
drives it with concurrent HTTP clients for ``--seconds``:
- gisgrid ``POST /cases``: datum conversion, locate to the unit grid and tiers, nearest component of the implied
  class within 30 m, possible duplicates, routing with explanation, working-time deadline, case number,
  transition log — one transaction;
- bare ``POST /bare`` (scripts/bench/bare_app.py): the same JSON inserted as one row (the ceiling).
Prints reports/s and p50/p95 latency of each and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_database, describe, free_port, mark_loaded, reused, start_server

from gisgrid.demo import demo_components_points, make_demo_district

CLASSES = ["06010", "06012", "09009", "01037", "03005", "06001"]  # 01037/03005 link to components


async def drive(url: str, points: np.ndarray, clients: int, seconds: float) -> tuple[int, list[float], int]:
    import httpx2 as httpx

    run = uuid.uuid4().hex[:8]  # keys never repeat across runs (a repeat is answered 200 with the first case)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(timeout=30) as http:
            i = k
            while time.perf_counter() < stop:
                x, y = points[i % len(points)]
                body = {
                    "class_code": CLASSES[i % len(CLASSES)],
                    "lon": float(x),
                    "lat": float(y),
                    "datum": "cgcs2000",
                    "description": "bench",
                    "source": "patrol",
                }
                t0 = time.perf_counter()
                r = await http.post(url, json=body, headers={"Idempotency-Key": f"b{run}-{k}-{i}"})
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 201:
                    errors += 1
                    if errors <= 3:
                        print(f"  refused: HTTP {r.status_code} {r.text[:300]}")
                i += clients

    await asyncio.gather(*(client(k) for k in range(clients)))
    return len(latencies), latencies, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--components", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (gisgrid serve --workers)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gisgrid-intake-"))
    district = make_demo_district()
    with bench_database("gisgrid_bench_intake", folder=tmp) as (engine, url):
        if reused(engine):  # a kept database (GISGRID_BENCH_REUSE=1): only the reports of the last run go
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE cases, case_transitions, case_photos, case_documents, bench_bare CASCADE"))
        else:
            lon, lat = demo_components_points(args.components, 3, district)
            classes = np.random.default_rng(3).choice(["01037", "03005", "01001", "01004", "02014", "04002"], len(lon))
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE _pts (lon float8, lat float8, cls text)"))
                raw = conn.connection.dbapi_connection
                import io

                buf = io.StringIO("".join(f"{a},{b},{c}\n" for a, b, c in zip(lon, lat, classes, strict=True)))
                with raw.cursor() as cur:
                    cur.copy_expert("COPY _pts FROM STDIN WITH (FORMAT csv)", buf)
                conn.execute(
                    text(
                        "INSERT INTO departments (code, name) VALUES ('990000000000000012', '路灯管理处') "
                        "ON CONFLICT DO NOTHING"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO components (id, class_code, main_dept_code, district_code, geom) "
                        "SELECT '419901' || cls || lpad(row_number() OVER (PARTITION BY cls)::text, 6, '0'), cls, "
                        "'990000000000000012', '419901', ST_SetSRID(ST_MakePoint(lon, lat), 4490) FROM _pts"
                    )
                )
                conn.execute(text("DROP TABLE _pts"))
                conn.execute(
                    text(
                        "CREATE TABLE bench_bare (id bigserial PRIMARY KEY, payload jsonb, "
                        "geom geometry(Point, 4490), created_at timestamptz DEFAULT now())"
                    )
                )
                conn.execute(text("CREATE INDEX ON bench_bare USING gist (geom)"))
            mark_loaded(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Outside a transaction (inside, the statistics were rolled back), and VACUUM too: otherwise autovacuum
            # takes on the million fresh rows in the middle of the first side's run.
            conn.execute(text("VACUUM ANALYZE"))
            n_comp = conn.execute(text("SELECT count(*) FROM components")).scalar_one()
        pts = np.column_stack(demo_components_points(50_000, 11, district))
        url_s = url.render_as_string(hide_password=False)
        results = {}
        cpu: dict[str, dict[str, float]] = {}
        for name, app, path in (
            ("gisgrid POST /cases", "api.main:create_app", "/cases"),
            ("bare insert POST /bare", "bare_app:app", "/bare"),
        ):
            port = free_port()
            proc = start_server(app, port, args.workers, GISGRID_DATABASE_URL=url_s, GISGRID_DATA_DIR=str(tmp))
            try:
                asyncio.run(drive(f"http://127.0.0.1:{port}{path}", pts[:100], 4, 2))  # warm-up
                before = cpu_by_side(proc.pid, url.database or "")
                n, lat_ms, errors = asyncio.run(
                    drive(f"http://127.0.0.1:{port}{path}", pts, args.clients, args.seconds)
                )
                spent = {k: v - before[k] for k, v in cpu_by_side(proc.pid, url.database or "").items()}
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            results[name] = (n / args.seconds, lat_ms, errors)
            cpu[name] = {k: v / max(n, 1) * 1000 for k, v in spent.items()}
        with engine.connect() as conn:
            cases = conn.execute(
                text(
                    "SELECT count(*), count(component_id), count(*) FILTER (WHERE "
                    "jsonb_array_length(routing->'duplicates') > 0) FROM cases"
                )
            ).one()
    print(f"demo district Z区 with {n_comp} components; {args.clients} concurrent clients, {args.seconds:.0f} s each")
    for name, (rate, lat_ms, errors) in results.items():
        print(f"{name:<24}: {rate:7.1f} reports/s, {describe(lat_ms)}, errors {errors}")
    ratio = results["gisgrid POST /cases"][0] / results["bare insert POST /bare"][0]
    print(f"ratio gisgrid / bare     : {ratio:.2f}   (goals: ≥ 500 reports/s, p95 ≤ 100 ms, ≥ 0.5× the bare endpoint)")
    print(f"cases stored: {cases[0]}, linked to a component: {cases[1]}, with possible duplicates listed: {cases[2]}")
    print("CPU per report (ms; the 2 cores are shared by all three):")
    for name, sides in cpu.items():
        print(f"  {name:<24}: " + ", ".join(f"{k} {v:.2f}" for k, v in sides.items()))


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _other_database(pid: int, database: str) -> bool:
    """A PostgreSQL backend serving another database (``postgres: user db host(port) …``), not this benchmark's."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return len(words) >= 4 and words[0] == "postgres:" and "(" in words[3] and words[2] != database


def cpu_by_side(server_pid: int, database: str) -> dict[str, float]:
    """CPU seconds so far of the HTTP clients (this process), the server (its process tree) and PostgreSQL (the
    backends of ``database`` and the shared background processes: WAL writer, checkpointer …)."""
    server, postgres = 0.0, 0.0
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().split(" (", 1)[1].rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        pid, ppid = int(stat.parent.name), int(rest.split()[1])
        children.setdefault(ppid, []).append(pid)
        if name == "postgres" and not _other_database(pid, database):
            postgres += _cpu_seconds(pid)
    todo = [server_pid]
    while todo:
        pid = todo.pop()
        server += _cpu_seconds(pid)
        todo.extend(children.get(pid, []))
    own = time.process_time()
    return {"clients": own, "server": server, "PostgreSQL": postgres}


if __name__ == "__main__":
    main()
