"""An action sent again with its idempotency key: a retry whose answer was lost takes the step once.

Before, a client that lost the answer to, say, its 派遣 and sent it again got 409 stale_version and had to read the
timeline to learn whether its step had been taken."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid.settings import Settings
from tests.test_cases import GARBAGE, _counts, _jpeg

SUPERVISOR = {"X-Actor": quote("张三"), "X-Role": "supervisor"}
LEAD = {"X-Actor": quote("李值班"), "X-Role": "shift_lead"}
DISPATCHER = {"X-Actor": quote("王派遣"), "X-Role": "dispatcher"}
DEPT = "990000000000000003"


def _filed(client: TestClient, x: float, y: float) -> int:
    """A case reported, verified and filed (version 3), ready for 派遣."""
    cid = client.post(
        "/cases", json={"class_code": GARBAGE, "lon": x, "lat": y, "datum": "cgcs2000"}, headers=SUPERVISOR
    ).json()["id"]
    assert client.post(f"/cases/{cid}/actions/verify", json={"version": 1}, headers=SUPERVISOR).status_code == 200
    assert client.post(f"/cases/{cid}/actions/file", json={"version": 2}, headers=LEAD).status_code == 200
    return int(cid)


def _steps(engine: Engine, cid: int) -> list[tuple[str, int, str | None]]:
    with engine.connect() as conn:
        return [
            (r.action, r.version, r.idempotency_key)
            for r in conn.execute(
                text("SELECT action, version, idempotency_key FROM case_transitions WHERE case_id = :c ORDER BY id"),
                {"c": cid},
            )
        ]


def _without_running_time(case: dict[str, Any]) -> dict[str, Any]:
    """The case but for its open nodes' elapsed_h: in working hours that runs on between two answers (past its
    0.0001 h rounding within milliseconds), while the rest of a replayed answer is what the step left."""
    return {
        **case,
        "nodes": [{k: v for k, v in n.items() if k != "elapsed_h" or n["closed_at"]} for n in case["nodes"]],
    }


def test_an_action_sent_again_with_its_key_is_answered_as_taken_not_refused(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    x, y = spot
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        cid = _filed(client, x, y)
        body = {"version": 3, "payload": {"department": DEPT}, "note": "请尽快处置"}
        keyed = {**DISPATCHER, "Idempotency-Key": "dispatch-0001"}
        first = client.post(f"/cases/{cid}/actions/dispatch", json=body, headers=keyed)
        assert first.status_code == 200, first.text
        assert "idempotent-replayed" not in first.headers
        assert (first.json()["state"], first.json()["version"]) == ("dispatched", 4)
        before = _counts(loaded)
        again = client.post(f"/cases/{cid}/actions/dispatch", json=body, headers=keyed)
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        # the case as it is: the same step, nothing written again (the open 处置 node's time runs on)
        assert _without_running_time(again.json()) == _without_running_time(first.json())
        (running,) = [
            (a, b) for a, b in zip(first.json()["nodes"], again.json()["nodes"], strict=True) if not a["closed_at"]
        ]
        assert running[0]["elapsed_h"] <= running[1]["elapsed_h"]
        assert _counts(loaded) == before
        # the key in the body is the same key
        in_body = client.post(
            f"/cases/{cid}/actions/dispatch", json={**body, "idempotency_key": "dispatch-0001"}, headers=DISPATCHER
        )
        assert (in_body.status_code, in_body.headers["idempotent-replayed"]) == (200, "true")
        # without the key the same request is what it always was: a stale version
        stale = client.post(f"/cases/{cid}/actions/dispatch", json=body, headers=DISPATCHER)
        assert stale.status_code == 409 and stale.json()["error"] == "stale_version"
        assert _counts(loaded) == before
        assert _steps(loaded, cid) == [
            ("report", 1, None),
            ("verify", 2, None),
            ("file", 3, None),
            ("dispatch", 4, "dispatch-0001"),
        ]


def test_a_key_reused_for_another_action_on_the_case_is_409_naming_the_step_and_writes_nothing(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    x, y = spot
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        cid = _filed(client, x, y)
        keyed = {**DISPATCHER, "Idempotency-Key": "k-1"}
        body = {"version": 3, "payload": {"department": DEPT}}
        assert client.post(f"/cases/{cid}/actions/dispatch", json=body, headers=keyed).status_code == 200
        before = _counts(loaded)
        for path, sent, headers in (
            ("dispatch", {**body, "note": "改了备注"}, keyed),  # the form changed after its answer was lost
            ("dispatch", body, {**keyed, "X-Actor": quote("别人")}),  # another dispatcher's request
            ("supervise", {"version": 4}, {**LEAD, "Idempotency-Key": "k-1"}),  # another action
        ):
            r = client.post(f"/cases/{cid}/actions/{path}", json=sent, headers=headers)
            assert r.status_code == 409, r.text
            assert r.json()["error"] == "conflict" and r.json()["reason"] == "idempotency_key_reused"
            assert r.json()["detail"] == {
                "message": "idempotency_key: 'k-1' was already used on this case for another request (dispatch "
                f"派遣, the step that made version 4); this {path} was not taken — send it with a new key",
                "items": [
                    {
                        "field": "idempotency_key",
                        "reason": "used for another request",
                        "action": "dispatch",
                        "version": 4,
                        "code": "idempotency_key_reused",
                    }
                ],
            }
        assert _counts(loaded) == before
        # A key is a case's: the same key on another case takes that case's step.
        other = _filed(client, x, y)
        r = client.post(f"/cases/{other}/actions/dispatch", json=body, headers=keyed)
        assert (r.status_code, r.json()["state"], "idempotent-replayed" in r.headers) == (200, "dispatched", False)


def test_a_refused_action_keeps_nothing_under_its_key(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    """The operator fixes the form and sends it with the same key: the step is taken (the refusal stored none)."""
    x, y = spot
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        cid = _filed(client, x, y)
        keyed = {**LEAD, "Idempotency-Key": "void-1"}
        refused = client.post(f"/cases/{cid}/actions/void", json={"version": 3}, headers=keyed)
        assert refused.status_code == 422 and refused.json()["reason"] == "missing"
        done = client.post(
            f"/cases/{cid}/actions/void", json={"version": 3, "payload": {"reason": "重复"}}, headers=keyed
        )
        assert (done.status_code, done.json()["state"], "idempotent-replayed" in done.headers) == (200, "voided", False)
        assert _steps(loaded, cid)[-1] == ("void", 4, "void-1")


def test_blank_and_disagreeing_action_keys_are_refused_by_where_they_came(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    x, y = spot
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        cid = _filed(client, x, y)
        before = _counts(loaded)
        url = f"/cases/{cid}/actions/dispatch"
        body: dict[str, Any] = {"version": 3, "payload": {"department": DEPT}}
        r = client.post(url, json=body, headers={**DISPATCHER, "Idempotency-Key": "  "})
        assert r.status_code == 422 and r.json()["reason"] == "string_too_short"
        assert r.json()["detail"]["message"] == (
            "Idempotency-Key: empty; send a key of 1–100 characters (a new UUID per action), or none"
        )
        assert [i["field"] for i in r.json()["detail"]["items"]] == ["Idempotency-Key"]
        r = client.post(url, json={**body, "idempotency_key": ""}, headers=DISPATCHER)
        assert r.status_code == 422 and r.json()["reason"] == "string_too_short"
        assert [i["field"] for i in r.json()["detail"]["items"]] == ["idempotency_key"]
        r = client.post(url, json={**body, "idempotency_key": "a"}, headers={**DISPATCHER, "Idempotency-Key": "b"})
        assert r.status_code == 422 and r.json()["reason"] == "value_error"
        assert [i["field"] for i in r.json()["detail"]["items"]] == ["Idempotency-Key", "idempotency_key"]
        r = client.post(url, json={**body, "idempotency_key": "x" * 101}, headers=DISPATCHER)
        assert r.status_code == 422 and r.json()["error"] == "invalid_input", r.text
        assert [(i["field"], i["code"]) for i in r.json()["detail"]["items"]] == [
            ("idempotency_key", "string_too_long")
        ]
        r = client.post(url + "/form", data={"version": "3", "department": DEPT, "idempotency_key": "\u202e"},
                        headers=DISPATCHER)  # fmt: skip
        assert r.status_code == 422 and r.json()["reason"] == "control_characters", r.text
        assert [i["field"] for i in r.json()["detail"]["items"]] == ["idempotency_key"]
        assert _counts(loaded) == before


def test_an_after_photo_action_retried_with_its_key_is_one_step_and_one_photo(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    """The form route: the same photo bytes under another file name are the same request (a phone renames what it
    resends); another photo under the key is another request."""
    x, y = spot
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        cid = _filed(client, x, y)
        client.post(f"/cases/{cid}/actions/dispatch", json={"version": 3, "payload": {"department": DEPT}},
                    headers=DISPATCHER)  # fmt: skip
        dept = {"X-Actor": quote("环卫所"), "X-Role": "department", "X-Department": DEPT, "Idempotency-Key": "handle-9"}
        url = f"/cases/{cid}/actions/handle/form"
        form = {"version": "4", "result": "已清运"}
        photo = _jpeg(90)
        first = client.post(url, data=form, files={"photos": ("a.jpg", photo, "image/jpeg")}, headers=dept)
        assert first.status_code == 200 and first.json()["state"] == "handled", first.text
        before = _counts(loaded)
        again = client.post(url, data=form, files={"photos": ("IMG_0001.jpg", photo, "image/jpeg")}, headers=dept)
        assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
        assert len(again.json()["photos"]) == len(first.json()["photos"])
        other = client.post(url, data=form, files={"photos": ("a.jpg", _jpeg(40), "image/jpeg")}, headers=dept)
        assert other.status_code == 409 and other.json()["reason"] == "idempotency_key_reused"
        assert _counts(loaded) == before


def test_two_retries_at_once_take_the_step_once(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    x, y = spot
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        cid = _filed(client, x, y)
        answers: list[tuple[int, str | None]] = []
        barrier = threading.Barrier(2)

        def send() -> None:
            barrier.wait()
            r = client.post(
                f"/cases/{cid}/actions/dispatch",
                json={"version": 3, "payload": {"department": DEPT}},
                headers={**DISPATCHER, "Idempotency-Key": "twice"},
            )
            answers.append((r.status_code, r.headers.get("idempotent-replayed")))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers, key=lambda a: str(a[1])) == [(200, None), (200, "true")]
        assert [s[0] for s in _steps(loaded, cid)].count("dispatch") == 1
