"""The change feed a system following gisgrid's cases polls (review29 gap 1): ``GET /cases?changed_since=T&
sort=updated`` lists the cases whose record changed — reported, or any step — at or after T, least recently
changed first, each with its ``updated_at`` for the next poll."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid.settings import Settings

GARBAGE = "06010"
INTAKE = {"X-Role": "intake", "X-Actor": "feed-test"}


@pytest.fixture
def client(loaded: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as c:
        yield c


def ids(answer: dict) -> list[int]:
    return [c["id"] for c in answer["data"]]


def test_the_cases_changed_since_a_poll_come_least_recently_changed_first(
    client: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    x, y = spot
    a, b, c = (
        client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y + k * 1e-5}, headers=INTAKE).json()
        for k in range(3)
    )
    since_b = b["updated_at"]
    acted = client.post(f"/cases/{a['id']}/actions/request_verify", json={"version": a["version"]}, headers=INTAKE)
    assert acted.status_code == 200, acted.text
    assert acted.json()["updated_at"] > since_b

    feed = client.get("/cases", params={"changed_since": since_b, "sort": "updated"})
    assert feed.status_code == 200, feed.text
    assert ids(feed.json()) == [b["id"], c["id"], a["id"]]  # B at the poll's time itself: "at or after"
    assert [i["updated_at"] for i in feed.json()["data"]] == sorted(i["updated_at"] for i in feed.json()["data"])
    assert feed.json()["count"] == 3
    # The next poll from the latest updated_at seen: only what changed then or later.
    latest = feed.json()["data"][-1]["updated_at"]
    assert ids(client.get("/cases", params={"changed_since": latest, "sort": "updated"}).json()) == [a["id"]]
    # Default order is unchanged: newest report first; GeoJSON pages the same order.
    assert ids(client.get("/cases", params={"changed_since": since_b}).json()) == [c["id"], b["id"], a["id"]]
    geo = client.get("/cases", params={"changed_since": since_b, "sort": "updated", "format": "geojson"}).json()
    assert [f["id"] for f in geo["features"]] == [b["id"], c["id"], a["id"]]
    # Paging in the feed's order.
    page2 = client.get("/cases", params={"changed_since": since_b, "sort": "updated", "limit": 2, "offset": 2})
    assert ids(page2.json()) == [a["id"]]

    # Without an offset the time is China time, as since/until are.
    with loaded.connect() as conn:
        stored = conn.execute(text("SELECT updated_at FROM cases WHERE id = :i"), {"i": c["id"]}).scalar_one()
    naive = stored.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None).isoformat()
    assert ids(client.get("/cases", params={"changed_since": naive, "sort": "updated"}).json()) == [c["id"], a["id"]]


def test_sort_due_lists_the_most_urgent_first_and_pages_by_cursor(
    client: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    """review40 U2: a department (or the console) asks for its most urgent cases first across all pages, not one
    page sorted: ``sort=due`` orders by the running deadline, the cases without one (here a 不予立案) last; its
    cursor is due_at in µs (``n`` without one) and the id, and the light-filtered list keeps the order."""
    x, y = spot
    a, b, c, d = (report(client, x, y, k) for k in range(4))
    rejected = client.post(
        f"/cases/{b['id']}/actions/reject", json={"version": 1, "payload": {"reason": "不属于城管范围"}}, headers=INTAKE
    )
    assert rejected.status_code == 200, rejected.text
    # still green: the clocks started just now, and 30 days hold working time whatever the date (3 days, as
    # before, may hold none: run on the first day of 国庆 or 春节 those cases were yellow)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    with loaded.begin() as conn:
        for case, hours in ((a, 3), (c, 1), (d, 2)):
            conn.execute(
                text("UPDATE cases SET due_at = :due WHERE id = :id"),
                {"due": soon + dt.timedelta(hours=hours), "id": case["id"]},
            )
    order = [c["id"], d["id"], a["id"], b["id"]]
    assert ids(client.get("/cases", params={"sort": "due"}).json()) == order
    assert walk(client, {"sort": "due", "limit": 1}) == [[i] for i in order]
    assert walk(client, {"sort": "due", "limit": 1, "light": "green"}) == [[i] for i in order[:3]]
    first = client.get("/cases", params={"sort": "due", "limit": 3}).json()
    cursor = next(link["href"] for link in first["links"] if link["rel"] == "next").rsplit("after=", 1)[1]
    due_a = soon + dt.timedelta(hours=3)
    assert cursor == f"{(due_a - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)}.{a['id']}"
    assert ids(client.get("/cases", params={"sort": "due", "after": f"n.{b['id'] - 1}"}).json()) == [b["id"]]
    assert client.get("/cases", params={"sort": "due", "after": "x.1"}).json()["reason"] == "after_unreadable"


def test_sort_due_lists_suspended_cases_after_every_running_one_and_pages_across_the_groups(
    client: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    """review44 D1: 挂账 stops the clock, but a suspended case keeps its old due_at; ``sort=due`` listed it as the
    most overdue. Running deadlines come first, then the 挂账 cases (by the deadline they keep, one without last),
    then the cases without a deadline; every page size walks that order with no gap or repeat, the cursor at a
    挂账 case marking its group (``s``)."""
    x, y = spot
    run_late, run_soon, parked_old, parked_soon, parked_none, rejected = (report(client, x, y, k) for k in range(6))
    r = client.post(
        f"/cases/{rejected['id']}/actions/reject",
        json={"version": 1, "payload": {"reason": "不属于城管范围"}},
        headers=INTAKE,
    )
    assert r.status_code == 200, r.text
    now = dt.datetime.now(dt.UTC)
    with loaded.begin() as conn:
        for case, due in (
            (run_late, now + dt.timedelta(days=30, hours=3)),  # green on any date (see the test above)
            (run_soon, now + dt.timedelta(days=30, hours=1)),
        ):
            conn.execute(text("UPDATE cases SET due_at = :due WHERE id = :id"), {"due": due, "id": case["id"]})
        for case, due in (
            (parked_old, now - dt.timedelta(days=30)),  # long past, but its clock stopped: not the most urgent
            (parked_soon, now + dt.timedelta(days=30, hours=2)),
            (parked_none, None),
        ):
            conn.execute(
                text(
                    "UPDATE cases SET state = 'suspended', previous_state = 'filed', suspended_at = :now, node = NULL, "
                    "due_at = :due WHERE id = :id"
                ),
                {"due": due, "now": now, "id": case["id"]},
            )
    order = [c["id"] for c in (run_soon, run_late, parked_old, parked_soon, parked_none, rejected)]
    listed = client.get("/cases", params={"sort": "due"}).json()
    assert ids(listed) == order
    assert [c["light"] for c in listed["data"]][:2] == ["green", "green"]
    assert [c["light"] for c in listed["data"]][2:5] == [None, None, None]
    for size in (1, 2, 4, 5):
        pages = walk(client, {"sort": "due", "limit": size})
        assert [i for page in pages for i in page] == order, size
        assert all(len(page) == size for page in pages[:-1])
    assert walk(client, {"sort": "due", "limit": 5, "light": "green"}) == [order[:2]]
    first = client.get("/cases", params={"sort": "due", "limit": 3}).json()
    cursor = next(link["href"] for link in first["links"] if link["rel"] == "next").rsplit("after=", 1)[1]
    micros = (now - dt.timedelta(days=30) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert cursor == f"s{micros}.{parked_old['id']}"
    assert ids(client.get("/cases", params={"sort": "due", "after": f"sn.{parked_none['id']}"}).json()) == order[5:]
    assert ids(client.get("/cases", params={"sort": "due", "after": f"n.{rejected['id'] - 1}"}).json()) == order[5:]
    assert client.get("/cases", params={"sort": "updated", "after": "s1.1"}).json()["reason"] == "after_unreadable"


def test_a_bad_sort_or_time_is_refused_naming_it(client: TestClient) -> None:
    r = client.get("/cases", params={"sort": "oldest"})
    assert r.status_code == 422
    assert r.json()["reason"] == "literal_error"
    assert r.json()["detail"]["message"] == "sort: must be one of newest, updated, due, got 'oldest'"
    r = client.get("/cases", params={"changed_since": "yesterday"})
    assert r.status_code == 422
    assert [(i["field"], i["code"]) for i in r.json()["detail"]["items"]] == [
        ("changed_since", "datetime_from_date_parsing")
    ]
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/cases"]["get"]["parameters"]}
    assert params["sort"]["schema"]["enum"] == ["newest", "updated", "due"]
    assert "changed_since" in params


def test_the_feed_reads_the_index(loaded: Engine) -> None:
    """A poll is an index range, not a scan of every case (migration 0015)."""
    with loaded.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                text("EXPLAIN SELECT id FROM cases c WHERE c.updated_at >= now() ORDER BY c.updated_at, c.id LIMIT 100")
            )
        )
    assert "ix_cases_updated_at_id" in plan


def test_a_report_keeps_the_senders_own_number_and_is_found_by_it(
    client: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    """review29 gap 2: a 12345 hotline files with its 工单号 and finds its case by it, in JSON and form alike."""
    x, y = spot
    body = {"class_code": GARBAGE, "lon": x, "lat": y, "source": "hotline", "external_ref": "12345-20261128-0042"}
    filed = client.post("/cases", json={**body, "idempotency_key": "hotline-0042"}, headers=INTAKE)
    assert filed.status_code == 201, filed.text
    assert filed.json()["external_ref"] == "12345-20261128-0042"
    other = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y}, headers=INTAKE).json()
    assert other["external_ref"] is None
    form = client.post(
        "/cases/form",
        data={"class_code": GARBAGE, "lon": str(x), "lat": str(y), "external_ref": "VA-7731"},
        headers=INTAKE,
    )
    assert form.status_code == 201 and form.json()["external_ref"] == "VA-7731"

    found = client.get("/cases", params={"external_ref": "12345-20261128-0042"}).json()
    assert ids(found) == [filed.json()["id"]] and found["data"][0]["external_ref"] == "12345-20261128-0042"
    assert ids(client.get("/cases", params={"external_ref": "VA-7731"}).json()) == [form.json()["id"]]
    assert ids(client.get("/cases", params={"external_ref": "12345"}).json()) == []  # exact, not a prefix
    assert client.get(f"/cases/{filed.json()['id']}").json()["external_ref"] == "12345-20261128-0042"

    # The number is part of the report: the same key with another number is another report, refused.
    retry = client.post("/cases", json={**body, "idempotency_key": "hotline-0042"}, headers=INTAKE)
    assert retry.status_code == 200 and retry.json()["id"] == filed.json()["id"]
    reused = client.post(
        "/cases",
        json={**body, "external_ref": "12345-20261128-0043", "idempotency_key": "hotline-0042"},
        headers=INTAKE,
    )
    assert (reused.status_code, reused.json()["reason"]) == (409, "idempotency_key_reused")

    too_long = client.post("/cases", json={**body, "external_ref": "x" * 65}, headers=INTAKE)
    assert too_long.status_code == 422
    assert [(i["field"], i["code"]) for i in too_long.json()["detail"]["items"]] == [
        ("external_ref", "string_too_long")
    ]
    for blank in ("", "  "):  # a number that names nothing is refused, not dropped
        empty = client.post("/cases", json={**body, "external_ref": blank}, headers=INTAKE)
        assert (empty.status_code, empty.json()["reason"]) == (422, "string_too_short")
        assert empty.json()["detail"]["items"][0]["field"] == "external_ref"
    bad = client.post("/cases", json={**body, "external_ref": "a\u202eb"}, headers=INTAKE)
    assert (bad.status_code, bad.json()["reason"]) == (422, "control_characters")
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 3  # nothing of the refused ones


def test_answers_in_the_datum_a_client_draws_in(client: TestClient, spot: tuple[float, float]) -> None:
    """review29 gap 6: a vendor drawing on AMap (GCJ-02) or Baidu (BD-09) tiles asks for lon/lat — and gives its
    bbox — in that datum; the default stays the stored CGCS2000."""
    from gisgrid import geodesy

    x, y = spot
    case = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y}, headers=INTAKE).json()
    gx, gy = (float(v[0]) for v in geodesy.from_storage([case["lon"]], [case["lat"]], "gcj02"))
    bx, by = (float(v[0]) for v in geodesy.from_storage([case["lon"]], [case["lat"]], "bd09"))
    assert abs(gx - case["lon"]) > 1e-3  # Z区's GCJ-02 offset is some hundred metres

    plain = client.get("/cases").json()
    assert plain["datum"] == "cgcs2000" and (plain["data"][0]["lon"], plain["data"][0]["lat"]) == (
        round(x, 7),
        round(y, 7),
    )
    gcj = client.get("/cases", params={"datum": "gcj02"}).json()
    assert gcj["datum"] == "gcj02"
    assert (gcj["data"][0]["lon"], gcj["data"][0]["lat"]) == (round(gx, 7), round(gy, 7))
    geo = client.get("/cases", params={"datum": "bd09", "format": "geojson"}).json()
    assert geo["datum"] == "bd09" and geo["features"][0]["geometry"]["coordinates"] == [round(bx, 7), round(by, 7)]
    detail = client.get(f"/cases/{case['id']}", params={"datum": "gcj02"}).json()
    assert (detail["lon"], detail["lat"], detail["datum"]) == (round(gx, 7), round(gy, 7), "gcj02")
    assert client.get(f"/cases/{case['id']}").json()["datum"] == "cgcs2000"

    # A small box around the GCJ-02 point finds the case when said to be GCJ-02, not when taken as CGCS2000.
    box = f"{gx - 2e-4},{gy - 2e-4},{gx + 2e-4},{gy + 2e-4}"
    assert ids(client.get("/cases", params={"bbox": box, "datum": "gcj02"}).json()) == [case["id"]]
    assert ids(client.get("/cases", params={"bbox": box}).json()) == []
    bd_box = f"{bx - 2e-4},{by - 2e-4},{bx + 2e-4},{by + 2e-4}"  # and a Baidu client's box (review33 S3)
    assert ids(client.get("/cases", params={"bbox": bd_box, "datum": "bd09"}).json()) == [case["id"]]
    assert ids(client.get("/cases", params={"bbox": bd_box}).json()) == []
    assert ids(client.get("/cases", params={"bbox": bd_box, "datum": "gcj02"}).json()) == []
    bad = client.get("/cases", params={"datum": "utm"})
    assert bad.status_code == 422 and [i["field"] for i in bad.json()["detail"]["items"]] == ["datum"]


def test_the_heat_map_answers_in_the_datum_a_client_draws_in(client: TestClient, spot: tuple[float, float]) -> None:
    """review44 D5: ``/cases/heat`` refused ``datum`` (extra_forbidden) although it takes the list's filters, bbox
    included: its points and bbox were CGCS2000 only. It takes ``datum`` as GET /cases does and says it."""
    from gisgrid import geodesy

    x, y = spot
    case = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y}, headers=INTAKE).json()
    gx, gy = (float(v[0]) for v in geodesy.from_storage([case["lon"]], [case["lat"]], "gcj02"))
    plain = client.get("/cases/heat")
    assert plain.status_code == 200, plain.text
    assert plain.json() == {
        "cell_deg": 0.0005,
        "cases": 1,
        "points": [[round(case["lat"], 6), round(case["lon"], 6), 1]],
        "datum": "cgcs2000",
    }
    gcj = client.get("/cases/heat", params={"datum": "gcj02"})
    assert gcj.status_code == 200, gcj.text
    assert gcj.json() == {"cell_deg": 0.0005, "cases": 1, "points": [[round(gy, 6), round(gx, 6), 1]], "datum": "gcj02"}
    box = f"{gx - 2e-4},{gy - 2e-4},{gx + 2e-4},{gy + 2e-4}"
    assert client.get("/cases/heat", params={"bbox": box, "datum": "gcj02"}).json()["cases"] == 1
    assert client.get("/cases/heat", params={"bbox": box}).json()["cases"] == 0  # the box taken as CGCS2000
    bad = client.get("/cases/heat", params={"datum": "mars"})
    assert bad.status_code == 422 and [i["field"] for i in bad.json()["detail"]["items"]] == ["datum"]


def test_the_light_counts_read_their_bbox_in_the_datum_a_client_draws_in(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """left46 item 2: ``/cases/lights`` takes the list's filters, ``bbox`` included, but refused ``datum``
    (extra_forbidden), so a GCJ-02 map's box was read as CGCS2000 (~500 m off). It takes ``datum`` as /cases and
    /cases/heat do, validated the same; the answer, which holds no place, keeps its four counts."""
    from gisgrid import geodesy

    x, y = spot
    case = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y}, headers=INTAKE).json()
    gx, gy = (float(v[0]) for v in geodesy.from_storage([case["lon"]], [case["lat"]], "gcj02"))
    one = {"green": 1, "yellow": 0, "red": 0, "suspended": 0}
    none = {"green": 0, "yellow": 0, "red": 0, "suspended": 0}
    box = f"{gx - 2e-4},{gy - 2e-4},{gx + 2e-4},{gy + 2e-4}"
    gcj = client.get("/cases/lights", params={"bbox": box, "datum": "gcj02"})
    assert gcj.status_code == 200, gcj.text
    assert gcj.json() == one
    assert client.get("/cases/lights", params={"bbox": box}).json() == none  # the box taken as CGCS2000
    plain = f"{x - 2e-4},{y - 2e-4},{x + 2e-4},{y + 2e-4}"
    assert client.get("/cases/lights", params={"bbox": plain}).json() == one
    assert client.get("/cases/lights", params={"bbox": plain, "datum": "wgs84"}).json() == one
    assert client.get("/cases/lights", params={"datum": "gcj02"}).json() == one  # no box: nothing to convert
    for path in ("/cases", "/cases/heat", "/cases/lights"):  # the same refusal of the same mistake on each
        bad = client.get(path, params={"datum": "mars"})
        assert bad.status_code == 422 and [(i["field"], i["code"]) for i in bad.json()["detail"]["items"]] == [
            ("datum", "literal_error")
        ], path


def test_a_poll_time_in_utc_is_that_instant_not_china_time(
    client: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    """review33 S1: a follower sending UTC (…Z, the usual case) gets the cases of that instant — its offset kept,
    not read as China time (which would move its poll by 8 hours)."""
    x, y = spot
    a, b = (
        client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y + k * 1e-5}, headers=INTAKE).json()
        for k in range(2)
    )
    since_b = dt.datetime.fromisoformat(b["updated_at"])
    utc = since_b.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    assert utc.endswith("Z") and not utc.startswith(b["updated_at"][:13])  # another wall clock, the same instant
    assert ids(client.get("/cases", params={"changed_since": utc, "sort": "updated"}).json()) == [b["id"]]
    as_china = utc.removesuffix("Z")  # the UTC wall clock read as China time: 8 hours earlier, both cases
    assert ids(client.get("/cases", params={"changed_since": as_china, "sort": "updated"}).json()) == [
        a["id"],
        b["id"],
    ]


def test_cases_changed_at_one_instant_page_in_id_order(
    client: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    """review33 S2: a merge or an import changes several cases at one instant; the feed orders them by id, so a
    follower paging with limit/offset neither skips nor repeats one."""
    x, y = spot
    made = [
        client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y + k * 1e-5}, headers=INTAKE).json()["id"]
        for k in range(4)
    ]
    with loaded.begin() as conn:  # one instant, and a physical order unlike the ids
        conn.execute(text("UPDATE cases SET updated_at = '2026-11-20T10:00:00+08:00'"))
        conn.execute(text("UPDATE cases SET description = 'x' WHERE id IN (:a, :c)"), {"a": made[0], "c": made[2]})
    params = {"changed_since": "2026-11-20T10:00:00+08:00", "sort": "updated"}
    whole = ids(client.get("/cases", params=params).json())
    assert whole == sorted(made)
    paged = [ids(client.get("/cases", params={**params, "limit": 1, "offset": k}).json()) for k in range(4)]
    assert [p[0] for p in paged] == sorted(made)


def test_a_light_filter_keeps_the_feed_order(client: TestClient, loaded: Engine, spot: tuple[float, float]) -> None:
    """review33 S4: with light= the list is built apart; sort=updated must still order it least recently changed
    first."""
    x, y = spot
    older, newer = (
        client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y + k * 1e-5}, headers=INTAKE).json()
        for k in range(2)
    )
    with loaded.begin() as conn:  # both overdue (red); the newer report changed last
        conn.execute(text("UPDATE cases SET due_at = now() - interval '1 day'"))
        conn.execute(text("UPDATE cases SET updated_at = now() - interval '1 hour' WHERE id = :i"), {"i": older["id"]})
        conn.execute(text("UPDATE cases SET updated_at = now() WHERE id = :i"), {"i": newer["id"]})
    assert ids(client.get("/cases", params={"light": "red", "sort": "updated"}).json()) == [older["id"], newer["id"]]
    assert ids(client.get("/cases", params={"light": "red"}).json()) == [newer["id"], older["id"]]  # newest first


def test_a_sending_systems_number_of_64_characters_is_kept_and_a_blank_lookup_refused(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """review33 S9, S13: the limit is 64 characters, 64 included; ``?external_ref=`` names no case: refused, not
    every case."""
    x, y = spot
    longest = "工" * 4 + "x" * 60
    filed = client.post(
        "/cases", json={"class_code": GARBAGE, "lon": x, "lat": y, "external_ref": longest}, headers=INTAKE
    )
    assert filed.status_code == 201 and filed.json()["external_ref"] == longest
    assert ids(client.get("/cases", params={"external_ref": longest}).json()) == [filed.json()["id"]]
    for blank in ("", "  "):
        r = client.get("/cases", params={"external_ref": blank})
        assert (r.status_code, r.json()["reason"]) == (422, "string_too_short"), r.text
        assert r.json()["detail"]["items"] == [{"field": "external_ref", "reason": "empty", "code": "string_too_short"}]


def test_an_empty_form_field_is_a_field_not_sent(client: TestClient, loaded: Engine, spot: tuple[float, float]) -> None:
    """review33: a form's empty 来源单号 and key (an HTML form sends every field) are no number and no key — not
    refused as blank, as a JSON "" is — so the same form twice files two cases."""
    x, y = spot
    form = {"class_code": GARBAGE, "lon": str(x), "lat": str(y), "external_ref": "", "idempotency_key": ""}
    first, second = (client.post("/cases/form", data=form, headers=INTAKE) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 201), first.text
    assert first.json()["external_ref"] is None and first.json()["id"] != second.json()["id"]
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases WHERE idempotency_key IS NULL")).scalar_one() == 2


def walk(client: TestClient, params: dict, between: Callable[[int], None] = lambda page: None) -> list[list[int]]:
    """Every page of a listing by its next links (``between(n)`` runs after page n is read)."""
    pages, url = [], client.get("/cases", params=params)
    while True:
        assert url.status_code == 200, url.text
        body = url.json()
        pages.append(ids(body))
        between(len(pages))
        following = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not following:
            return pages
        url = client.get(following[0])


def report(client: TestClient, x: float, y: float, k: int) -> dict:
    r = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y + k * 1e-5}, headers=INTAKE)
    assert r.status_code == 201, r.text
    return r.json()


def test_next_links_page_the_newest_first_list_without_repeats_while_reports_arrive(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """An offset moves with every new report (page 2 would start with page 1's last case again); the next link's
    cursor names the page's last case and the next page starts after it."""
    x, y = spot
    made = [report(client, x, y, k)["id"] for k in range(5)]
    newest_first = made[::-1]
    late: list[int] = []
    pages = walk(client, {"limit": 2}, lambda page: late.append(report(client, x, y, 10 + page)["id"]))
    assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert len(late) == 3  # the reports that came meanwhile are on a fresh first page, not in this walk
    assert ids(client.get("/cases", params={"limit": 3}).json()) == late[::-1]
    # The link itself: the cursor is the last case's id; the first page's count is the filter's, and a cursor
    # keeps it so (numberMatched too).
    first = client.get("/cases", params={"limit": 2, "format": "geojson"}).json()
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert nxt.endswith(f"/cases?limit=2&format=geojson&after={late[-2]}")
    second = client.get(nxt).json()
    assert [f["id"] for f in second["features"]] == [late[0], newest_first[0]]
    assert (first["numberMatched"], second["numberMatched"], second["numberReturned"]) == (8, 8, 2)
    assert [link["rel"] for link in second["links"]] == ["self", "next"]  # a cursor walks forward: no prev


def test_next_links_page_the_change_feed_without_skipping_a_case_that_changes_meanwhile(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """sort=updated: a case of page 1 that changes moves to the end; with an offset every later case would move
    up one and the first of page 2 be skipped. The cursor (updated_at, id) skips none and shows the changed one
    again at the end, as changed."""
    x, y = spot
    a, b, c, d, e = (report(client, x, y, k) for k in range(5))

    def act_on_a(page: int) -> None:
        if page == 1:
            r = client.post(f"/cases/{a['id']}/actions/request_verify", json={"version": 1}, headers=INTAKE)
            assert r.status_code == 200, r.text

    pages = walk(client, {"sort": "updated", "limit": 2}, act_on_a)
    assert pages == [[a["id"], b["id"]], [c["id"], d["id"]], [e["id"], a["id"]]]
    # What an offset gives after the same change: c is skipped (the reason for the cursor).
    assert ids(client.get("/cases", params={"sort": "updated", "limit": 2, "offset": 2}).json()) == [d["id"], e["id"]]
    # The cursor: updated_at in microseconds since the epoch, a dot, the id.
    first = client.get("/cases", params={"sort": "updated", "limit": 1}).json()
    cursor = next(link["href"] for link in first["links"] if link["rel"] == "next").rsplit("after=", 1)[1]
    at = dt.datetime.fromisoformat(b["updated_at"])
    assert cursor == f"{(at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)}.{b['id']}"


def test_next_links_page_a_light_filtered_list(client: TestClient, spot: tuple[float, float]) -> None:
    x, y = spot
    made = [report(client, x, y, k)["id"] for k in range(3)]
    rejected = client.post(
        f"/cases/{made[1]}/actions/reject", json={"version": 1, "payload": {"reason": "不属于城管范围"}}, headers=INTAKE
    )
    assert rejected.status_code == 200, rejected.text  # no clock, no light: not in a light's list
    assert walk(client, {"light": "green", "limit": 1}) == [[made[2]], [made[0]]]
    assert walk(client, {"light": "green", "limit": 1, "sort": "updated"}) == [[made[0]], [made[2]]]
    assert client.get("/cases", params={"light": "green", "limit": 1}).json()["count"] == 2


NOT_NEWEST = "after: not a page cursor of sort=newest (take it from the list's next link), got "
NOT_UPDATED = "after: not a page cursor of sort=updated (take it from the list's next link), got "
BOTH = "after: give a page cursor or an offset, not both"


@pytest.mark.parametrize(
    ("params", "reason", "message"),
    [
        ({"after": "3.5"}, "after_unreadable", NOT_NEWEST + "'3.5'"),
        ({"after": "0"}, "after_unreadable", NOT_NEWEST + "'0'"),
        ({"after": "12", "sort": "updated"}, "after_unreadable", NOT_UPDATED + "'12'"),
        (
            {"after": "999999999999999999.4", "sort": "updated"},
            "after_unreadable",
            "after: the cursor's time is out of range, got '999999999999999999.4'",
        ),
        ({"after": "12", "offset": "2"}, "after_with_offset", BOTH),
        ({"after": "12", "offset": "2", "light": "red"}, "after_with_offset", BOTH),
    ],
)
def test_a_cursor_not_made_for_the_list_is_refused_naming_it(
    client: TestClient, params: dict, reason: str, message: str
) -> None:
    r = client.get("/cases", params=params)
    assert r.status_code == 422, r.text
    assert (r.json()["reason"], r.json()["detail"]["message"]) == (reason, message)
    assert r.json()["detail"]["items"] == [
        {"field": "after", "reason": message.removeprefix("after: "), "code": reason}
    ]


def test_a_cursor_longer_than_any_made_is_refused(client: TestClient) -> None:
    r = client.get("/cases", params={"after": "1" * 41})
    assert r.status_code == 422
    assert [(i["field"], i["code"]) for i in r.json()["detail"]["items"]] == [("after", "string_too_long")]


FAR_EAST = dt.timezone(dt.timedelta(hours=23, minutes=59))  # Python reads it; PostgreSQL refuses beyond ±15:59
FAR_WEST = dt.timezone(-dt.timedelta(hours=16))


def at(iso: str, zone: dt.timezone) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(zone).isoformat()


def test_a_time_with_an_offset_beyond_pg_s_is_the_same_instant_not_a_500(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """review54 F6: since/until/changed_since with +23:59 or -16:00 were a 500 (PostgreSQL refuses offsets beyond
    ±15:59); they are bound as the same instant in UTC."""
    x, y = spot
    a, b = (
        client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y + k * 1e-5}, headers=INTAKE).json()
        for k in range(2)
    )
    for zone in (FAR_EAST, FAR_WEST):
        since_b = at(b["created_at"], zone)
        r = client.get("/cases", params={"since": since_b})
        assert (r.status_code, ids(r.json())) == (200, [b["id"]]), r.text
        r = client.get("/cases", params={"until": since_b})
        assert (r.status_code, ids(r.json())) == (200, [a["id"]]), r.text
        r = client.get("/cases", params={"changed_since": at(b["updated_at"], zone), "sort": "updated"})
        assert (r.status_code, ids(r.json())) == (200, [b["id"]]), r.text
        r = client.get("/cases/heat", params={"since": since_b})
        assert (r.status_code, r.json()["cases"]) == (200, 1), r.text
