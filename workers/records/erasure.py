"""Erasure of one actor (a track, or every track linked to a subject hash).

`request` checks it and writes the pending tombstone; `run` performs its steps, each a
bounded batch in its own transaction (records.erase_step), reporting progress, and at the
end deletes the stored objects of the unpublished dataset versions the erasure removed.
The `erase_subject` job (workers/records/jobs.py) and `secinf erase` both use `run`, so a
large erasure can go to the queue and a small one run in place; either resumes where a
killed one stopped. A step re-checks legal holds, so a hold set meanwhile stops it.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from workers.errors import UserError
from workers.records import Conn, one, rows
from workers.storage.base import Storage

STEP_ROWS = 50_000
"""Rows one step deletes at most: a step is one short transaction."""

Progress = Callable[[dict[str, Any]], None]


def request(conn: Conn, project_id: str, reason: str, *, source: str | None = None,
            track: str | None = None, subject: str | None = None) -> dict[str, Any]:
    """Check the erasure (it exists, no legal hold covers it) and write its tombstone."""
    if (track is None) == (subject is None):
        raise UserError("name one actor: --source and --track, or --subject")
    if track is not None and source is None:
        raise UserError("--track needs --source (the track's source, by name)")
    got = one(conn, "request_erasure", {"project_id": project_id, "source": source,
                                        "track": track, "subject": subject, "reason": reason})
    conn.commit()
    return got


def enqueue(conn: Conn, project_id: str, tombstone_id: int) -> int:
    got = one(conn, "enqueue_erasure", {"project_id": project_id, "tombstone_id": tombstone_id})
    conn.commit()
    return int(got["job_id"])


def step(conn: Conn, tombstone_id: int, limit: int = STEP_ROWS) -> dict[str, Any]:
    """One step in the caller's transaction (the job fences it); not committed."""
    return dict(one(conn, "erase_step", {"tombstone_id": tombstone_id, "limit": limit})["step"])


def remove_objects(store: Storage | None, versions_deleted: list[dict[str, Any]]) -> int:
    """Delete the stored objects of the unpublished versions the erasure removed."""
    if store is None:
        return 0
    removed = 0
    for v in versions_deleted:
        path = v.get("storage_path")
        if path:
            with contextlib.suppress(FileNotFoundError):
                removed += store.delete_prefix(str(path))
    return removed


def run(conn: Conn, tombstone_id: int, *, store: Storage | None = None,
        progress: Progress | None = None, limit: int = STEP_ROWS) -> dict[str, Any]:
    """Every step until done, each committed; the final tombstone."""
    report = progress or (lambda _s: None)
    while True:
        got = step(conn, tombstone_id, limit)
        conn.commit()
        report(got)
        if got.get("done"):
            break
    objects = remove_objects(store, list(got.get("versions_deleted") or []))
    stone = tombstone(conn, tombstone_id)
    stone["objects_deleted"] = objects
    return stone


def tombstone(conn: Conn, tombstone_id: int) -> dict[str, Any]:
    return one(conn, "tombstone", {"tombstone_id": tombstone_id})


def list_tombstones(conn: Conn, project_id: str, limit: int = 100) -> list[dict[str, Any]]:
    return rows(conn, "list_tombstones", {"project_id": project_id, "limit": limit})


def link_subjects(conn: Conn, project_id: str, links: list[dict[str, str]]) -> int:
    got = one(conn, "link_subjects", {"project_id": project_id, "links": Jsonb(links)})
    conn.commit()
    return int(got["added"])


def read_links(path: Path) -> list[dict[str, str]]:
    """A CSV with columns source, track_id, subject (a header row first)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"source", "track_id", "subject"} - set(reader.fieldnames or [])
            if missing:
                raise UserError(f"{path}: the header needs the columns source, track_id, "
                                f"subject (missing: {', '.join(sorted(missing))})")
            return [{k: (row.get(k) or "").strip() for k in ("source", "track_id", "subject")}
                    for row in reader]
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from exc
