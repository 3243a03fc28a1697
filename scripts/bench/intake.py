"""Benchmark: sustained HTTP intake over the demo district holding N components, beside a bare insert endpoint.

    .venv/bin/python scripts/bench/intake.py [--components 1000000] [--clients 16] [--seconds 20] [--driver wrk]

Sets up a throwaway database (Z区 + N synthetic components), then for each side starts the server as
``gisgrid serve --workers 2`` does (uvicorn workers sharing one TCP_NODELAY socket) and
drives it with concurrent HTTP clients for ``--seconds``:
- gisgrid ``POST /cases``: datum conversion, locate to the unit grid and tiers, nearest component of the implied
  class within 30 m, possible duplicates, routing with explanation, working-time deadline, case number,
  transition log — one transaction;
- bare ``POST /bare`` (scripts/bench/bare_app.py): the same JSON inserted as one row (the ceiling).
Prints reports/s and p50/p95 latency of each and the ratio.

The load comes from ``wrk`` (Debian's package, installed when missing and root; ``scripts/bench/intake_wrk.lua``
makes each request) — a C load generator that leaves the two cores to the server and PostgreSQL — or, with
``--driver python``, from asyncio clients in this process (httpx), which take about as much CPU as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_database, free_port, mark_loaded, percentile, reused, start_server

from gisgrid.constants import STORAGE_SRID
from gisgrid.demo import demo_components_points, make_demo_district
from gisgrid.storage.database import psycopg2_connection

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
                r = await http.post(
                    url, json=body, headers={"Idempotency-Key": f"b{run}-{k}-{i}", "X-Role": "supervisor"}
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 201:
                    errors += 1
                    if errors <= 3:
                        print(f"  refused: HTTP {r.status_code} {r.text[:300]}")
                i += clients

    await asyncio.gather(*(client(k) for k in range(clients)))
    return len(latencies), latencies, errors


WRK_SCRIPT = Path(__file__).with_name("intake_wrk.lua")
WRK_THREADS = 2


def ensure_wrk() -> str | None:
    """``wrk``'s path, installing Debian's package when missing and root; None when it cannot be had."""
    if shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)  # stale package lists: refresh, retry
            subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False)
    return shutil.which("wrk")


@dataclass
class Load:
    """What one side's run measured."""

    requests: int
    refused: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    client_cpu_s: float


def drive_wrk(wrk: str, url: str, points: np.ndarray, clients: int, seconds: float, folder: Path) -> Load:
    points_file = folder / "points.csv"
    points_file.write_text("".join(f"{float(x)!r},{float(y)!r}\n" for x, y in points))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [
            wrk,
            "-t",
            str(WRK_THREADS),
            "-c",
            str(clients),
            "-d",
            f"{seconds:.0f}s",
            "--timeout",
            "30s",
            "-s",
            str(WRK_SCRIPT),
            url,
        ],
        env=dict(
            os.environ,
            POINTS_FILE=str(points_file),
            CLASSES=",".join(CLASSES),
            RUN_ID=uuid.uuid4().hex[:8],
            WRK_THREADS=str(WRK_THREADS),
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["refused"] or out["socket_errors"]:
        print(f"  refused: {out['refused']}, socket errors: {out['socket_errors']}; first: {out['sample']}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Load(
        out["requests"], out["refused"] + out["socket_errors"], out["p50_ms"], out["p95_ms"], out["mean_ms"], cpu
    )


def drive_python(url: str, points: np.ndarray, clients: int, seconds: float) -> Load:
    cpu = time.process_time()
    n, lat_ms, errors = asyncio.run(drive(url, points, clients, seconds))
    cpu = time.process_time() - cpu
    return Load(n, errors, percentile(lat_ms, 50), percentile(lat_ms, 95), statistics.fmean(lat_ms), cpu)


def main() -> None:  # noqa: PLR0915
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--components", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (gisgrid serve --workers)")
    ap.add_argument("--driver", choices=["wrk", "python"], default="wrk", help="load generator (default wrk)")
    args = ap.parse_args()
    wrk = ensure_wrk() if args.driver == "wrk" else None
    if args.driver == "wrk" and wrk is None:
        sys.exit("wrk is not installed (apt-get install wrk), or use --driver python")
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
                import io

                buf = io.StringIO("".join(f"{a},{b},{c}\n" for a, b, c in zip(lon, lat, classes, strict=True)))
                with psycopg2_connection(conn).cursor() as cur:
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
                        f"'990000000000000012', '419901', ST_SetSRID(ST_MakePoint(lon, lat), {STORAGE_SRID}) FROM _pts"
                    )
                )
                conn.execute(text("DROP TABLE _pts"))
                conn.execute(
                    text(
                        "CREATE TABLE bench_bare (id bigserial PRIMARY KEY, payload jsonb, "
                        f"geom geometry(Point, {STORAGE_SRID}), created_at timestamptz DEFAULT now())"
                    )
                )
                conn.execute(text("CREATE INDEX ON bench_bare USING gist (geom)"))
            mark_loaded(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Outside a transaction (inside, the statistics were rolled back), and VACUUM too: otherwise autovacuum
            # takes on the million fresh rows in the middle of the first side's run. Then CHECKPOINT: the pages
            # VACUUM dirtied are written now, not by the checkpointer during the first side's run.
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
            n_comp = conn.execute(text("SELECT count(*) FROM components")).scalar_one()
        pts = np.column_stack(demo_components_points(50_000, 11, district))
        url_s = url.render_as_string(hide_password=False)
        results: dict[str, Load] = {}
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
                target = f"http://127.0.0.1:{port}{path}"
                if wrk:
                    load = drive_wrk(wrk, target, pts, args.clients, args.seconds, tmp)
                else:
                    load = drive_python(target, pts, args.clients, args.seconds)
                spent = {k: v - before[k] for k, v in cpu_by_side(proc.pid, url.database or "").items()}
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            results[name] = load
            spent = {"clients": load.client_cpu_s, **spent}
            cpu[name] = {k: v / max(load.requests, 1) * 1000 for k, v in spent.items()}
        with engine.connect() as conn:
            cases = conn.execute(
                text(
                    "SELECT count(*), count(component_id), count(*) FILTER (WHERE "
                    "jsonb_array_length(routing->'duplicates') > 0) FROM cases"
                )
            ).one()
    print(
        f"demo district Z区 with {n_comp} components; {args.clients} concurrent clients ({args.driver}), "
        f"{args.seconds:.0f} s each"
    )
    for name, r in results.items():
        print(
            f"{name:<24}: {r.requests / args.seconds:7.1f} reports/s, p50 {r.p50_ms:.2f} ms, p95 {r.p95_ms:.2f} ms, "
            f"mean {r.mean_ms:.2f} ms (n={r.requests}), errors {r.refused}"
        )
    ratio = results["gisgrid POST /cases"].requests / results["bare insert POST /bare"].requests
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
    """CPU seconds so far of the server (its process tree) and PostgreSQL (the backends of ``database`` and the
    shared background processes: WAL writer, checkpointer …)."""
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
    return {"server": server, "PostgreSQL": postgres}


if __name__ == "__main__":
    main()
