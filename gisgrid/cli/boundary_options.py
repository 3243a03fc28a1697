"""Boundary-reading options shared by ``boundaries import`` and ``grids make``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from gisgrid.boundaries import BoundaryOptions


class Level(StrEnum):
    district = "district"
    street = "street"
    community = "community"


class SrcDatum(StrEnum):
    wgs84 = "wgs84"
    cgcs2000 = "cgcs2000"
    gcj02 = "gcj02"
    bd09 = "bd09"


LayerOpt = typer.Option(None, "--layer", help="Layer name in a multi-layer file (GeoPackage).")
LevelOpt = typer.Option(None, "--level", help="All features are at this level (else the level field or code length).")
CodeFieldOpt = typer.Option(
    "code",
    "--code-field",
    help="Field with the unit code (full 6/9/12 digits or local 3); default 'code', else 'adcode' (DataV/AMap files).",
)
NameFieldOpt = typer.Option("name", "--name-field", help="Field with the unit name.")
LevelFieldOpt = typer.Option("level", "--level-field", help="Field with district/street/community.")
ParentFieldOpt = typer.Option("parent_code", "--parent-field", help="Field with the parent's code.")
ParentNameFieldOpt = typer.Option(
    "parent_name", "--parent-name-field", help="Field naming the parent district when it is built from its streets."
)
AssignOpt = typer.Option(
    False,
    "--assign-codes",
    help="Number children without a code 001… (north→south, west→east): stored as 临时编码 provisional codes "
    "(gisgrid boundaries list --provisional).",
)
SrcCrsOpt = typer.Option(None, "--src-crs", help="CRS of the file when it has none, e.g. EPSG:4547.")
SrcDatumOpt = typer.Option(
    None, "--src-datum", help="Datum of lon/lat input: wgs84, cgcs2000, gcj02 (高德), bd09 (百度)."
)
SrcEncodingOpt = typer.Option(
    None,
    "--src-encoding",
    help="Text encoding of a Shapefile/CSV, e.g. gbk, big5, latin-1. Default: the .cpg or DBF language driver; "
    "with neither, UTF-8 if the text is valid UTF-8, else GB18030 (GBK), noted in the report.",
)
DistrictCodeOpt = typer.Option(None, "--district-code", help="Parent district code (GB/T 2260) for a street file.")
DistrictNameOpt = typer.Option(None, "--district-name", help="Name of that district, e.g. 东城区.")


def boundary_options(
    layer: str | None,
    level: Level | None,
    code_field: str,
    name_field: str,
    level_field: str,
    parent_field: str,
    parent_name_field: str,
    assign_codes: bool,
    src_crs: str | None,
    src_datum: SrcDatum | None,
    district_code: str | None,
    district_name: str | None,
    src_encoding: str | None = None,
) -> BoundaryOptions:
    return BoundaryOptions(
        layer=layer,
        level=level.value if level else None,
        code_field=code_field,
        name_field=name_field,
        level_field=level_field,
        parent_field=parent_field,
        parent_name_field=parent_name_field,
        assign_codes=assign_codes,
        src_crs=src_crs,
        src_datum=src_datum.value if src_datum else None,
        district_code=district_code,
        district_name=district_name,
        src_encoding=src_encoding,
    )


def existing_file(path: Path) -> Path:
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist")
    return path
