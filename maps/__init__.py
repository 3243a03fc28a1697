"""The operator map console: self-hosted front-end assets (no CDN), vector tiles from PostGIS, the folium page.

- ``maps.assets``: pinned npm/PyPI assets, installed at setup and served under ``/static/vendor``; folium's
  class-level CDN links replaced by local ones once per process.
- ``maps.tiles_sql``: the ``ST_AsMVT`` SQL for the tile layers (no domain imports).
- ``maps.console``: builds the zh-CN console page (folium map + side panel).
"""
