"""Small hand-made boundary sets for database tests (the demo district is used where size matters), and helpers
the tests share."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import socket
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry import Polygon
from sqlalchemy import Engine, text
from sqlalchemy import exc as sa_exc

METRIC = "EPSG:4547"  # CGCS2000 3° GK CM 114E
X0, Y0 = 470_000.0, 3_846_000.0  # near 113.68E 34.75N

DISTRICT = "419902"
#: The headers of a change to the component inventory (the API refuses it to other roles).
EDITOR = {"X-Actor": "li", "X-Role": "data_admin"}
STREETS = ("419902001", "419902002")
COMMUNITIES = ("419902001001", "419902001002", "419902002001")

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: Playwright's sync API (the browser tests) leaves an event loop
    running in the main thread, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextlib.contextmanager
def reserved_port(*, shared: bool = False) -> Iterator[socket.socket]:
    """A port held for the test: bound but not listening, so no other process on the machine gets it meanwhile (a
    port found free and released is free for anyone: the other xdist worker's live server, a new cluster or a
    client's ephemeral port could take it before the test dials it), and a connection to it is refused.

    ``shared``: with SO_REUSEADDR, so that a server that sets it too (uvicorn does) can still bind the port — the
    test then learns it did because this socket's ``listen`` fails. Without it (the default) nobody can bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if shared:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        yield s


#: CGCS2000's ellipsoid: areas expected of the service are measured on it with pyproj.Geod (Karney's algorithm),
#: independently of the equal-area projection the service measures in (gisgrid.geodesy.geodesic_areas).
GRS80 = pyproj.Geod(ellps="GRS80")
_METRIC_TO_LON_LAT = pyproj.Transformer.from_crs(METRIC, "EPSG:4490", always_xy=True)


def lon_lat(geom: Any) -> Any:
    """A geometry drawn in METRIC (``X0 + x, Y0 + y``) with its vertices in lon/lat, as ``to_crs(4490)`` writes the
    test files (the edges straight between them in lon/lat)."""
    return shapely.transform(geom, lambda xy: np.column_stack(_METRIC_TO_LON_LAT.transform(xy[:, 0], xy[:, 1])))


def ellipsoid_area_m2(geom: Any, *, geodesic_edges: bool = False) -> float:
    """The area (m²) on GRS80 of a lon/lat geometry: its edges straight in lon/lat, as the service takes stored
    boundaries (densified here to 1e-6° ≈ 0.1 m, so the geodesics between the points are those edges); or, with
    ``geodesic_edges``, as geodesics, as PostGIS's ``ST_Area(geography)`` takes them."""
    return abs(GRS80.geometry_area_perimeter(geom if geodesic_edges else shapely.segmentize(geom, 1e-6))[0])


def _m(coords: list[tuple[float, float]]) -> Polygon:
    return Polygon([(X0 + x, Y0 + y) for x, y in coords])


def small_district() -> gpd.GeoDataFrame:
    """A 1.2 km × 0.8 km district: street 1 (west, two communities with a jagged border), street 2 (east).

    Everything tiles exactly: communities tile streets, streets tile the district."""
    c1 = _m([(0, 0), (400, 0), (430, 350), (380, 800), (0, 800)])
    c2 = _m([(400, 0), (700, 0), (700, 800), (380, 800), (430, 350)])
    c3 = _m([(700, 0), (1200, 0), (1150, 520), (1200, 800), (700, 800)])
    s1 = shapely.union(c1, c2)
    district = shapely.union(s1, c3)
    rows = [
        (DISTRICT, "测试区", "district", None, district),
        (STREETS[0], "西城街道", "street", DISTRICT, s1),
        (STREETS[1], "东关街道", "street", DISTRICT, c3),
        (COMMUNITIES[0], "桃园社区", "community", STREETS[0], c1),
        (COMMUNITIES[1], "紫荆社区", "community", STREETS[0], c2),
        (COMMUNITIES[2], "东明社区", "community", STREETS[1], c3),
    ]
    gdf = gpd.GeoDataFrame(
        [r[:4] for r in rows],
        columns=["code", "name", "level", "parent_code"],
        geometry=[r[4] for r in rows],
        crs=METRIC,
    )
    return gdf.to_crs(4490)


def write_small_district(folder: Path, name: str = "small.geojson") -> Path:
    path = folder / name
    small_district().to_file(path, driver="GeoJSON")
    return path


def load_small_district(engine: Engine, folder: Path, *, tiers: bool = True) -> None:
    """Store the small district: its boundaries, unit grids and (``tiers``) tier-3 grids of about 20 cells."""
    from gisgrid.boundaries import BoundaryOptions
    from gisgrid.grids import workflows

    workflows.import_boundaries(engine, write_small_district(folder), BoundaryOptions())
    workflows.generate_grids(engine)
    if tiers:
        workflows.build_tiers(engine, target_size=20)


def case_number_years(engine: Engine) -> list[int]:
    """Years whose case-number sequence exists (made by the first number taken that year; migration 0006)."""
    with engine.connect() as conn:
        names = conn.execute(
            text("SELECT relname FROM pg_class WHERE relkind = 'S' AND relname ~ '^case_no_[0-9]+$' ORDER BY 1")
        ).scalars()
        return [int(n.removeprefix("case_no_")) for n in names]


#: PostScript names (as a PDF names its fonts) of the CJK fonts the order's CSS lists.
CJK_FONTS = ("WenQuanYi", "NotoSansCJK", "NotoSerifCJK", "SourceHan", "SimSun", "MicrosoftYaHei", "PingFang")


@dataclass(frozen=True)
class PdfFacts:
    pages: int
    text: str  # every page's text, runs of white space made one space
    fonts: frozenset[str]  # embedded fonts, without the subset tag (ABCDEF+)
    images: tuple[tuple[int, int], ...]  # pixel size of each image XObject (each once), page order


def read_pdf(data: bytes) -> PdfFacts:
    """What a PDF order holds: its pages, text, fonts and images (XObjects in forms included)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    fonts: set[str] = set()
    images: dict[int, tuple[int, int]] = {}  # by object number: WeasyPrint's pages share one resource dictionary

    def walk(resources: object) -> None:
        res = resources.get_object() if resources is not None else {}  # type: ignore[attr-defined]
        for font in (res.get("/Font") or {}).values():
            fonts.add(str(font.get_object()["/BaseFont"]).lstrip("/").split("+")[-1])
        for xobject in (res.get("/XObject") or {}).values():
            obj = xobject.get_object()
            if obj["/Subtype"] == "/Image":
                images.setdefault(xobject.idnum, (int(obj["/Width"]), int(obj["/Height"])))
            elif obj["/Subtype"] == "/Form":
                walk(obj.get("/Resources"))

    for page in reader.pages:
        walk(page.get("/Resources"))
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages)).strip()
    return PdfFacts(pages=len(reader.pages), text=text, fonts=frozenset(fonts), images=tuple(images.values()))


def host_port(settings: Any) -> str:
    """``host:port`` of the settings' database URL, as the server log names it."""
    from gisgrid.storage.database import parse_url

    url = parse_url(settings.database_url or "")
    return f"{url.host}:{url.port}"


def outage_logged_not_sent(body: dict[str, Any], detail: str, records: list[Any], host_port: str) -> str:
    """A database outage's answer: ``detail`` (the client's plain text) without where the database is, and a
    reference; the server log's line with that reference names it. Returns the log line."""
    ref = body["ref"]
    assert re.fullmatch(r"[0-9a-f]{12}", ref)
    assert detail == f"database unavailable; try again later (reference {ref})"
    sent = json.dumps(body, ensure_ascii=False).replace(ref, "")  # the port's digits may not hide in the ref
    assert host_port.rsplit(":", 1)[1] not in sent and "127.0.0.1" not in sent and "gisgrid" not in sent
    lines = [r.getMessage() for r in records if f"ref={ref}" in r.getMessage()]
    assert len(lines) == 1 and host_port in lines[0] and " 503 database_error " in lines[0]
    return lines[0]


def real_deadlock(engine: Engine) -> sa_exc.OperationalError:
    """The error PostgreSQL raises in one of two transactions that lock in opposite orders (advisory locks here:
    no table is touched): a real ``DeadlockDetected`` (40P01) as SQLAlchemy wraps it. Takes deadlock_timeout (1 s)."""
    both_hold_one = threading.Barrier(2, timeout=30)
    raised: list[sa_exc.OperationalError] = []

    def side(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": first})
                both_hold_one.wait()
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": second})
        except sa_exc.OperationalError as exc:
            raised.append(exc)

    threads = [threading.Thread(target=side, args=keys) for keys in ((919_191, 919_192), (919_192, 919_191))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    (deadlock,) = raised  # PostgreSQL aborts exactly one of them
    return deadlock


def legacy_gbk_shapefile(gdf: gpd.GeoDataFrame, path: Path, ldid: int = 0) -> Path:
    """Write ``gdf`` as a Shapefile in GBK that says nothing of its encoding, as Chinese legacy data often is: no
    ``.cpg`` and DBF language driver id 0 — or 0x57, "ANSI" (GDAL alone would read either as ISO-8859-1)."""
    gdf.to_file(path, engine="pyogrio", encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    dbf = path.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[29] = ldid
    dbf.write_bytes(bytes(data))
    return path


def dbf_fields(path: Path) -> dict[str, tuple[str, int, int]]:
    """The field descriptors of the DBF beside ``path``: ``{name: (type, width, decimals)}``, in file order."""
    dbf = path.with_suffix(".dbf").read_bytes()
    fields: dict[str, tuple[str, int, int]] = {}
    for i in range(32, len(dbf), 32):
        if dbf[i] == 0x0D:  # the header's terminator
            break
        fields[dbf[i : i + 11].split(b"\0")[0].decode("ascii")] = (chr(dbf[i + 11]), dbf[i + 16], dbf[i + 17])
    return fields


def row_count(engine: Engine, table: str) -> int:
    """How many rows ``table`` holds (for "nothing written")."""
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def acting(client: Any, case_id: int, role: str, **headers: str) -> dict[str, str]:
    """The headers of ``role`` acting on a case: the department role also says its department (X-Department), the
    one the case is with, as a login gateway sets it from the user's account."""
    out = {"X-Role": role, **headers}
    if role == "department":
        out["X-Department"] = client.get(f"/cases/{case_id}").json()["department_code"] or "990000000000000003"
    return out


def refusal_body(items: list[dict[str, Any]], error: str = "invalid_input") -> dict[str, Any]:
    """The body of a refusal listing ``items`` as request validation words it (review52 F3): the items' code as
    ``reason`` when they share one, ``detail`` ``{"message", "items"}``, the message each ``field: reason``."""
    codes = {i["code"] for i in items}
    message = "; ".join(f"{i['field']}: {i['reason']}" if i.get("field") else i["reason"] for i in items)
    reason = codes.pop() if len(codes) == 1 else error
    return {"error": error, "reason": reason, "detail": {"message": message, "items": items}}
