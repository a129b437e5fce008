"""What the worker loop and a handler's JobContext ask of the queue: `QueueOps`.

The Postgres client (the module workers.queue.client) satisfies it; so does the in-memory
queue of the worker's unit tests (workers.queue.memory.InMemoryQueue). Every call takes the
connection first; the in-memory queue ignores it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from workers.queue.client import Conn, Job


class QueueOps(Protocol):
    """Leases, fenced write-backs and outcomes, as the worker uses them."""

    def claim(self, conn: Conn, worker: str, *, kinds: Sequence[str] | None = ...,
              limit: int = ..., lease: timedelta = ...,
              exclude: Sequence[str] | None = ...) -> list[Job]: ...

    def next_due_in(self, conn: Conn, *, kinds: Sequence[str] | None = ...,
                    exclude: Sequence[str] | None = ...) -> float | None: ...

    def heartbeat(self, conn: Conn, job_id: int, attempt: int,
                  lease: timedelta = ...) -> datetime: ...

    def fence(self, conn: Conn, job_id: int, attempt: int) -> datetime: ...

    def write_back(self, conn: Conn, job_id: int,
                   attempt: int) -> AbstractContextManager[Conn]: ...

    def progress(self, conn: Conn, job_id: int, attempt: int,
                 data: Mapping[str, Any]) -> None: ...

    def complete(self, conn: Conn, job_id: int, attempt: int,
                 result: Mapping[str, Any] | None = ...) -> bool: ...

    def fail(self, conn: Conn, job_id: int, attempt: int, error: str, *,
             permanent: bool = ...) -> str: ...

    def release(self, conn: Conn, job_id: int, attempt: int, reason: str = ...) -> None: ...

    def note_stale(self, conn: Conn, job_id: int, attempt: int, what: str) -> None: ...


__all__ = ["QueueOps"]
