"""Field definitions the standards give for exported layers, from ``data/catalogue/export_fields.csv``.

``layer,field,type,length,name_zh,source``: one row per field of an exported layer (``components``: GB/T 47678.5
表2, the 18 standard attributes; ``unit_grids``: the codes and names whose lengths a standard gives;
``tier1_grids`` … ``tier3_grids``: the management grids' codes). ``type`` is ``text`` (``length`` = the standard's
length, taken as bytes in the file's encoding as a DBF field width is) or ``date`` (``length`` 8, YYYYMMDD). The
Shapefile writer declares text fields with these widths (:func:`gisgrid.vectorio.write_layer` ``text_lengths``); a
component export declares its date fields from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gisgrid import cityfiles
from gisgrid.errors import ConfigError
from gisgrid.settings import default_catalogue_dir

FILE = "export_fields.csv"
COLUMNS = ("layer", "field", "type", "length", "name_zh", "source")
_TYPES = ("text", "date")

#: GB/T 47678.5 表2 field of a components export → the ``components`` column it holds: the export's SELECT
#: (:data:`gisgrid.components_store.EXPORT_SQL`) and the map's ``--color-by`` (which takes either name) read it.
#: The name fields (ZGBMMC, QSDWMC, YHDWMC, SZJDMC, SZSQMC) are joined from the departments and admin units.
COMPONENT_COLUMNS: dict[str, str] = {
    "GLBJBSM": "id",
    "GLBJMC": "name",
    "ZGBMDM": "main_dept_code",
    "QSDWDM": "owner_dept_code",
    "YHDWDM": "maint_dept_code",
    "SZDYWGBSM": "unit_grid_code",
    "GLBJZT": "status",
    "CSRQ": "initial_date",
    "BGRQ": "change_date",
    "SJLY": "data_source",
    "BZ": "note",
    "SZJDDM": "street_code",
    "SZSQDM": "community_code",
}


@dataclass(frozen=True)
class ExportField:
    layer: str
    field: str
    type: str
    length: int
    name_zh: str
    source: str


@cache
def load_export_fields(path: Path | None = None) -> tuple[ExportField, ...]:
    """Every row of the file (``data/catalogue/export_fields.csv`` by default), checked: a bad row is a ConfigError
    naming the file, line and column. Always the package's file, never a ``GISGRID_CATALOGUE_DIR`` copy's: the
    widths are the standards', not a city's choice (``data/catalogue/README.md``)."""
    path = path or default_catalogue_dir() / "catalogue" / FILE
    table = cityfiles.read_csv(path, "export fields file", ConfigError)
    if table.header != list(COLUMNS):
        raise ConfigError(f"{path}: expected the columns {','.join(COLUMNS)}, found {table.header}")
    rows: list[ExportField] = []
    seen: set[tuple[str, str]] = set()
    for line, row in table.rows:
        length = row["length"]
        if row["type"] not in _TYPES:
            raise ConfigError(f"{path}: line {line}, column type: {row['type']!r} is not one of {_TYPES}")
        if not length.isdigit() or int(length) < 1:
            raise ConfigError(f"{path}: line {line}, column length: {length!r} is not a positive whole number")
        key = (row["layer"], row["field"])
        if key in seen:
            raise ConfigError(f"{path}: line {line}: field {row['field']!r} of {row['layer']!r} listed twice")
        seen.add(key)
        rows.append(ExportField(row["layer"], row["field"], row["type"], int(length), row["name_zh"], row["source"]))
    return tuple(rows)


def text_lengths(layer: str) -> dict[str, int]:
    """``{field: length}`` of the text fields of ``layer`` (empty for a layer the file does not list)."""
    return {f.field: f.length for f in load_export_fields() if f.layer == layer and f.type == "text"}


def date_fields(layer: str) -> tuple[str, ...]:
    """The date fields of ``layer``, in the file's order."""
    return tuple(f.field for f in load_export_fields() if f.layer == layer and f.type == "date")
