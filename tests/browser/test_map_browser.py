"""A ``gisgrid map render`` folder opened from file:// in headless Chromium: everything loads from the folder."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from maps import render
from tests.browser.conftest import LiveServer, Tab

CANVAS_PIXELS = """() => {
  let n = 0;
  document.querySelectorAll(".leaflet-overlay-pane canvas").forEach((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) { if (d[i]) { n += 1; } }
  });
  return n;
}"""


def test_a_rendered_map_opens_offline_from_the_file_system(
    desk: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    with clean_db.connect() as conn:
        done = render.render(conn, layer="grids", tier="unit", column="area_m2", out=tmp_path / "单元网格.html")
    desk.context.set_offline(True)  # no network at all: the folder must be enough
    desk.page.goto(done.html.as_uri())
    desk.page.wait_for_function("() => window.L && document.querySelector('.leaflet-overlay-pane canvas')")
    desk.page.wait_for_function(f"() => ({CANVAS_PIXELS})() > 1000")
    assert desk.page.locator("#gg-legend li").count() == len(done.legend) >= 2
    assert all(u.startswith("file://") for u in desk.watch.requests), desk.watch.requests
    assert any(u.endswith("/leaflet.js") for u in desk.watch.requests)
    assert not desk.watch.failed, desk.watch.failed
    desk.shot("map")
