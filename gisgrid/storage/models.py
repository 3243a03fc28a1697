"""ORM models. Geometry is stored as lon/lat in CGCS2000 (EPSG:4490, see docs/architecture.md);
metric work happens in the district's projected CRS (``admin_units.metric_srid``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gisgrid.constants import STORAGE_SRID


def _gist(table: str) -> Index:
    return Index(f"idx_{table}_geom", "geom", postgresql_using="gist")


def _geom(kind: str) -> Geometry:
    # spatial_index=False: the migrations create each GiST index explicitly, exactly once.
    return Geometry(kind, srid=STORAGE_SRID, spatial_index=False)


class Base(DeclarativeBase):
    pass


class AdminUnit(Base):
    """District (区, GB/T 2260 6 digits), street/township (街道乡镇, 9) or community/village (社区村, 12)."""

    __tablename__ = "admin_units"
    __table_args__ = (
        CheckConstraint("level IN ('district','street','community')", name="ck_admin_level"),
        _gist("admin_units"),
        Index("ix_admin_units_parent", "parent_code"),
    )

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("admin_units.code", ondelete="RESTRICT"))
    area_m2: Mapped[float | None] = mapped_column(Float)
    metric_srid: Mapped[int | None] = mapped_column(Integer)
    geom: Mapped[WKBElement] = mapped_column(_geom("MULTIPOLYGON"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: The code's own last part (001…) was numbered by gisgrid (--assign-codes), not taken from the source file: a
    #: provisional code to be replaced by the official one. Grids derive their flag from here (store.PROVISIONAL).
    code_assigned: Mapped[bool] = mapped_column(Boolean, server_default=false())
    #: The highest unit-grid sequence number ever issued in this unit: a regeneration numbers new cells above it,
    #: so the code of a removed cell is never given to another place (grids.numbering, migration 0021).
    grid_seq_issued: Mapped[int] = mapped_column(Integer, server_default="0")


class ManagementGrid(Base):
    """三级网格: tier 1 = street, tier 2 = community, tier 3 = building/courtyard group."""

    __tablename__ = "management_grids"
    __table_args__ = (
        CheckConstraint("tier BETWEEN 1 AND 3", name="ck_mgmt_tier"),
        _gist("management_grids"),
        Index("ix_management_grids_tier", "tier"),
    )

    code: Mapped[str] = mapped_column(String(14), primary_key=True)
    tier: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("management_grids.code", ondelete="CASCADE"))
    admin_code: Mapped[str | None] = mapped_column(String(12))
    leader_name: Mapped[str | None] = mapped_column(Text)
    leader_phone: Mapped[str | None] = mapped_column(Text)
    staff: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    geom: Mapped[WKBElement] = mapped_column(_geom("MULTIPOLYGON"))


class UnitGrid(Base):
    """万米单元网格, 15-digit code = 6 district + 3 street + 3 community + 3 sequence."""

    __tablename__ = "unit_grids"
    __table_args__ = (
        _gist("unit_grids"),
        Index("ix_unit_grids_unit", "unit_code"),
        Index("ix_unit_grids_tier3", "tier3_code"),
    )

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code", ondelete="RESTRICT"))
    district_code: Mapped[str] = mapped_column(String(6))
    street_code: Mapped[str | None] = mapped_column(String(9))
    community_code: Mapped[str | None] = mapped_column(String(12))
    seq: Mapped[int] = mapped_column(Integer)
    row: Mapped[int] = mapped_column(Integer)
    col: Mapped[int] = mapped_column(Integer)
    area_m2: Mapped[float] = mapped_column(Float)
    tier3_code: Mapped[str | None] = mapped_column(ForeignKey("management_grids.code", ondelete="SET NULL"))
    geom: Mapped[WKBElement] = mapped_column(_geom("MULTIPOLYGON"))


class RetiredUnitGrid(Base):
    """A unit grid a regeneration removed: its code is retired, never given to another place, and a new cell equal
    to it (same unit, lattice row and column, boundary within ``numbering.SAME_CELL_DEG``) takes it back, leaving
    this table (``grids.numbering``, migration 0022). Goes with its unit."""

    __tablename__ = "retired_unit_grids"
    __table_args__ = (
        _gist("retired_unit_grids"),
        Index("ix_retired_unit_grids_unit", "unit_code"),
    )

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    row: Mapped[int] = mapped_column(Integer)
    col: Mapped[int] = mapped_column(Integer)
    geom: Mapped[WKBElement] = mapped_column(_geom("MULTIPOLYGON"))
    retired_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Department(Base):
    """专业部门: 主管部门 / 权属单位 / 养护单位 (code: 18-char unified social credit code or a local code)."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)


