"""The printed orders of a case (交办单 dispatch order, 督办单 supervision order): what a stored order shows, from
the case as :func:`gisgrid.cases.get_case` gives it, laid out as the page the service serves, a file opened away
from it (photos inline) or a PDF.

An order is issued by the action that has it as an effect (:func:`gisgrid.case_actions.act`, in the action's
transaction); its number is :func:`gisgrid.documents.document_number`. The page itself (map sketch, template,
PDF layout) is :mod:`gisgrid.documents`; this module reads the case, its grids and photos for it.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import shapely
from PIL import Image
from sqlalchemy import Connection, Engine, text

from gisgrid import routing, workflow
from gisgrid.cases import CaseServices, decision_from_json, event_class, get_case
from gisgrid.documents import (
    DEFAULT_ISSUING_BODY,
    OrderData,
    UnreadablePhoto,
    render_dispatch_order,
    render_pdf,
    render_supervision_order,
)
from gisgrid.errors import NotFound
from gisgrid.node_clock import LOCAL_TZ, disposal_limit
from gisgrid.photos import PhotoStore, PhotoUnreadable

log = logging.getLogger(__name__)


def render_document(
    conn: Connection,
    services: CaseServices,
    case_id: int,
    doc_id: int,
    *,
    embed_photos: bool = False,
    base: str = "",
    issuing_body: str = DEFAULT_ISSUING_BODY,
) -> str:
    """The printable 交办单 / 督办单 of a case, with a small offline map of its unit grid. The photos are the
    service's URLs and the page links its PDF (the page the service serves), or with ``embed_photos`` inline
    ``data:`` URIs of their print copies (:meth:`~gisgrid.photos.PhotoStore.print_copy`: at most 1,200 px, the
    PDF's; made on demand) and no link (a file opened or printed away from the service: the CLI's). A photo whose
    file is gone from the store (or, embedded, no longer decodes) is shown as a note naming it, and logged.
    ``base``: the path prefix the service is served under (:func:`~gisgrid.cases.get_case`); ``issuing_body``: the
    city's 监督指挥中心 that issues it (GISGRID_CENTER_NAME)."""
    order, photos, _, kind = _document_order(conn, services, case_id, doc_id, base=base)
    order = replace(order, issuing_body=issuing_body)
    if embed_photos:
        shown = [_embedded_photo(services, order.case_number, p) for p in photos]
        return _render_order(replace(order, photo_urls=shown, pdf_url=None), kind)
    shown = [_served_photo(services, order.case_number, p) for p in photos]
    return _render_order(replace(order, photo_urls=shown), kind)


def render_document_pdf(
    engine: Engine, services: CaseServices, case_id: int, doc_id: int, *, issuing_body: str = DEFAULT_ISSUING_BODY
) -> tuple[bytes, str]:
    """The order as an A4 PDF, laid out from the page :func:`render_document` serves (its photos read from the
    photo store, never over HTTP), and the PDF's file name: the order's number, e.g. ``JB2025000001-01.pdf``.
    The photos are embedded as their print copies (:meth:`~gisgrid.photos.PhotoStore.print_copy`: at most
    1,200 px, made once per photo and kept); a photo whose file is missing or no longer decodes is printed as a
    note naming it (and logged), never failing the order. The same page with the same photos is served from the
    PDF cache (:func:`~gisgrid.documents.render_pdf`) — the page is made afresh from the case each time, so a change
    to anything the order shows (a photo's file mended, too) makes a new PDF. :class:`~gisgrid.errors.Unavailable`
    when WeasyPrint or Pango is missing."""
    with engine.connect() as conn:  # given back before the layout, which takes a while
        order, photos, number, kind = _document_order(conn, services, case_id, doc_id)
    order = replace(order, issuing_body=issuing_body)
    # The copies are made here, in the photo store's decode slots, not under the PDF layout's lock.
    files: dict[str, tuple[Path, str]] = {}
    shown: list[str | UnreadablePhoto] = []
    for p in photos:
        copy = _print_copy(services, order.case_number, p)
        if isinstance(copy, Path):
            files[p["url"]] = (copy, "image/jpeg")
            shown.append(p["url"])
        else:
            shown.append(copy)
    page = _render_order(replace(order, photo_urls=shown), kind)
    name = re.sub(r"[^0-9A-Za-z._-]", "_", number or f"case{case_id}-document{doc_id}")
    return render_pdf(page, files), f"{name}.pdf"


def _unreadable(case_no: str, photo: Mapping[str, Any], why: str) -> UnreadablePhoto:
    """The note an order shows for a photo it cannot read, logged for whoever looks after the photo store."""
    name = PhotoStore.file_name(photo["sha256"], photo["content_type"])
    log.warning("case %s: photo %s cannot be read (%s); its order shows a note in its place", case_no, name, why)
    return UnreadablePhoto(name)


