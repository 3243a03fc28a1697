"""Load the synthetic demo district into the database: boundaries → unit grids → tiers → staff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from gisgrid.boundaries import BoundaryOptions
from gisgrid.demo import DEMO_DISTRICT_CODE, write_demo_district
from gisgrid.grids import workflows

#: Tier-3 size for the demo: ~38,400 unit grids / 56 ≈ 680 tier-3 grids, as in the seed district.
DEMO_TIER3_SIZE = 56

_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
    "阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬斌宇浩凯健俊帆帅旭宁亮晨辉鹏飞峰海波"


def demo_staff(grid_codes: list[str], seed: int) -> pd.DataFrame:
    """Deterministic fictitious staff: one 网格长 and two 网格员 per tier-3 grid."""
    rng = np.random.default_rng(seed)
    rows = []
    for code in grid_codes:
        for role in ("网格长", "网格员", "网格员"):
            name = rng.choice(list(_SURNAMES)) + "".join(rng.choice(list(_GIVEN), size=int(rng.integers(1, 3))))
            phone = "1" + str(rng.choice([38, 39, 58, 59, 86, 87])) + f"{int(rng.integers(0, 10**8)):08d}"
            rows.append({"grid_code": code, "role": role, "name": name, "phone": phone})
    return pd.DataFrame(rows)


def demo_loaded(engine: Engine) -> bool:
    with engine.connect() as conn:
        t3 = conn.execute(
            text("SELECT count(*) FROM management_grids WHERE tier = 3 AND code LIKE :p"),
            {"p": DEMO_DISTRICT_CODE + "%"},
        ).scalar_one()
    return bool(t3)


def load_demo(engine: Engine, folder: Path, *, seed: int = 2004, force: bool = False, echo: Callable = print) -> str:
    if demo_loaded(engine) and not force:
        return "demo district Z区 already loaded (use --force to reload)"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_demo_district(folder / "z_district.gpkg", seed=seed)
    echo(f"demo boundaries written to {path}")
    imported = workflows.import_boundaries(engine, path, BoundaryOptions(layer="boundaries"))
    echo(f"boundaries: {len(imported.boundaries.units)} units (EPSG:{imported.metric_epsg})")
    generated = workflows.generate_grids(engine, district=DEMO_DISTRICT_CODE)
    echo(f"unit grids: {generated.cells}")
    tiers = workflows.build_tiers(engine, target_size=DEMO_TIER3_SIZE, district=DEMO_DISTRICT_CODE)
    echo(f"tiers: {tiers.tier1} / {tiers.tier2} / {tiers.tier3}")
    with engine.connect() as conn:
        codes = list(conn.execute(text("SELECT code FROM management_grids WHERE tier = 3 ORDER BY code")).scalars())
    staff_csv = folder / "z_district_staff.csv"
    demo_staff(codes, seed).to_csv(staff_csv, index=False, encoding="utf-8")
    n = workflows.import_staff(engine, staff_csv)
    return (
        f"demo district Z区 loaded: {len(imported.boundaries.units)} units, {generated.cells} unit grids, "
        f"{tiers.tier3} tier-3 grids with staff for {n}"
    )
