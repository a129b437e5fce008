"""LISTEN for queue wake-ups on a dedicated autocommit connection, with a keepalive and
reconnection. A notice only wakes the worker early; the worker's poll finds the work anyway,
so a notice lost while reconnecting delays a job but never loses it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from workers.queue.notify import JOBS, JobNotice, channel_name, parse_notice

log = logging.getLogger(__name__)


class Listener:
    """A daemon thread: calls `on_notice` for each job notice and `on_connect` after every
    (re)connection (the caller should then poll: notices sent meanwhile are gone)."""

    def __init__(self, conninfo: str, on_notice: Callable[[JobNotice], None],
                 on_connect: Callable[[], None] | None = None, *, purpose: str = JOBS,
                 keepalive_s: float = 15.0) -> None:
        self.conninfo = conninfo
        self.on_notice = on_notice
        self.on_connect = on_connect
        self.purpose = purpose
        """Which channel (auth.channel): its secret name is read at every connection."""
        self.keepalive_s = keepalive_s
        self.connected = threading.Event()
        self.reconnects = 0
        """Successful connections so far (1 after the first)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self.conninfo, autocommit=True)
        name = channel_name(conn, self.purpose)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
        return conn

    def _run(self) -> None:
        while not self._stop.is_set():
            retrying = Retrying(
                retry=retry_if_exception_type(psycopg.Error),
                wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.2),
                stop=lambda _state: self._stop.is_set(),
                sleep=self._sleep,
                before_sleep=lambda state: log.warning(
                    "queue listener cannot connect (try %d): %s", state.attempt_number,
                    state.outcome.exception() if state.outcome else "?"),
                reraise=True,
            )
            try:
                conn = retrying(self._connect)
            except psycopg.Error:
                return  # stopping
            try:
                self._serve(conn)
            except psycopg.Error as exc:
                log.warning("queue listener lost its connection: %s", str(exc).strip())
            finally:
                self.connected.clear()
                conn.close()

    def _serve(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.reconnects += 1
        self.connected.set()
        if self.on_connect is not None:
            self.on_connect()
        last_ping = time.monotonic()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=0.5):
                notice = parse_notice(note.payload)
                if notice is not None:
                    self.on_notice(notice)
            if time.monotonic() - last_ping >= self.keepalive_s:
                conn.execute("SELECT 1")  # keepalive: a dead server shows up here
                last_ping = time.monotonic()
