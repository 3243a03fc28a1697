"""The photos of one request share a budget of decoded pixels, and photo decodes take turns (review24 #4: ten
190 KB PNGs of 49 MP each were accepted in one request, 200 MB decoded apiece, and four such requests at once
took a server to 1 GB). The budget is read from the headers before anything is decoded."""

from __future__ import annotations

import io
import threading
import time
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine

from gisgrid import photos
from gisgrid.photos import DECODE_SLOTS, MAX_PIXELS, MAX_REQUEST_PIXELS
from tests.fixtures import row_count

SUPERVISOR = {"X-Actor": quote("监督员甲"), "X-Role": "supervisor"}
EDITOR = {"X-Actor": "li", "X-Role": "data_admin"}
GARBAGE, LAMP = "06010", "01037"


def png(width: int, height: int, seed: int) -> bytes:
    """A bilevel PNG: a few KB however many pixels it declares, distinct per seed."""
    im = Image.new("1", (width, height), 0)
    im.putpixel((seed, seed), 1)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def jpeg(width: int, height: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (seed * 20 % 256, 120, 60)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def budget_refusal(index: int, pixels: int, total: int) -> dict[str, Any]:
    return {
        "error": "invalid_input",
        "reason": "photos_too_many_pixels",
        "detail": {
            "message": f"photos[{index}]: with this photo ({pixels} pixels) the request's photos hold {total} pixels, "
            f"at most {MAX_REQUEST_PIXELS} in one request; send fewer or smaller photos",
            "items": [
                {
                    "field": f"photos[{index}]",
                    "reason": f"{total} pixels in the request's photos",
                    "limit": {"max_pixels": MAX_REQUEST_PIXELS},
                    "code": "photos_too_many_pixels",
                }
            ],
        },
    }


def test_the_budget_is_three_of_the_largest_photos() -> None:
    assert MAX_REQUEST_PIXELS == 3 * MAX_PIXELS == 150_000_000


def test_a_report_over_the_budget_is_refused_at_the_photo_that_crosses_it(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four 49.7 MP photos (each under MAX_PIXELS): the fourth crosses 150 MP — refused before any is decoded."""
    decoded: list[int] = []
    real = photos.inspect_photo
    monkeypatch.setattr("gisgrid.case_intake.inspect_photo", lambda data, **kw: decoded.append(1) or real(data, **kw))
    w, h = 7100, 7000
    files = [("photos", (f"p{i}.png", png(w, h, i), "image/png")) for i in range(4)]
    form = {"class_code": GARBAGE, "lon": str(spot[0]), "lat": str(spot[1]), "datum": "cgcs2000"}
    r = district_api.post("/cases/form", data=form, files=files, headers=SUPERVISOR)
    assert (r.status_code, r.json()) == (422, budget_refusal(3, w * h, 4 * w * h))
    assert decoded == []
    assert row_count(clean_db, "cases") == 0


def test_an_action_and_component_photos_share_the_rule(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = district_api
    made = client.post(
        "/components", json={"class_code": LAMP, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}, headers=EDITOR
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    w, h = 7100, 7000
    files = [("photos", (f"p{i}.png", png(w, h, i), "image/png")) for i in range(5)]
    r = client.post(f"/components/{cid}/photos", files=files, headers=EDITOR)
    assert (r.status_code, r.json()) == (422, budget_refusal(3, w * h, 4 * w * h))
    assert client.get(f"/components/{cid}").json()["properties"]["photos"] in ([], None)

    case = client.post(
        "/cases", json={"class_code": GARBAGE, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}, headers=SUPERVISOR
    )
    assert case.status_code == 201, case.text
    monkeypatch.setattr(photos, "MAX_REQUEST_PIXELS", 10_000)  # small photos, a small budget: the same rule
    small = [("photos", (f"s{i}.jpg", jpeg(80, 50, i), "image/jpeg")) for i in range(3)]
    r = client.post(
        f"/cases/{case.json()['id']}/actions/verify/form", data={"version": "1"}, files=small, headers=SUPERVISOR
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["reason"], body["detail"]["items"][0]["field"]) == ("photos_too_many_pixels", "photos[2]")
    assert body["detail"]["items"][0]["limit"] == {"max_pixels": 10_000}
    assert client.get(f"/cases/{case.json()['id']}").json()["version"] == 1


def test_a_normal_report_of_ten_phone_photos_is_filed(district_api: TestClient, spot: tuple[float, float]) -> None:
    """Ten 12 MP photos (4032×3024, a phone's default): 122 MP, within the budget."""
    files = [("photos", (f"IMG_{i}.jpg", jpeg(4032, 3024, i), "image/jpeg")) for i in range(10)]
    form = {"class_code": GARBAGE, "lon": str(spot[0]), "lat": str(spot[1]), "datum": "cgcs2000"}
    r = district_api.post("/cases/form", data=form, files=files, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    detail = district_api.get(f"/cases/{r.json()['id']}").json()
    assert len(detail["photos"]) == 10


def test_decodes_take_turns_in_the_decode_slots() -> None:
    assert 1 <= DECODE_SLOTS <= 4
    total = DECODE_SLOTS + 3
    arrived, running, peak, changed = [0], [0], [0], threading.Condition()

    def decode() -> None:
        with changed:
            arrived[0] += 1
            changed.notify_all()
        with photos.decoding():
            with changed:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                changed.notify_all()
                # Held until every slot is taken and every thread has come (not a fixed 50 ms: on a busy machine
                # the threads started one by one, each done before the next came, and the peak was 1); the
                # timeout only ends a run whose slots never fill, which the assertion below then names.
                changed.wait_for(lambda: peak[0] >= DECODE_SLOTS and arrived[0] == total, timeout=30)
            time.sleep(0.05)  # a decode beyond the slots would get in meanwhile
            with changed:
                running[0] -= 1

    threads = [threading.Thread(target=decode) for _ in range(total)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == DECODE_SLOTS


def test_a_public_reports_photos_have_a_budget_of_one_full_size_photo(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    """review36 M2: anyone may send a public report, and the decode slots are everyone's: without a role, the
    photos of one report hold at most MAX_PIXELS (a staff member's: three times that)."""
    assert photos.PUBLIC_REQUEST_PIXELS == MAX_PIXELS
    w, h = 5000, 5000  # 25 MP each: two fit a staff report, not a public one
    files = [("photos", (f"p{i}.png", png(w, h, i), "image/png")) for i in range(3)]
    form = {"class_code": GARBAGE, "lon": str(spot[0]), "lat": str(spot[1]), "datum": "cgcs2000"}
    r = district_api.post("/cases/form", data=form, files=files)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["message"] == (
        f"photos[2]: with this photo ({w * h} pixels) the request's photos hold {3 * w * h} pixels, at most "
        f"{MAX_PIXELS} in one public report; send fewer or smaller photos"
    )
    assert r.json()["detail"]["items"][0]["limit"] == {"max_pixels": MAX_PIXELS}
    assert row_count(clean_db, "cases") == 0
    assert district_api.post("/cases/form", data=form, files=files[:2]).status_code == 201
