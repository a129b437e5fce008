"""A real scrape (issue 19): Debian's prometheus on a loopback port scrapes a worker process's
/metrics (`python -m workers.queue --metrics-port`), the file service's GET /metrics and a
prometheus-postgres-exporter logged in as secinf_monitor with the repository's queries file;
the test polls Prometheus's HTTP API until the series arrive. And the monitoring role: what
it reads (aggregates of the monitoring views) and what it cannot (any tenant table, other
sessions' query text)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tests.db.queue_helpers import ROOT, scalar, wait_for
from tests.support.factories import make_project
from tests.support.file_service import serving
from workers.files.app import create_app
from workers.files.service_db import ServiceDB
from workers.queue import client
from workers.storage.local import LocalStorage

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
MONITORING = Path(ROOT) / "docker" / "monitoring"
QUERIES = MONITORING / "postgres_exporter_queries.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _monitor_dsn(dsn: str) -> str:
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    params.pop("password", None)
    params["user"] = "secinf_monitor"
    return make_conninfo(**params)  # type: ignore[arg-type]


def _monitor(dsn: str) -> Conn:
    try:
        return psycopg.connect(_monitor_dsn(dsn), autocommit=True, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        pytest.skip(f"secinf_monitor cannot log in without a password here ({exc}); the "
                    "local cluster trusts its socket; elsewhere give it a password")


def _seed(db: Conn) -> tuple[str, int]:
    """A project with a source whose merged data the pipeline has not reached, and one
    late-data range waiting."""
    project = make_project(db, "acme", "plaza")
    source = db.execute(
        "INSERT INTO ingest.sources (project_id, name, fps, high_water)"
        " VALUES (%s, 'cam-1', 10, '2026-01-01 01:00+00') RETURNING source_id", (project,)
    ).fetchone()["source_id"]  # type: ignore[index]
    batch = db.execute(
        "INSERT INTO ingest.batches (project_id, source_id, idempotency_key, format, status,"
        " rows_total, rows_inserted) VALUES (%s, %s, 'b', 'canonical-csv', 'applied', 61, 61)"
        " RETURNING batch_id", (project, source)).fetchone()["batch_id"]  # type: ignore[index]
    db.execute("INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x,"
               " y, batch_id) SELECT %s, %s, '1', f, '2026-01-01 00:00+00'::timestamptz"
               " + f * interval '1 minute', 0, 0, %s FROM generate_series(0, 60) f",
               (project, source, batch))
    db.execute("INSERT INTO ingest.dirty_ranges (project_id, source_id, from_ts, to_ts)"
               " VALUES (%s, %s, now() - interval '1 hour', now())", (project, source))
    db.commit()
    return project, int(source)


# ---------------------------------------------------------------------- the role
def test_the_monitoring_role_reads_aggregates_and_no_tenant_data(db: Conn, dsn: str) -> None:
    project, source = _seed(db)
    client.enqueue(db, project, "noop", run_after=datetime.now(UTC) + timedelta(days=1))
    dead = client.enqueue(db, project, "echo", max_attempts=1)
    db.execute("UPDATE jobs.jobs SET state = 'dead', finished_at = now(),"
               " last_error = 'secret detail' WHERE job_id = %s", (dead,))
    db.commit()
    with _monitor(dsn) as mon:
        rows = mon.execute("SELECT * FROM monitoring.pipeline_sources").fetchall()
        assert [(str(r["project_id"]), r["source_id"], r["dirty_pending"]) for r in rows] == [
            (project, source, 1)]
        assert rows[0]["lag_seconds"] == 3600  # never processed: high water - first point
        depth = {(r["kind"], r["state"]): r["jobs"] for r in
                 mon.execute("SELECT * FROM monitoring.queue_depth").fetchall()}
        assert depth == {("noop", "queued"): 1, ("echo", "dead"): 1}
        letters = mon.execute("SELECT * FROM monitoring.dead_letters").fetchall()
        assert [(r["kind"], r["jobs"], r["last_hour"]) for r in letters] == [("echo", 1, 1)]
        assert mon.execute("SELECT count(*) AS n FROM monitoring.cron_jobs").fetchone() == {
            "n": 0}  # no pg_cron in a test copy: the view answers, empty
        assert mon.execute("SELECT * FROM monitoring.review_backlog").fetchall() == []
        # No tenant table, no function of ours outside monitoring, no other session's SQL.
        for statement, expected in {
            "SELECT * FROM ingest.sources": "permission denied for schema ingest",
            "SELECT * FROM jobs.jobs": "permission denied for schema jobs",
            "SELECT pipeline.watermark(1)": "permission denied for schema pipeline",
            "SELECT * FROM pg_stat_user_tables": "permission denied for view pg_stat_user_tables",
            "SELECT pg_relation_size(oid) FROM pg_class WHERE relname = 'jobs'":
                "permission denied for function pg_relation_size",
        }.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
                mon.execute(statement)
            assert str(err.value).splitlines()[0] == expected, statement
        db.execute("SELECT 'tenant literal' AS probe")  # the admin's session, mid-transaction
        others = mon.execute("SELECT DISTINCT query, state FROM pg_stat_activity"
                             " WHERE usename = 'postgres'").fetchall()
        assert others == [{"query": "<insufficient privilege>", "state": None}]
        db.rollback()
        # What the exporter's default metrics read: database-wide sums only.
        assert mon.execute("SELECT xact_commit FROM pg_stat_database"
                           " WHERE datname = current_database()").fetchone()
        assert mon.execute("SELECT pg_database_size(current_database()) AS b").fetchone()
    roles = db.execute("SELECT r.rolcanlogin, r.rolsuper, r.rolbypassrls, r.rolcreaterole,"
                       " ARRAY(SELECT g.rolname::text FROM pg_auth_members m"
                       "       JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)"
                       " AS member_of FROM pg_roles r WHERE r.rolname = 'secinf_monitor'"
                       ).fetchone()
    assert roles == {"rolcanlogin": True, "rolsuper": False, "rolbypassrls": False,
                     "rolcreaterole": False, "member_of": []}


def test_a_queries_file_query_is_what_the_exporter_reads(db: Conn, dsn: str) -> None:
    """Every query of the queries file runs as secinf_monitor and returns the columns the
    file declares (the exporter drops a query whose columns do not match)."""
    import yaml

    _seed(db)
    spec = yaml.safe_load(QUERIES.read_text())
    with _monitor(dsn) as mon:
        for name, entry in spec.items():
            cur = mon.execute(entry["query"])
            declared = [next(iter(m)) for m in entry["metrics"]]
            assert [c.name for c in cur.description or []] == declared, name


# ---------------------------------------------------------------------- the scrape
def _binaries() -> tuple[str, str]:
    prom = shutil.which("prometheus")
    exporter = shutil.which("prometheus-postgres-exporter")
    if prom is None or exporter is None:
        pytest.skip("prometheus or prometheus-postgres-exporter is absent: they are Debian "
                    "packages (scripts/install-system.sh installs both; apt-get install "
                    "prometheus prometheus-postgres-exporter)")
    return prom, exporter


def _go_dsn(dsn: str) -> str:
    """lib/pq's key=value form of the monitoring login (a socket directory as host)."""
    params = conninfo_to_dict(_monitor_dsn(dsn))
    parts = [f"{k}={params[k]}" for k in ("host", "port", "dbname", "user") if params.get(k)]
    return " ".join([*parts, "sslmode=disable"])


