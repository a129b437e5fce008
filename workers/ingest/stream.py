"""Streaming a batch's rows to the server: parse and validate on a producer thread while the
connection COPYs the previous chunk, and route each chunk to the fastest safe target.

Routing (decided per chunk, under the source row lock that `ingest.open_batch` took):

* **append** — every ts of the chunk is above the source's high_water and every frame above
  the newest stored frame, so no stored point can share its (source, track, frame); repeats
  of keys earlier in the batch were dropped by `Validator.drop_repeats`. The chunk is
  COPYed straight into ingest.track_points in binary (workers/ingest/pgbinary.py), sorted
  by time (rows land on the unique index's right edge), with no stage, no ON CONFLICT.
* **stage** — anything else (overlap with stored data, late rows, or a batch with poses,
  whose check needs the staged points): COPYed into the temporary stage that
  `ingest.close_batch` anti-joins and merges.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from workers.db.queries import query
from workers.ingest import pgbinary
from workers.ingest.validate import Validator

Conn = psycopg.Connection[dict[str, Any]]
QUEUE_DEPTH = 2
"""Chunks encoded ahead of the COPY (bounded memory: about 3 chunks in flight)."""


@dataclass
class Chunk:
    """One encoded chunk: where it goes, its CSV bytes and the facts the batch row needs."""

    target: str  # "append" (binary COPY rows) or "stage" (CSV)
    payload: bytes
    rows: int
    min_ts: datetime | None
    max_ts: datetime | None
    bytes_read: int


@dataclass
class StreamResult:
    direct_rows: int = 0
    direct_min: datetime | None = None
    direct_max: datetime | None = None
    staged_rows: int = 0
    dropped: int = 0


@dataclass
class Router:
    """Decides append vs stage for a chunk and encodes it (runs on the producer thread)."""

    validator: Validator
    project_id: str
    source_id: int
    batch_id: int
    high_water: datetime | None
    high_frame: int | None
    allow_append: bool

    def encode(self, good: pl.DataFrame, bytes_read: int) -> Chunk:
        staged = self.validator.stage_frame(good)
        lo_ts, hi_ts = staged["ts"].min(), staged["ts"].max()
        assert lo_ts is None or isinstance(lo_ts, datetime)
        assert hi_ts is None or isinstance(hi_ts, datetime)
        lo_frame = staged["frame"].min()
        append = self.allow_append and lo_ts is not None and (
            self.high_water is None or (
                lo_ts > self.high_water and isinstance(lo_frame, int)
                and lo_frame > (self.high_frame if self.high_frame is not None else -1)))
        if append:
            payload = pgbinary.encode(staged.sort("ts", "track_id", "frame"),
                                      self.project_id, self.source_id, self.batch_id)
        else:
            payload = staged.write_csv(include_header=False).encode()
        return Chunk("append" if append else "stage", payload, staged.height, lo_ts, hi_ts,
                     bytes_read)


def _produce(chunks: Iterator[pl.DataFrame], router: Router, reader: Any,
             out: queue.Queue[Chunk | BaseException | None], stop: threading.Event) -> None:
    """Validate, de-duplicate and encode every chunk; ends with None or the exception."""
    def put(item: Chunk | BaseException | None) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        for raw in chunks:
            if stop.is_set():
                return
            good = router.validator.drop_repeats(router.validator.check(raw))
            if good.height:
                put(router.encode(good, reader.bytes_read))
            else:
                put(Chunk("stage", b"", 0, None, None, reader.bytes_read))
        put(None)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        put(exc)


def stream_rows(conn: Conn, reader: Any, router: Router,
                progress: Callable[[int, int], None] | None,
                loader_from: str | None = None) -> StreamResult:
    """COPY every chunk of `reader` to its target; parsing overlaps the COPY.

    With `loader_from` (the session's current role, one that row-level security binds), each
    append COPY runs as ingest_loader (migration 0025) and the role switches back to
    `loader_from` after it: PostgreSQL refuses COPY FROM under RLS."""
    result = StreamResult()
    items: queue.Queue[Chunk | BaseException | None] = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(reader.chunks(), router, reader, items,
                                                     stop), name="ingest-encode", daemon=True)
    worker.start()
    copies = {"append": query("ingest", "copy_append"), "stage": query("ingest", "copy_stage")}
    current: str | None = None
    cur = conn.cursor()
    copy_cm: Any = None
    copy: Any = None
    try:
        while True:
            item = items.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            if item.rows:
                if item.target != current:
                    if copy_cm is not None:
                        _finish(copy, current)
                        copy_cm.__exit__(None, None, None)
                        copy_cm = None
                        _switch_back(cur, current, loader_from)
                    if item.target == "append" and loader_from is not None:
                        cur.execute(query("ingest", "as_loader"))
                    copy_cm = cur.copy(copies[item.target])
                    copy = copy_cm.__enter__()
                    current = item.target
                    if current == "append":
                        copy.write(pgbinary.SIGNATURE)
                copy.write(item.payload)
                if item.target == "append":
                    result.direct_rows += item.rows
                    result.direct_min = _least(result.direct_min, item.min_ts)
                    result.direct_max = _greatest(result.direct_max, item.max_ts)
                else:
                    result.staged_rows += item.rows
            if progress:
                progress(item.bytes_read, reader.size)
        if copy_cm is not None:
            _finish(copy, current)
            cm, copy_cm = copy_cm, None
            cm.__exit__(None, None, None)
            _switch_back(cur, current, loader_from)
    except BaseException as exc:
        stop.set()
        if copy_cm is not None:
            copy_cm.__exit__(type(exc), exc, exc.__traceback__)
        raise
    finally:
        stop.set()
        worker.join()
        cur.close()
    result.dropped = router.validator.repeats
    return result


def _switch_back(cur: Any, target: str | None, loader_from: str | None) -> None:
    """After an append COPY as ingest_loader: the session's role again."""
    if target == "append" and loader_from is not None:
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(loader_from)))


def _finish(copy: Any, target: str | None) -> None:
    if target == "append":
        copy.write(pgbinary.TRAILER)


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


__all__ = ["Router", "StreamResult", "stream_rows"]