def _print_copy(services: CaseServices, case_no: str, photo: Mapping[str, Any]) -> Path | UnreadablePhoto:
    """The photo's print copy, or the note for it when its file is gone or no longer decodes."""
    try:
        return services.photos.print_copy(photo["sha256"])
    except NotFound:
        return _unreadable(case_no, photo, "its file is missing from the photo store")
    except PhotoUnreadable as exc:
        return _unreadable(case_no, photo, f"its file is damaged: {exc.cause}")


def _embedded_photo(services: CaseServices, case_no: str, photo: Mapping[str, Any]) -> str | UnreadablePhoto:
    """An inline ``data:`` URI of the photo's print copy (a file that opens offline; the original may be tens of
    MB), or the note for it."""
    copy = _print_copy(services, case_no, photo)
    if not isinstance(copy, Path):
        return copy
    return "data:image/jpeg;base64," + base64.b64encode(copy.read_bytes()).decode("ascii")


def _served_photo(services: CaseServices, case_no: str, photo: Mapping[str, Any]) -> str | UnreadablePhoto:
    """The photo's URL on the served page, or the note for it when its file is gone or its header unreadable (what
    is found without decoding it: a page is served often; a truncated file still shows as far as it goes)."""
    try:
        path = services.photos.open(photo["sha256"])
        stat = path.stat()
    except (NotFound, FileNotFoundError):
        return _unreadable(case_no, photo, "its file is missing from the photo store")
    problem = photo_header_problem(str(path), stat.st_mtime_ns, stat.st_size)
    if problem is not None:
        return _unreadable(case_no, photo, f"its file is damaged: {problem}")
    return str(photo["url"])


@functools.lru_cache(maxsize=4096)
def photo_header_problem(path: str, mtime_ns: int, size: int) -> str | None:
    """Why the image header at ``path`` does not open, or None. Cached by the file's mtime and size: a page is
    served on every view, and a stored photo only changes when its file is replaced or damaged."""
    try:
        with Image.open(path):
            pass
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError … on a damaged header
        return f"{type(exc).__name__}: {exc}"
    return None


def dispatch_basis(decision: dict[str, Any], step: dict[str, Any]) -> str | None:
    """The 派遣依据 of one 派遣 (its log entry ``step``; ``decision``: the case's stored decision now): the
    routing's own explanation for a dispatch as suggested, that dispatch's own override (改派原因, who, when) for a
    改派 or 人工派遣. A step logged before the log named its basis is matched by its department and dispatcher to
    the choices recorded (the latest such), else to the routing's own department; None when neither fits."""
    details = step.get("details") or {}
    basis = details.get("routing_basis")
    if decision.get("department") is None and decision.get("queue") is None:
        return None  # no stored decision (an imported case)
    stored = decision_from_json(decision)
    own = routing.own_decision(stored)
    if basis == "routing":
        return own.explanation
    overrides = decision.get("overrides") or []
    index = details.get("override_index")
    if basis == "override" and isinstance(index, int) and 0 <= index < len(overrides):
        return overrides[index].get("explanation")
    if basis is None:
        department = details.get("department") or step.get("department_code")
        for choice in reversed(routing.past_overrides(stored)):
            if choice.department == department and choice.by == step.get("actor"):
                return choice.explanation
        if not routing.own_lost(own) and own.department is not None and own.department == department:
            return own.explanation
    return None


def _render_order(order: OrderData, kind: str) -> str:
    return (render_supervision_order if kind == "supervision" else render_dispatch_order)(order)