class Component(Base):
    """城市部件: a located, coded piece of public infrastructure (identifier 17 digits GB/T 47678.5, 16 CJ/T 214)."""

    __tablename__ = "components"
    __table_args__ = (
        _gist("components"),
        Index("ix_components_class_code", "class_code"),
        Index("ix_components_status", "status"),
        Index("ix_components_main_dept_code", "main_dept_code"),
        Index("ix_components_maint_dept_code", "maint_dept_code"),
        CheckConstraint("status IN ('完好', '破损', '丢失', '废弃', '移除')", name="ck_component_status"),
        CheckConstraint(
            "(scheme = 'gbt47678' AND id ~ '^[0-9]{17}$') OR (scheme = 'cjt214' AND id ~ '^[0-9]{16}$')",
            name="ck_component_id_format",
        ),
    )

    id: Mapped[str] = mapped_column(String(17), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(8), server_default="gbt47678")
    district_code: Mapped[str | None] = mapped_column(String(6))
    class_code: Mapped[str] = mapped_column(String(5))
    name: Mapped[str | None] = mapped_column(Text)
    unit_grid_code: Mapped[str | None] = mapped_column(String(15), index=True)
    street_code: Mapped[str | None] = mapped_column(String(9))
    community_code: Mapped[str | None] = mapped_column(String(12))
    main_dept_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    owner_dept_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    maint_dept_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    status: Mapped[str] = mapped_column(String(4), server_default="完好")
    initial_date: Mapped[dt.date | None] = mapped_column(Date)
    change_date: Mapped[dt.date | None] = mapped_column(Date)
    data_source: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    photos: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom: Mapped[WKBElement] = mapped_column(_geom("GEOMETRY"))


