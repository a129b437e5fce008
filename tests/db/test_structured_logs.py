"""Structured logs (issue 19): the worker and the file service write JSON lines that carry
the job (id, attempt, kind, project) or the request (request id), and never a key, a token
or a signed URL's signature, whatever a handler or a client put in them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.support.factories import make_project
from tests.support.file_service import serving
from tests.support.queue_kinds import LEAKED_KEY, LEAKED_TOKEN
from workers import logs
from workers.files.app import create_app
from workers.files.service_db import ServiceDB
from workers.queue import client
from workers.storage import LocalStorage

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]
SECRETS = (LEAKED_KEY, LEAKED_TOKEN, "sik_", "eyJ")


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]           # every line is one JSON object


def test_the_worker_logs_json_lines_with_the_job_and_no_secret(
        db: psycopg.Connection[Any], dsn: str) -> None:
    project = make_project(db, "logs-org", "logs")
    job = client.enqueue(db, project, "test_leaky", {}, max_attempts=1)
    db.commit()
    env = {"PATH": "/usr/bin:/bin", "SECINF_DSN": dsn, "SECINF_LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-m", "workers.queue", "--until-idle", "--kinds",
                           "test_leaky", "--plugin", "tests.support.queue_kinds", "--id",
                           "w-logs"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for secret in SECRETS:
        assert secret not in done.stderr
    records = json_lines(done.stderr)
    about_job = [r for r in records if r.get("job_id") == job]
    assert {r["logger"] for r in about_job} >= {"tests.leaky", "workers.queue.worker"}
    for r in about_job:
        assert (r["attempt"], r["kind"], r["project_id"], r["worker"]) == (
            1, "test_leaky", project, "w-logs")
    leak = next(r for r in about_job if r["logger"] == "tests.leaky")
    assert leak["message"] == "calling the API with key [redacted]"
    dead = next(r for r in about_job if "dead-lettered" in r["message"])
    assert "Authorization: [redacted]" in dead["message"] and dead["level"] == "warning"


def test_the_file_service_binds_a_request_id_and_redacts_signed_urls(
        dsn: str, tmp_path: Path) -> None:
    buffer: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            buffer.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    # As `secinf serve` sets logging up (another test's uvicorn may have left its own
    # handlers on these loggers); put back as found afterwards.
    saved = {name: (lg.handlers[:], lg.propagate, lg.disabled, lg.level) for name, lg in
             ((n, logging.getLogger(n)) for n in ("uvicorn", "uvicorn.error", "uvicorn.access"))}
    logs.route_uvicorn()
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    try:
        with serving(create_app(LocalStorage(tmp_path), ServiceDB(dsn, max_size=2)),
                     log_level="info", log_config=None) as svc:  # as `secinf serve` runs
            url = (f"{svc.base_url}/files/org/x/project/y/datasets/d/1.0.0/a.csv"
                   f"?method=GET&expires=1&kid=k1&sig={'ab' * 32}")
            given = requests.get(url, headers={"X-Request-Id": "req-0123456789"}, timeout=10)
            fresh = requests.get(f"{svc.base_url}/healthz", timeout=10)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, (handlers, propagate, disabled, lvl) in saved.items():
            lg = logging.getLogger(name)
            lg.handlers, lg.propagate, lg.disabled = handlers, propagate, disabled
            lg.setLevel(lvl)
    assert given.headers["x-request-id"] == "req-0123456789"
    assert len(fresh.headers["x-request-id"]) == 32
    records = [json.loads(line) for line in buffer]
    mine = [r for r in records if r.get("request_id") == "req-0123456789"]
    assert mine, records
    assert any("sig=[redacted]" in r["message"] for r in mine)
    assert "ab" * 32 not in "\n".join(buffer)


@pytest.mark.parametrize(("text", "clean"), [
    ("key sik_0123456789abcdef0123456789abcdef used", "key [redacted] used"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: [redacted]"),
    (f"token {LEAKED_TOKEN}", "token [redacted]"),
    ("/files/k?method=GET&expires=9&sig=deadbeef01",
     "/files/k?method=GET&expires=9&sig=[redacted]"),
    ("stripe sk_test_51Habc and whsec_9f8e", "stripe [redacted] and [redacted]"),
    ("host=db password=hunter2 user=x", "host=db [redacted] user=x"),
    ("job 42 (ingest_file) attempt 2 failed", "job 42 (ingest_file) attempt 2 failed"),
])
def test_redaction(text: str, clean: str) -> None:
    assert logs.redact(text) == clean