def _document_order(
    conn: Connection, services: CaseServices, case_id: int, doc_id: int, *, base: str = ""
) -> tuple[OrderData, list[dict[str, Any]], str | None, str]:
    """What the order shows (its photos as the service's URLs, its PDF link), the photos it shows (the case's photo
    entries), the order's number and its kind (dispatch, supervision)."""
    doc = (
        conn.execute(text("SELECT * FROM case_documents WHERE id = :d AND case_id = :c"), {"d": doc_id, "c": case_id})
        .mappings()
        .first()
    )
    if doc is None:
        raise NotFound(f"case {case_id} has no document {doc_id}")
    case = get_case(conn, services, case_id, base=base)  # the PDF's base is "": its photos are looked up by URL
    grids = conn.execute(
        text(
            """
            SELECT g.code = :code AS own, ST_AsBinary(g.geom) FROM unit_grids g
            WHERE g.geom && (SELECT ST_Expand(geom, 0.0015) FROM unit_grids WHERE code = :code)
            """
        ),
        {"code": case["unit_grid_code"]},
    ).all()
    own = next((shapely.from_wkb(bytes(w)) for o, w in grids if o), None)
    if own is None:
        raise NotFound(f"unit grid {case['unit_grid_code']} of case {case_id} is no longer stored")
    names: dict[str, str] = dict(
        conn.execute(
            text("SELECT code, name FROM management_grids WHERE code = ANY(:c)"),
            {"c": [c for c in (case["street_code"], case["community_code"], case["tier3_code"]) if c]},
        ).all()
    )
    ev = event_class(services, case["scheme"], case["class_code"])
    disposal_type = case["disposal_type"]
    due = doc["due_at"] or (dt.datetime.fromisoformat(case["due_at"]) if case["due_at"] else None)
    decision = (case["routing"] or {}).get("decision") or {}
    routing_reason = decision.get("explanation") or ""
    issued = doc["issued_at"].astimezone(LOCAL_TZ)
    rework_count, rework_reason, checked_by, checked_at = 0, None, None, None
    # The log step that issued the order (派遣, 返工 or 督办), by its place in the case's timeline (at, id).
    place = conn.execute(
        text(
            "SELECT count(*) FROM case_transitions t, case_transitions s WHERE s.id = :s AND t.case_id = s.case_id "
            "AND (t.at, t.id) <= (s.at, s.id)"
        ),
        {"s": doc["transition_id"]},
    ).scalar_one()
    until = case["timeline"][:place]  # the log up to that step
    step = until[-1] if until else None
    if doc["kind"] == "dispatch":
        # The disposal type the order was issued with (a later 派遣 may change the case's): recorded by the step.
        disposal_type = ((step or {}).get("details") or {}).get("disposal_type") or disposal_type
        if step is not None:  # a 返工's order goes where the last 派遣 before it sent the case, on that basis
            sent = next((t for t in reversed(until) if t["action"] == "dispatch"), None)
            routing_reason = (dispatch_basis(decision, sent) if sent else None) or routing_reason
        if step is not None and step["action"] == "rework":
            rework_count = sum(t["action"] == "rework" for t in until)
            rework_reason = doc["reason"] or (step["details"] or {}).get("reason") or step["note"]
            role = workflow.ROLES.get(step["role"] or "", step["role"] or "")
            checked_by = step["actor"] + (f"（{role}）" if role and role != step["actor"] else "")
            checked_at = dt.datetime.fromisoformat(step["at"])
    # A 督办单 is a 重点督办 when its 督办 was flagged.
    key_supervision = doc["kind"] == "supervision" and step is not None and bool((step["details"] or {}).get("flagged"))
    limit = disposal_limit(services, ev, disposal_type)
    photos = [p for p in case["photos"] if p["kind"] == "before"]
    captions: list[str] = []  # a plain order's photos are the report's: 照片 N
    if rework_count:  # the department sent back sees what failed: the last 处置's after-photos, the 核查's evidence
        captions = ["上报照片"] * len(photos)
        handled = next((t for t in reversed(until) if t["action"] == "handle"), None)
        for action, at_step, caption in (("handle", handled, "处置后照片(核查未通过)"), ("rework", step, "返工取证")):
            shot = [
                p for p in case["photos"] if at_step and (p["action"], p["version"]) == (action, at_step["version"])
            ]
            photos += shot
            captions += [caption] * len(shot)
    order = OrderData(
        case_number=case["case_no"],
        class_code=case["class_code"],
        class_name=ev.name,
        matter_code=case["matter_code"],
        description=case["description"] or "",
        lon=case["lon"],
        lat=case["lat"],
        unit_grid_code=case["unit_grid_code"],
        unit_grid=own,
        department_code=doc["department_code"] or "",
        department_name=services.departments.get(doc["department_code"] or "", ""),
        routing_reason=routing_reason,
        due_at=(due or issued).astimezone(LOCAL_TZ),
        time_limit=limit.limit,
        time_limit_unit=limit.unit,
        issued_at=issued,
        issuer=doc["issued_by"] or "",
        address=case["address"],
        tier1_name=names.get(case["street_code"]),
        tier2_name=names.get(case["community_code"]),
        tier3_name=names.get(case["tier3_code"]),
        neighbours=[shapely.from_wkb(bytes(w)) for o, w in grids if not o],
        photo_urls=[p["url"] for p in photos],
        photo_captions=captions,
        order_number=doc["number"],
        overdue=(
            max(
                0.0,
                services.calendar.working_time_between(due, issued, limit.unit),
            )
            if doc["kind"] == "supervision" and due is not None
            else None
        ),
        hours_per_day=services.calendar.hours.hours_per_day,
        supervision_reason=doc["reason"] or ("超期未办结" if doc["kind"] == "supervision" else None),
        key_supervision=key_supervision,
        disposal_type=limit.disposal_type,
        urgent=bool(limit.urgent),
        rework_count=rework_count,
        rework_reason=rework_reason,
        rework_checked_by=checked_by,
        rework_checked_at=checked_at,
        pdf_url=f"{base}/cases/{case_id}/documents/{doc_id}.pdf",
    )
    return order, photos, doc["number"], doc["kind"]
