"""Read ground truth (truth.json) and the candidates of one source as comparable events."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from workers.db.queries import query
from workers.errors import NotFound, UserError

from .matching import Event


class TruthError(UserError):
    """The truth file is invalid."""


@dataclass(frozen=True)
class Truth:
    """A truth file: source name, time origin and events."""

    source: str | None
    time_origin: str | None
    events: list[Event]


def _event(raw: Any, where: str) -> Event:
    if not isinstance(raw, dict):
        raise TruthError(f"{where}: an event must be an object")
    try:
        etype = str(raw["type"])
        actors = {str(k): str(v) for k, v in dict(raw["actors"]).items()}
        start, end = float(raw["start"]), float(raw["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TruthError(f"{where}: needs type, actors {{role: id}}, start and end "
                         f"seconds ({exc})") from exc
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        raise TruthError(f"{where}: start {start} / end {end} must be finite, end >= start")
    attrs = raw.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise TruthError(f"{where}: attributes must be an object")
    return Event(etype, actors, start, end, dict(attrs))


def parse_truth(data: Any, name: str = "truth.json") -> Truth:
    """Validate a parsed truth mapping."""
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise TruthError(f"{name}: expected an object with an `events` list "
                         "(the file `secinf simulate` writes)")
    events = [_event(e, f"{name}: events[{k}]") for k, e in enumerate(data["events"])]
    return Truth(source=data.get("source"), time_origin=data.get("time_origin"),
                 events=events)


def load_truth(path: str | Path) -> Truth:
    """Read a truth file; raise TruthError naming the file and the problem."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TruthError(f"cannot read truth file {p}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise TruthError(f"{p}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    return parse_truth(data, str(p))


@dataclass(frozen=True)
class SourceRef:
    """The source being evaluated."""

    project_id: str
    source_id: int
    name: str
    time_origin: datetime


def resolve_source(conn: psycopg.Connection[Any], source: str,
                   project: str | None) -> SourceRef:
    """Find a source by name (or numeric id), optionally within a project (id or slug)."""
    rows = conn.execute(query("evaluate", "find_source"),
                        {"source": source, "project": project}).fetchall()
    if not rows:
        where = f" in project {project!r}" if project else ""
        raise NotFound(f"no source {source!r}{where}; `secinf ingest` it first or check "
                       "the name")
    if len(rows) > 1:
        raise UserError(f"source name {source!r} exists in {len(rows)} projects; pass "
                        "--project")
    r = rows[0]
    return SourceRef(str(r["project_id"]), int(r["source_id"]), str(r["name"]),
                     r["time_origin"])


def load_candidates(conn: psycopg.Connection[Any], src: SourceRef,
                    ontology_id: int | None = None) -> list[Event]:
    """Candidates of the source (of the active ontology unless one is named) as events."""
    rows = conn.execute(query("evaluate", "candidates"),
                        {"source_id": src.source_id, "ontology_id": ontology_id}).fetchall()
    out = []
    for r in rows:
        attrs = {k: r[k] for k in ("zone", "route", "trigger") if r[k] is not None}
        if r["latency_s"] is not None:
            attrs["latency"] = r["latency_s"]
        out.append(Event(r["type"], {str(k): str(v) for k, v in r["actors"].items()},
                         (r["start_ts"] - src.time_origin).total_seconds(),
                         (r["end_ts"] - src.time_origin).total_seconds(), attrs))
    return out
