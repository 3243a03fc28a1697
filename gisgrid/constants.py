"""The facts every module shares, each said once: the zone local times are in and the storage CRS. Standard
library only, so that the pure domain modules may import it (tests/test_layering.py); gisgrid.settings re-exports
``STORAGE_SRID`` for the migrations that import it from there."""

from __future__ import annotations

from zoneinfo import ZoneInfo

#: The zone of every local time (deadlines and working hours, routing's time windows, printed orders, the API's
#: times): China Standard Time, +08:00 all year (no DST). The name, for pandas and the calendars' ``tz``.
LOCAL_TZ_NAME = "Asia/Shanghai"
LOCAL_TZ = ZoneInfo(LOCAL_TZ_NAME)

#: The storage CRS of all geometry: CGCS2000 geographic lon/lat (docs/architecture.md). SQL interpolates the SRID
#: (``ST_SetSRID(…, {STORAGE_SRID})``); geopandas and pyproj take either.
STORAGE_SRID = 4490
STORAGE_CRS = f"EPSG:{STORAGE_SRID}"
