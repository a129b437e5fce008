"""`secinf serve`: the file service (workers/files; docs/files.md) on one address."""

from __future__ import annotations

import psycopg
import typer

from workers import logs
from workers.base_url import base_url
from workers.cli.output import console
from workers.db.connect import connect
from workers.db.queries import query
from workers.errors import UserError
from workers.settings import Settings, load_settings


def set_public_url(settings: Settings, url: str) -> str:
    """Make `url` the base of every signed URL (files.service.base_url); returns it."""
    base = base_url(url, "--public-url", "https://files.example.com")
    with connect(settings) as conn:
        try:
            with conn.transaction():
                conn.execute(query("file_service", "set_base_url"), {"base_url": base})
        except psycopg.errors.InsufficientPrivilege as exc:
            raise UserError(
                f"cannot set the public URL as this login ({exc.diag.message_primary}): run "
                "`secinf serve --public-url` once as the database owner or an admin, then "
                "start the service as `pipeline`") from exc
    return base


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8600, "--port", min=1, max=65535, help="Port to listen on."),
    public_url: str | None = typer.Option(
        None, "--public-url", help="Where clients reach the service (e.g. "
        "https://files.example.com): stored as files.service.base_url, the base of every "
        "signed URL. Default: leave it as it is."),
    log_level: str = typer.Option("info", "--log-level",
                                  help="uvicorn's log level (debug, info, warning, error)."),
) -> None:
    """Serve signed downloads and uploads (GET/PUT /files/…, /healthz, /openapi.json)."""
    import uvicorn

    from workers.files.app import app_from_settings

    settings = load_settings()
    if public_url is not None:
        base = set_public_url(settings, public_url)
        console.print(f"signed URLs now point at {base}", highlight=False)
    else:
        with connect(settings) as conn:
            row = conn.execute(query("file_service", "base_url")).fetchone()
        console.print(f"signed URLs point at {row['base_url'] if row else '?'} "
                      "(change it with --public-url)", highlight=False)
    # Client addresses from X-Forwarded-For only when the proxy is trusted: uvicorn's
    # --forwarded-allow-ips (FORWARDED_ALLOW_IPS), 127.0.0.1 by default.
    logs.configure(settings.log_format)
    uvicorn.run(app_from_settings(settings), host=host, port=port, log_level=log_level,
                proxy_headers=True, server_header=False, log_config=None)
