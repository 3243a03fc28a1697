"""Benchmark (not a test): the time of one PDF order with a big photo (security review D4/D5).

    .venv/bin/python scripts/bench/pdf_photo.py [--edge 7000]

Stores one ``--edge``×``--edge`` RGBA PNG (49 MP at 7000, just under ``MAX_PIXELS``; about 200 KB, 196 MB decoded)
in a temporary photo store and lays out a 交办单 showing it, as ``render_document_pdf`` does, timing (wall and this
process's CPU):

- ``before``: the original photo handed to WeasyPrint, which decodes it whole in the layout (the code before the fix;
  every request, under the one-layout-at-a-time lock);
- ``first PDF``: the photo's print copy made (one decode of the original) and the page laid out with it;
- ``another order, same photo``: the print copy found on disk, the page (a different one) laid out;
- ``same order again``: served from the PDF cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def timed(label: str, run: Callable[[], object]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    print(f"{label:28} {time.perf_counter() - wall:6.2f} s wall  {time.process_time() - cpu:6.2f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edge", type=int, default=7000, help="the photo's width and height in pixels")
    args = parser.parse_args()

    import io

    from PIL import Image
    from shapely.geometry import box

    from gisgrid import documents
    from gisgrid.constants import LOCAL_TZ
    from gisgrid.photos import PhotoStore, inspect_photo

    with tempfile.TemporaryDirectory() as folder:
        buf = io.BytesIO()
        Image.new("RGBA", (args.edge, args.edge), (200, 80, 40, 255)).save(buf, "PNG", compress_level=9)
        data = buf.getvalue()
        store = PhotoStore(Path(folder))
        stored = store.save(data, inspect_photo(data))
        url = f"/cases/1/photos/{stored.sha256}"
        order = documents.OrderData(
            case_number="2026000001", class_code="06010", class_name="暴露垃圾", matter_code=None,
            description="人行道上堆放建筑垃圾", lon=113.6318, lat=34.7513, unit_grid_code="410105001001003",
            unit_grid=box(113.630, 34.750, 113.633, 34.753), department_code="990000000000000003",
            department_name="区环境卫生服务中心", routing_reason="类别规则",
            due_at=datetime(2026, 11, 27, 10, tzinfo=LOCAL_TZ), time_limit=4, time_limit_unit="working_hours",
            issued_at=datetime(2026, 11, 26, 15, 30, tzinfo=LOCAL_TZ), issuer="王调度", photo_urls=[url],
        )  # fmt: skip
        page = documents.render_dispatch_order(order)
        print(f"photo: {args.edge}×{args.edge} PNG, {len(data) / 1024:.0f} KB, sha256 {stored.sha256[:12]}…")
        documents.render_pdf(documents.render_dispatch_order(replace(order, photo_urls=[])))  # fonts loaded once

        original = {url: (store.open(stored.sha256), "image/png")}
        timed("before (original photo)", lambda: documents.render_pdf(page, original))
        documents.clear_pdf_cache()

        def printed(html: str) -> bytes:
            return documents.render_pdf(html, {url: (store.print_copy(stored.sha256), "image/jpeg")})

        timed("first PDF (copy made)", lambda: printed(page))
        other = documents.render_dispatch_order(replace(order, order_number="JB2026000001-02"))
        timed("another order, same photo", lambda: printed(other))
        timed("same order again (cached)", lambda: printed(page))
        copy = store.print_copy(stored.sha256)
        with Image.open(copy) as im:
            print(f"print copy: {im.size[0]}×{im.size[1]} JPEG, {copy.stat().st_size / 1024:.0f} KB ({copy.name})")


if __name__ == "__main__":
    main()
