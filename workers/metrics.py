"""Prometheus metrics of the worker and the file service, defined once (issue 19).

prometheus_client is the Prometheus project's own Python client: counters and histograms in
the process, exposed as the text format at `/metrics`. The worker serves them on their own
port (`secinf worker --metrics-port`, SECINF_WORKER_METRICS_PORT; off by default), the file
service at `GET /metrics` beside its routes. Labels are job kinds, routes, methods, statuses
and devices: bounded sets, never a key, a project, a job id or a path. The database-side
metrics (pipeline lag, queue depth, cron) come from the `monitoring` views through
postgres_exporter instead (docs/operations.md, "Metrics and alerts").
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.exposition import start_http_server
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

from workers.errors import UserError

# Seconds from a few milliseconds (a noop job, a page of a download) to an hour (training).
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            300.0, 900.0, 3600.0)

# ---------------------------------------------------------------------- the worker
JOBS_CLAIMED = Counter("secinf_worker_jobs_claimed", "Attempts this worker claimed.", ["kind"])
JOBS_SUCCEEDED = Counter("secinf_worker_jobs_succeeded",
                         "Jobs this worker completed (their one result committed).", ["kind"])
JOBS_RETRIED = Counter("secinf_worker_jobs_retried",
                       "Failed attempts (an error or a timeout) put back for a retry.", ["kind"])
JOBS_DEAD = Counter("secinf_worker_jobs_dead",
                    "Jobs this worker dead-lettered (permanent error, invalid payload, unknown "
                    "kind or out of attempts).", ["kind"])
JOBS_RELEASED = Counter("secinf_worker_jobs_released",
                        "Attempts handed back unfinished (shutdown, cancel): not failures.",
                        ["kind"])
JOBS_TIMED_OUT = Counter("secinf_worker_jobs_timed_out",
                         "Attempts abandoned past their kind's timeout (also counted retried "
                         "or dead).", ["kind"])
LEASE_LOSSES = Counter("secinf_worker_lease_losses",
                       "Write-backs fencing refused: the attempt no longer held the lease "
                       "(step: heartbeat, complete, fail, release, write-back).",
                       ["kind", "step"])
DB_RETRIES = Counter("secinf_worker_database_retries",
                     "Control-connection calls retried after the database went away.")
QUEUE_WAIT = Histogram("secinf_job_queue_wait_seconds",
                       "From when a job fell due (run_after) to its claim.", ["kind"],
                       buckets=_SECONDS)
RUN_TIME = Histogram("secinf_job_run_seconds",
                     "Handler time of an attempt, from start to its outcome "
                     "(outcome: succeeded or failed).", ["kind", "outcome"], buckets=_SECONDS)

# ---------------------------------------------------------------------- scoring
CANDIDATES_SCORED = Counter("secinf_scoring_candidates_scored",
                            "Candidates whose model score was written back (committed).")
SCORE_BATCH = Histogram("secinf_scoring_batch_seconds",
                        "score_batch per job: read features, build windows, run the model.",
                        ["device"], buckets=_SECONDS)
MODEL_FORWARD = Histogram("secinf_scoring_model_seconds",
                          "The model's forward pass of one score_batch.", ["device"],
                          buckets=_SECONDS)

# ---------------------------------------------------------------------- the file service
FILES_REQUESTS = Counter("secinf_files_requests",
                         "Requests the file service answered, by route template, method and "
                         "status.", ["route", "method", "status"])
FILES_BYTES = Counter("secinf_files_bytes_sent", "Response body bytes sent, by route.",
                      ["route"])
FILES_SECONDS = Histogram("secinf_files_request_seconds",
                          "From request to the response's last byte, by route.", ["route"],
                          buckets=_SECONDS)


def observe_claim(kind: str, waited_s: float | None) -> None:
    JOBS_CLAIMED.labels(kind).inc()
    if waited_s is not None:
        QUEUE_WAIT.labels(kind).observe(max(waited_s, 0.0))


# ---------------------------------------------------------------------- serving
@dataclass
class MetricsServer:
    """prometheus_client's HTTP server in a daemon thread; `close()` stops it."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve this process's metrics at http://host:port/metrics (port 0: a free one)."""
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"metrics port {port} on {host} is in use: pick another with "
                            "--metrics-port or SECINF_WORKER_METRICS_PORT (0 turns the "
                            "metrics off)") from exc
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"metrics host {host!r} is not an address of this machine: set "
                            "--metrics-host or SECINF_WORKER_METRICS_HOST to one (127.0.0.1, "
                            "or 0.0.0.0 for every interface)") from exc
        raise
    return MetricsServer(host, int(server.server_port), server, thread)


# ---------------------------------------------------------------------- ASGI
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def metrics_endpoint(_: Request) -> Response:
    """`GET /metrics`: this process's metrics in Prometheus's text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def route_template(routes: Iterable[BaseRoute], scope: Scope) -> str | None:
    """The path template (`/files/{key}`) of the route that answers `scope`, looking into
    included routers; a route matching the path but not the method (405) counts too."""
    partial: str | None = None
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found = route_template(inner.routes, scope)
            if found is not None:
                return found
            continue
        match, _ = route.matches(scope)
        template = str(getattr(route, "path_format", getattr(route, "path", "other")))
        if match is Match.FULL:
            return template
        if match is Match.PARTIAL and partial is None:
            partial = template
    return partial


_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware: count each HTTP request by route template, method and status, and
    the body bytes sent. `routes()` gives the app's routes, whose templates are the labels;
    paths no route matches count as `other`, so probing random paths cannot grow the label
    set."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        route = route_template(self.routes(), scope) or "other"
        method = str(scope.get("method", "GET"))
        method = method if method in _METHODS else "other"
        status = {"code": 500}
        sent = {"bytes": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            FILES_REQUESTS.labels(route, method, str(status["code"])).inc()
            FILES_BYTES.labels(route).inc(sent["bytes"])
            FILES_SECONDS.labels(route).observe(time.perf_counter() - start)


__all__ = ["CANDIDATES_SCORED", "DB_RETRIES", "FILES_BYTES", "FILES_REQUESTS",
           "FILES_SECONDS", "JOBS_CLAIMED", "JOBS_DEAD", "JOBS_RELEASED", "JOBS_RETRIED",
           "JOBS_SUCCEEDED", "JOBS_TIMED_OUT", "LEASE_LOSSES", "MODEL_FORWARD",
           "QUEUE_WAIT", "RUN_TIME", "SCORE_BATCH", "MetricsServer", "RequestMetrics",
           "metrics_endpoint", "observe_claim", "route_template", "serve_metrics"]
