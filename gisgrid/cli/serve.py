"""``gisgrid serve``: run the API and pages with uvicorn."""

from __future__ import annotations

import typer

from gisgrid.cli.common import echo, settings_of
from gisgrid.storage.database import prepare_database


def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Bind address (default GISGRID_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default GISGRID_PORT, 8000)."),
) -> None:
    """Serve the API (/docs), the console and the field page."""
    import uvicorn

    from api.main import create_app

    settings = settings_of(ctx)
    prepare_database(settings, echo)
    host = host or settings.host
    port = port or settings.port
    base = f"http://{host}:{port}"
    echo(
        f"gisgrid on {base}\n  console:   {base}/console\n  field:     {base}/field\n"
        f"  API docs:  {base}/docs\n  health:    {base}/health"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