@contextmanager
def _process(args: list[str], log: Path, env: dict[str, str] | None = None,
             cwd: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _query(prom_port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
    except OSError:
        return []  # not up yet
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def test_prometheus_scrapes_the_worker_the_file_service_and_the_exporter(
        db: Conn, dsn: str, tmp_path: Path) -> None:
    prom_bin, exporter_bin = _binaries()
    _monitor(dsn).close()
    project, source = _seed(db)
    client.enqueue(db, project, "noop", run_after=datetime.now(UTC) + timedelta(days=1))
    job = client.enqueue(db, project, "echo", {"message": "scraped"})
    db.commit()

    worker_port, exporter_port, prom_port = _free_port(), _free_port(), _free_port()
    files_app = create_app(LocalStorage(tmp_path / "objects"), ServiceDB(dsn, max_size=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECINF_")}
    worker_env = {**env, "SECINF_DSN": dsn}
    exporter_env = {**env, "DATA_SOURCE_NAME": _go_dsn(dsn)}
    with serving(files_app) as files, \
            _process([sys.executable, "-m", "workers.queue", "--kinds", "echo", "--poll", "1",
                      "--metrics-port", str(worker_port)], tmp_path / "worker.log",
                     worker_env, ROOT), \
            _process([exporter_bin, f"--web.listen-address=127.0.0.1:{exporter_port}",
                      f"--extend.query-path={QUERIES}", "--no-collector.database"],
                     tmp_path / "exporter.log", exporter_env):
        wait_for(lambda: scalar(dsn, "SELECT state FROM jobs.jobs WHERE job_id = %s",
                                (job,)) == "succeeded", 30, "the worker to run the echo job")
        for path in ("/healthz", "/healthz", "/no/such/path"):
            files.request("GET", path)
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(MONITORING / "alerts.yml")],
            "scrape_configs": [
                {"job_name": "secinf-worker",
                 "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
                {"job_name": "secinf-files",
                 "static_configs": [{"targets": [f"127.0.0.1:{files.port}"]}]},
                {"job_name": "secinf-postgres",
                 "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
            ]}))
        prom_log = tmp_path / "prometheus.log"
        with _process([prom_bin, f"--config.file={config}",
                       f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                       f"--web.listen-address=127.0.0.1:{prom_port}"], prom_log) as prom:
            wanted = {
                "jobs claimed": 'secinf_worker_jobs_claimed_total{kind="echo"} > 0',
                "jobs succeeded": 'secinf_worker_jobs_succeeded_total{kind="echo"} > 0',
                "queue wait": 'secinf_job_queue_wait_seconds_count{kind="echo"} > 0',
                "queue depth": 'secinf_queue_jobs{kind="noop",state="queued"} == 1',
                "pipeline lag": f'secinf_pipeline_lag_seconds{{source_id="{source}"}} > 0',
                "file requests": 'secinf_files_requests_total{route="/healthz",'
                                 'method="GET",status="200"} >= 2',
                "unmatched paths": 'secinf_files_requests_total{route="other"} >= 1',
                "database up": "pg_up == 1",
                "database size": "secinf_database_size_bytes > 0",
            }
            found: dict[str, list[dict[str, Any]]] = {}
            deadline = time.monotonic() + 90
            while len(found) < len(wanted) and time.monotonic() < deadline:
                assert prom.poll() is None, f"prometheus exited:\n{_tail(prom_log)}"
                for what, promql in wanted.items():
                    if what not in found and (result := _query(prom_port, promql)):
                        found[what] = result
                time.sleep(0.5)
            missing = sorted(set(wanted) - set(found))
            assert not missing, (
                f"series never arrived: {missing}\nprometheus:\n{_tail(prom_log)}\n"
                f"exporter:\n{_tail(tmp_path / 'exporter.log')}\n"
                f"worker:\n{_tail(tmp_path / 'worker.log')}")
            up = {r["metric"]["job"]: r["value"][1] for r in _query(prom_port, "up")}
            assert up == {"secinf-worker": "1", "secinf-files": "1", "secinf-postgres": "1"}
            assert found["pipeline lag"][0]["metric"]["project_id"] == project
            # The alert rules loaded, all of them.
            with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules",
                                        timeout=5) as resp:
                groups = json.load(resp)["data"]["groups"]
            assert sum(len(g["rules"]) for g in groups) >= 10
    exporter_log = _tail(tmp_path / "exporter.log")
    assert "level=error" not in exporter_log, exporter_log


# ---------------------------------------------------------------------- the worker's counters
def test_the_worker_counts_retries_dead_letters_and_run_time(db: Conn, dsn: str) -> None:
    from prometheus_client import REGISTRY

    from tests.db.queue_helpers import ThreadWorker
    from workers.queue.worker import WorkerConfig

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    names = [("secinf_worker_jobs_claimed_total", {"kind": "test_boom"}),
             ("secinf_worker_jobs_retried_total", {"kind": "test_boom"}),
             ("secinf_worker_jobs_dead_total", {"kind": "test_boom"}),
             ("secinf_worker_jobs_dead_total", {"kind": "no_such_kind"}),
             ("secinf_worker_jobs_succeeded_total", {"kind": "noop"}),
             ("secinf_job_run_seconds_count", {"kind": "test_boom", "outcome": "failed"}),
             ("secinf_job_queue_wait_seconds_count", {"kind": "noop"})]
    before = [sample(n, **labels) for n, labels in names]
    project = make_project(db, "acme", "plaza")
    client.enqueue(db, project, "test_boom", max_attempts=2, retry_delay=timedelta(0))
    client.enqueue(db, project, "no_such_kind")
    client.enqueue_many(db, project, "noop", [{}] * 3)
    db.commit()
    config = WorkerConfig(concurrency=2, lease_s=5.0, poll_s=0.5, mode="until_idle",
                          plugins=("tests.support.queue_kinds",))
    with ThreadWorker(dsn, config) as tw:
        tw.thread.join(30)
        assert not tw.thread.is_alive()
    after = [sample(n, **labels) for n, labels in names]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 1, 3, 2, 3]
