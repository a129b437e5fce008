"""The file service's database side: a small pool of `pipeline` sessions, and the calls it
makes (files.url_secret, files.record_access, files.mark_received; sql/760_files.sql).

Database errors are wrapped here: an unreachable server is DatabaseUnavailable, which the
service answers with 503."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from workers.db.queries import query
from workers.errors import DatabaseUnavailable
from workers.queue.worker import with_role

SECRET_TTL_S = 30.0
"""How long a key id's secret (or its absence) is remembered; a removed key stops
verifying within this time."""
_RETRYABLE = (psycopg.OperationalError, PoolTimeout)


@dataclass(frozen=True)
class Upload:
    """The files.uploads row of an upload key."""

    status: str
    bytes: int
    sha256: str
    filename: str


def audit_text(text: str, limit: int = 500) -> str:
    """Text Postgres can store (no NUL), cut to `limit` characters, as the audit keeps it."""
    return text.replace("\x00", "\\x00")[:limit]


class ServiceDB:
    """Pooled `pipeline` connections of the file service."""

    def __init__(self, conninfo: str, *, role: str | None = "pipeline", min_size: int = 1,
                 max_size: int = 8, timeout: float = 5.0) -> None:
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            with_role(conninfo, role), kwargs={"row_factory": dict_row, "autocommit": True},
            min_size=min_size, max_size=max_size, timeout=timeout, open=False,
            check=ConnectionPool.check_connection, name="secinf-files")
        self._secrets: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def open(self) -> None:
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close(timeout=2.0)

    def _one(self, group_name: str, params: dict[str, Any]) -> dict[str, Any] | None:
        try:
            with self._pool.connection() as conn:
                return conn.execute(query("file_service", group_name), params).fetchone()
        except _RETRYABLE as exc:
            raise DatabaseUnavailable(
                f"the file service cannot reach the database: {str(exc).strip()[:200]}") from exc

    # ------------------------------------------------------------------ calls
    def ping(self) -> None:
        self._one("ping", {})

    def url_secret(self, kid: str) -> str | None:
        """The secret of a key id (None when unknown), remembered for SECRET_TTL_S."""
        now = time.monotonic()
        with self._lock:
            hit = self._secrets.get(kid)
        if hit is not None and now - hit[0] < SECRET_TTL_S:
            return hit[1]
        row = self._one("url_secret", {"kid": kid})
        secret = None if row is None else row["secret"]
        with self._lock:
            if len(self._secrets) > 256:
                self._secrets.clear()
            self._secrets[kid] = (now, secret)
        return secret

    def record_access(self, key: str, method: str, result: str, address: str,
                      details: dict[str, Any]) -> None:
        """One audit row (files.record_access): served | refused | received."""
        self._one("record_access", {
            "key": audit_text(key), "method": method if method in ("GET", "PUT") else "GET",
            "result": result, "address": audit_text(address, 200), "details": Jsonb(details)})

    def upload(self, key: str) -> Upload | None:
        row = self._one("upload", {"key": key})
        return None if row is None else Upload(row["status"], int(row["bytes"]), row["sha256"],
                                               row["filename"])

    def object_sha256(self, key: str) -> str | None:
        """The sha256 the database records for the object (files.object_sha256), if any."""
        row = self._one("object_sha256", {"key": key})
        return None if row is None or row["sha256"] is None else str(row["sha256"])

    def mark_sent(self, key: str, nbytes: int, sha256: str) -> str:
        """files.mark_sent (S3 backend: the client goes to S3): the status afterwards."""
        row = self._one("mark_sent", {"key": key, "bytes": nbytes, "sha256": sha256})
        assert row is not None
        return str(row["status"])

    def mark_received(self, key: str, nbytes: int, sha256: str) -> str:
        """files.mark_received: the upload's status afterwards."""
        row = self._one("mark_received", {"key": key, "bytes": nbytes, "sha256": sha256})
        assert row is not None
        return str(row["status"])
