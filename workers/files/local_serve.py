"""The file service for the length of a block, on a free loopback port in a thread.

`secinf demo` downloads its dataset by signed URL and cannot assume `secinf serve` runs.
`file_service()` uses the service at files.service.base_url when its /healthz answers ok;
otherwise it starts this package's app (`app_from_settings`: the configured storage and
database) with uvicorn on 127.0.0.1, points base_url at it for the block (URLs issued
meanwhile name it) and afterwards restores the previous base_url, unless someone changed
it in between. `serve_in_thread()` is the uvicorn part alone.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import uvicorn
from fastapi import FastAPI

from workers.db.connect import connect
from workers.db.queries import query
from workers.errors import DatabaseUnavailable, SecinfError, UserError
from workers.files.download import opener_for
from workers.settings import Settings, load_settings

log = logging.getLogger("secinf.files")
HEALTH_TIMEOUT_S = 2.0
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class ServiceStartFailed(SecinfError):
    """The file service could not be started here: start it with `secinf serve`."""


@dataclass(frozen=True)
class FileService:
    """The service answering at files.service.base_url for the block."""

    base_url: str
    started: bool
    """True: started here for this block (the configured one did not answer)."""
    previous_base_url: str
    """files.service.base_url before the block (restored after it when `started`)."""
    why_started: str | None = None
    """Why the configured one was not used, in words."""


def health(base_url: str, timeout: float = HEALTH_TIMEOUT_S) -> str | None:
    """None when {base_url}/healthz answers status ok; else why not, in words."""
    try:
        with opener_for(base_url).open(f"{base_url}/healthz", timeout=timeout) as resp:
            doc = json.loads(resp.read(4096) or b"null")
    except urllib.error.HTTPError as exc:
        return f"its /healthz answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"nothing answers there ({getattr(exc, 'reason', exc)})"
    except ValueError:
        return "its /healthz does not answer JSON: it is not the file service"
    if not isinstance(doc, dict) or doc.get("status") != "ok":
        return f"its /healthz answered {str(doc)[:100]}"
    return None


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", *,
                    start_timeout: float = START_TIMEOUT_S, **config: Any) -> Iterator[str]:
    """Run `app` with uvicorn on `host` (a free port) until the block ends; yields its base
    URL. uvicorn logs warnings only and leaves the process's logging configuration alone;
    `config`: other uvicorn.Config settings (benchmarks and tests)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
    except OSError as exc:
        sock.close()
        raise ServiceStartFailed(f"cannot open a port on {host} for the file service: {exc}. "
                                 "Start it yourself with `secinf serve`.") from exc
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, **{
        "log_level": "warning", "log_config": None, "lifespan": "on", "server_header": False,
        **config}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"secinf-files-{port}")
    thread.start()
    deadline = time.monotonic() + start_timeout
    try:
        while not server.started:
            if not thread.is_alive():
                raise ServiceStartFailed(
                    f"the file service on {host}:{port} stopped while starting (uvicorn's "
                    "log above says why). Start it yourself with `secinf serve`.")
            if time.monotonic() > deadline:
                raise ServiceStartFailed(
                    f"the file service on {host}:{port} did not start within "
                    f"{start_timeout:.0f} s. Start it yourself with `secinf serve`.")
            time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT_S)
        sock.close()


@contextmanager
def file_service(settings: Settings | None = None) -> Iterator[FileService]:
    """A file service answering at files.service.base_url for the block: the configured
    one when it answers, else one started here (see the module's docstring). Needs an
    owner or admin login (the settings') to change base_url."""
    s = settings or load_settings()
    previous = _base_url(s)
    why = health(previous)
    if why is None:
        yield FileService(previous, started=False, previous_base_url=previous)
        return
    from workers.files.app import app_from_settings  # FastAPI app: only when one is needed

    with serve_in_thread(app_from_settings(s)) as base:
        _point(s, base)
        try:
            yield FileService(base, started=True, previous_base_url=previous,
                              why_started=f"{previous}: {why}")
        except BaseException:
            try:
                _restore(s, previous, base)
            except SecinfError as exc:  # the block's own failure is the one to report
                log.warning("%s", exc)
            raise
        _restore(s, previous, base)


# ---------------------------------------------------------------------- base_url
def _base_url(s: Settings) -> str:
    with connect(s) as conn:
        row = conn.execute(query("local_serve", "base_url")).fetchone()
    if row is None:
        raise SecinfError("files.service has no row: run `secinf db migrate`")
    return str(row["base_url"])


def _point(s: Settings, base: str) -> None:
    with connect(s) as conn:
        try:
            with conn.transaction():
                conn.execute(query("local_serve", "point_base_url"), {"base_url": base})
        except psycopg.errors.InsufficientPrivilege as exc:
            raise UserError(
                "cannot point files.service.base_url at the file service started on "
                f"{base} as this login ({exc.diag.message_primary}): run this as the "
                "database owner or an admin, or run `secinf serve --public-url URL` yourself"
            ) from exc


def _restore(s: Settings, previous: str, ours: str) -> None:
    try:
        with connect(s) as conn, conn.transaction():
            conn.execute(query("local_serve", "restore_base_url"),
                         {"previous": previous, "ours": ours})
    except (psycopg.Error, DatabaseUnavailable) as exc:
        raise SecinfError(
            f"could not point files.service.base_url back at {previous} (it names {ours}, "
            f"a service that has stopped): {str(exc).strip()[:200]}. Run `secinf serve "
            f"--public-url {previous}` once to restore it.") from exc
