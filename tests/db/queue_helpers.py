"""Shared helpers of the queue tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers.queue.worker import Worker, WorkerConfig, WorkerStats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Poll `check` until true; returns the seconds it took (AssertionError on timeout)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - start


def scalar(dsn: str, sql: str, params: Any = None) -> Any:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else next(iter(row.values()))


def state_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {s: int(n) for s, n in
                conn.execute("SELECT state, count(*) FROM jobs.jobs GROUP BY state").fetchall()}


class ThreadWorker:
    """A Worker in a thread of the test process (no signals)."""

    def __init__(self, dsn: str, config: WorkerConfig) -> None:
        self.worker = Worker(dsn, config)
        self.stats: WorkerStats | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.stats = self.worker.run()

    def __enter__(self) -> ThreadWorker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "worker did not stop"


def spawn_worker(dsn: str, *args: str) -> subprocess.Popen[bytes]:
    """A worker PROCESS (`python -m workers.queue`) on the database `dsn`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECINF_")}
    env["SECINF_DSN"] = dsn
    return subprocess.Popen([sys.executable, "-m", "workers.queue", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
