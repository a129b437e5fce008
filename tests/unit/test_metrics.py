"""workers/metrics.py without a database: the file service's route labels stay a bounded
set, the worker's metrics server and its settings refuse bad input with the fix."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from tests.support.file_service import serving
from workers.errors import UserError
from workers.metrics import RequestMetrics, metrics_endpoint, route_template, serve_metrics
from workers.settings import load_settings


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/files/{key:path}")
    def download(key: str) -> dict[str, str]:
        return {"key": key}

    app.add_middleware(RequestMetrics, routes=lambda: app.router.routes)
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    return app


def test_requests_are_counted_by_route_template_never_by_path() -> None:
    before = {
        "file": _sample("secinf_files_requests_total", route="/files/{key}", method="GET",
                        status="200"),
        "other": _sample("secinf_files_requests_total", route="other", method="GET",
                         status="404"),
        "405": _sample("secinf_files_requests_total", route="/files/{key}", method="other",
                       status="405"),
        "bytes": _sample("secinf_files_bytes_sent_total", route="/files/{key}"),
    }
    with serving(_app()) as svc:
        for key in ("org/a/x.bin", "org/b/y.bin"):
            assert svc.request("GET", f"/files/{key}").status == 200
        for path in ("/random/probe", "/etc/passwd"):
            assert svc.request("GET", path).status == 404
        assert svc.request("BREW", "/files/z").status == 405  # method label bounded too
        page = svc.request("GET", "/metrics")
    assert page.status == 200 and page.headers["content-type"].startswith("text/plain")
    assert b"secinf_files_requests_total" in page.body and b"x.bin" not in page.body
    assert _sample("secinf_files_requests_total", route="/files/{key}", method="GET",
                   status="200") == before["file"] + 2
    assert _sample("secinf_files_requests_total", route="other", method="GET",
                   status="404") == before["other"] + 2
    assert _sample("secinf_files_requests_total", route="/files/{key}", method="other",
                   status="405") == before["405"] + 1
    assert _sample("secinf_files_bytes_sent_total", route="/files/{key}") > before["bytes"]


def test_route_template_looks_into_included_routers() -> None:
    from fastapi import APIRouter

    app, router = FastAPI(), APIRouter()

    @router.post("/stripe/webhook")
    def hook() -> None: ...

    app.include_router(router)
    scope = {"type": "http", "path": "/stripe/webhook", "method": "POST", "root_path": ""}
    assert route_template(app.router.routes, scope) == "/stripe/webhook"
    assert route_template(app.router.routes, {**scope, "path": "/x"}) is None


def test_the_worker_metrics_server_serves_and_names_a_busy_port() -> None:
    server = serve_metrics(0)
    try:
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            assert resp.status == 200
            assert b"# TYPE secinf_worker_jobs_claimed_total counter" in resp.read()
        with pytest.raises(UserError, match=rf"metrics port {server.port} on 127.0.0.1 is in "
                                            "use: pick another with --metrics-port"):
            serve_metrics(server.port)
    finally:
        server.close()
    with socket.socket() as probe:  # closed: the port is free again
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))
    with pytest.raises(UserError, match=r"metrics host 'no-such-host\.invalid' is not an "
                                        "address of this machine"):
        serve_metrics(0, "no-such-host.invalid")


def test_the_metrics_port_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().worker_metrics_port == 0
    monkeypatch.setenv("SECINF_WORKER_METRICS_PORT", "9464")
    monkeypatch.setenv("SECINF_WORKER_METRICS_HOST", "0.0.0.0")
    s = load_settings()
    assert (s.worker_metrics_port, s.worker_metrics_host) == (9464, "0.0.0.0")
    monkeypatch.setenv("SECINF_WORKER_METRICS_PORT", "nine")
    with pytest.raises(UserError, match="SECINF_WORKER_METRICS_PORT='nine' is not a port: "
                                        "set it to a number from 1 to 65535"):
        load_settings()
