"""`secinf route`: the routing proxy in front of every shard's PostgREST and file service
(workers/route; docs/scale.md, "The HTTP API")."""

from __future__ import annotations

import typer

from workers import logs
from workers.cli.output import console
from workers.settings import load_settings


def route_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8700, "--port", min=1, max=65535, help="Port to listen on."),
    log_level: str = typer.Option("info", "--log-level",
                                  help="uvicorn's log level (debug, info, warning, error)."),
) -> None:
    """Route HTTP requests to the shard of their project: a JWT's project_id claim, a file
    URL's project, a key exchange tried on each shard (needs SECINF_SHARDS)."""
    import uvicorn

    from workers.route.app import make_app
    from workers.route.table import RouteTable

    settings = load_settings()
    app = make_app(settings)  # refuses without a shard map, naming the fix
    shards = RouteTable(settings).all()
    missing = [s.shard for s in shards if s.api_url is None or s.files_url is None]
    console.print(f"routing {len(shards)} shard(s) on http://{host}:{port}"
                  + (f"; without an --api-url or --files-url: {', '.join(missing)} "
                     "(`secinf shards add NAME CONNINFO --api-url URL --files-url URL`)"
                     if missing else ""), highlight=False)
    logs.configure(settings.log_format)
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=True,
                server_header=False, log_config=None)