class ComponentHistory(Base):
    """Every change of a component: who, when, which fields (old → new). Kept after retirement."""

    __tablename__ = "component_history"
    __table_args__ = (Index("ix_component_history_component", "component_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    component_id: Mapped[str] = mapped_column(String(17))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(20))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    source: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)  # why: a retirement, a status out of 移除 (migration 0020)


class ComponentCell(Base):
    """Components per unit grid (count and summed centroid), kept by triggers on ``components`` (migration 0004);
    the console's component layer below zoom 16."""

    __tablename__ = "component_cells"
    __table_args__ = (_gist("component_cells"),)

    unit_grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    sx: Mapped[float] = mapped_column(Float)
    sy: Mapped[float] = mapped_column(Float)
    geom: Mapped[WKBElement] = mapped_column(_geom("POINT"), nullable=False)


class ComponentSerial(Base):
    """Last serial handed out per district + scheme + class: identifiers are never reused."""

    __tablename__ = "component_serials"

    district_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(8), primary_key=True)
    class_code: Mapped[str] = mapped_column(String(5), primary_key=True)
    last_serial: Mapped[int] = mapped_column(Integer)


class Case(Base):
    """案件: an incident located to its grid and routed through the closed-loop workflow."""

    __tablename__ = "cases"
    __table_args__ = (
        _gist("cases"),
        Index("ix_cases_state", "state"),
        Index("ix_cases_class_code", "class_code"),
        Index("ix_cases_department_code", "department_code"),
        Index("ix_cases_created_at", "created_at"),
        Index("ix_cases_tier3_code", "tier3_code"),
        Index("ux_cases_idempotency_key", "idempotency_key", unique=True),
        Index("ix_cases_updated_at_id", "updated_at", "id"),  # the change feed (changed_since, sort=updated)
        Index("ix_cases_external_ref", "external_ref", postgresql_where=text("external_ref IS NOT NULL")),
        # The open clocks by the hours they were counted under (0024): /health and the start read only these.
        Index(
            "ix_cases_open_clock_hours",
            "hours_counted",
            postgresql_where=text("state NOT IN ('closed', 'rejected', 'voided') AND due_at IS NOT NULL"),
        ),
        # One case per sending system's number (0023; rows of pairs filed before it are left out of the index).
        Index(
            "ux_cases_source_external_ref",
            "source",
            "external_ref",
            unique=True,
            postgresql_where=text("external_ref IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(20), unique=True)
    scheme: Mapped[str] = mapped_column(String(8), server_default="gbt47678")
    class_code: Mapped[str] = mapped_column(String(5))
    matter_code: Mapped[str | None] = mapped_column(String(11))
    disposal_type: Mapped[str | None] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, server_default=false())
    state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[str | None] = mapped_column(Text)
    reporter_role: Mapped[str | None] = mapped_column(String(20))
    input_lon: Mapped[float | None] = mapped_column(Float)
    input_lat: Mapped[float | None] = mapped_column(Float)
    input_datum: Mapped[str | None] = mapped_column(String(10))
    unit_grid_code: Mapped[str | None] = mapped_column(String(15), index=True)
    district_code: Mapped[str | None] = mapped_column(String(6))
    street_code: Mapped[str | None] = mapped_column(String(9))
    community_code: Mapped[str | None] = mapped_column(String(12))
    tier3_code: Mapped[str | None] = mapped_column(String(14))
    component_id: Mapped[str | None] = mapped_column(String(17))
    component_distance_m: Mapped[float | None] = mapped_column(Float)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    #: SHA-256 of the request that key filed: a retry of the same report replays, another report is refused.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    external_ref: Mapped[str | None] = mapped_column(String(64))  # the sending system's own number (12345 工单号)
    #: The reported location's accuracy in metres (a phone's GPS fix radius, as sent; null: not given).
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    previous_state: Mapped[str | None] = mapped_column(String(20))
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    escalation_level: Mapped[int] = mapped_column(SmallInteger, server_default="3")
    pending_extension: Mapped[bool] = mapped_column(Boolean, server_default=false())
    #: The running node's limit is in calendar hours (an urgent case: round the clock), not working time.
    node_calendar_time: Mapped[bool] = mapped_column(Boolean, server_default=false())
    node: Mapped[str | None] = mapped_column(String(20))
    node_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The working hours (GISGRID_WORKING_HOURS, normalised) ``due_at`` was counted under (``gisgrid.deadline_hours``,
    #: migration 0024; null: written before it, or by code older than it).
    hours_counted: Mapped[str | None] = mapped_column(Text)
    disposal_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disposal_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom: Mapped[WKBElement] = mapped_column(_geom("POINT"))


class CaseTransition(Base):
    """Append-only log of every workflow step of a case."""

    __tablename__ = "case_transitions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    version: Mapped[int | None] = mapped_column(Integer)
    department_code: Mapped[str | None] = mapped_column(String(18))
    effects: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    #: The key of the request that took the step (unique per case, migration 0017) and that request's fingerprint:
    #: a retry answers with the step taken, another request under the key is refused.
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(
            "uq_case_transitions_idempotency_key",
            "case_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )


class CasePhoto(Base):
    """A photo of a case, stored content-addressed on disk (before = reported, after = handled)."""

    __tablename__ = "case_photos"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    #: The log entry the photo came with (上报, 处置, 返工 …); NULL for photos stored before migration 0010.
    transition_id: Mapped[int | None] = mapped_column(ForeignKey("case_transitions.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    relpath: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), server_default="before")
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    gps_lon: Mapped[float | None] = mapped_column(Float)
    gps_lat: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseDocument(Base):
    """交办单 (dispatch order) and 督办单 (supervision order) issued for a case."""

    __tablename__ = "case_documents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(String(30), unique=True)
    department_code: Mapped[str | None] = mapped_column(String(18))
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    issued_by: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    #: The log step that issued it (派遣, 返工 or 督办): what the order prints of that step is read there.
    transition_id: Mapped[int | None] = mapped_column(ForeignKey("case_transitions.id", ondelete="CASCADE"))
