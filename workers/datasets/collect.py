"""Read what a dataset version holds from the database: the project's verified events, the
actors' kinematics around each of them, their tracks' lifetimes, the active ontology and the
model whose scores the events carry."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
from psycopg.rows import tuple_row

from workers.datasets.schema import EVENTS_SCHEMA, FEATURES_SCHEMA
from workers.db.queries import query

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class OntologyRef:
    """The project's active ontology: what the dataset's event types mean."""

    name: str
    version: int
    sha256: str
    types: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class SourceRef:
    source_id: int
    name: str
    units: str
    fps: float | None
    simulated: bool
    """Marked as simulated in ingest.sources.attributes (`simulated` or `preset`)."""


@dataclass(frozen=True)
class Lifetime:
    """First and last point (epoch µs) of one actor's track; None without kinematics."""

    event_id: int
    role: str
    track_id: str
    first_us: int | None
    last_us: int | None


@dataclass
class Collected:
    project_id: str
    ontology: OntologyRef | None
    sources: dict[int, SourceRef]
    events: list[dict[str, Any]]
    features: pa.Table
    lifetimes: list[Lifetime]
    reviewers: int
    model_version: str | None
    context_s: float


def active_ontology(conn: Conn, project_id: str) -> OntologyRef | None:
    row = conn.execute(query("datasets", "active_ontology"), {"project_id": project_id}
                       ).fetchone()
    if row is None:
        return None
    return OntologyRef(str(row["name"]), int(row["version"]), str(row["sha256"]),
                       dict(row["types"] or {}))


def _sources(conn: Conn, project_id: str) -> dict[int, SourceRef]:
    out: dict[int, SourceRef] = {}
    for r in conn.execute(query("datasets", "sources"), {"project_id": project_id}):
        attrs = dict(r["attributes"] or {})
        out[int(r["source_id"])] = SourceRef(
            int(r["source_id"]), str(r["name"]), str(r["units"]),
            None if r["fps"] is None else float(r["fps"]),
            bool(attrs.get("simulated")) or "preset" in attrs)
    return out


def fetch_features(conn: Conn, project_id: str, context_s: float) -> pa.Table:
    """Every actor's kinematics over each event's span ± context_s, as FEATURES_SCHEMA."""
    names = FEATURES_SCHEMA.names
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query("datasets", "features"),
                    {"project_id": project_id, "context_s": context_s})
        rows = cur.fetchall()
    # Query column order: event_id, role, track_id, ts_us, t_rel_s, in_span, frame, ...
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for name, values in zip(names, columns, strict=True):
        typ = FEATURES_SCHEMA.field(name).type
        if name == "ts":
            arrays.append(pa.array(values, pa.int64()).cast(typ))
        else:
            arrays.append(pa.array(values, typ))
    return pa.Table.from_arrays(arrays, schema=FEATURES_SCHEMA)


def fetch_lifetimes(conn: Conn, project_id: str) -> list[Lifetime]:
    return [Lifetime(int(r["event_id"]), str(r["role"]), str(r["track_id"]),
                     None if r["first_us"] is None else int(r["first_us"]),
                     None if r["last_us"] is None else int(r["last_us"]))
            for r in conn.execute(query("datasets", "track_lifetimes"),
                                  {"project_id": project_id})]


def collect(conn: Conn, project_id: str, context_s: float) -> Collected:
    """Everything an export needs, read in one snapshot (REPEATABLE READ is the caller's)."""
    params = {"project_id": project_id}
    events = [dict(r) for r in conn.execute(query("datasets", "events"), params)]
    reviewers = conn.execute(query("datasets", "reviewers"), params).fetchone()
    versions = Counter(str(e["model_version"]) for e in events if e["model_version"])
    model_version = (sorted(versions.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
                     if versions else None)
    return Collected(
        project_id=project_id,
        ontology=active_ontology(conn, project_id),
        sources=_sources(conn, project_id),
        events=events,
        features=fetch_features(conn, project_id, context_s),
        lifetimes=fetch_lifetimes(conn, project_id),
        reviewers=int(reviewers["reviewers"]) if reviewers else 0,
        model_version=model_version,
        context_s=context_s,
    )


def events_table(events: list[dict[str, Any]], sources: dict[int, SourceRef],
                 split_of_source: dict[str, str]) -> pa.Table:
    """The events as EVENTS_SCHEMA, each with its source's split."""
    cols: dict[str, list[Any]] = {name: [] for name in EVENTS_SCHEMA.names}
    for e in events:
        src = sources[int(e["source_id"])]
        actors = dict(e["actors"])
        cols["event_id"].append(int(e["event_id"]))
        cols["split"].append(split_of_source[src.name])
        cols["source"].append(src.name)
        cols["type"].append(str(e["type"]))
        cols["actors"].append([{"role": k, "track_id": str(actors[k])} for k in sorted(actors)])
        for key in ("zone", "route", "trigger", "latency_s", "rule_score", "model_score",
                    "model_version", "ontology_version", "confidence", "verification",
                    "units", "start_s", "end_s"):
            cols[key].append(e[key])
        cols["start_ts"].append(int(e["start_us"]))
        cols["end_ts"].append(int(e["end_us"]))
        cols["duration_s"].append((int(e["end_us"]) - int(e["start_us"])) / 1e6)
    arrays = []
    for name in EVENTS_SCHEMA.names:
        typ = EVENTS_SCHEMA.field(name).type
        if name in ("start_ts", "end_ts"):
            arrays.append(pa.array(cols[name], pa.int64()).cast(typ))
        else:
            arrays.append(pa.array(cols[name], typ))
    return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)
