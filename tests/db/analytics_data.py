"""Known events, candidates and tracks for the analytics tests (admin connection).

Project A has sources a1 and a2, project B source b1. Every figure the tests expect is
worked out by hand from the tables below (see the comments in test_analytics_metrics.py).
D1 is Monday 2026-03-02 (UTC); D2, D3, D4 the days after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.support.factories import make_project

Conn = psycopg.Connection[dict[str, Any]]

D1 = datetime(2026, 3, 2, tzinfo=UTC)
D2, D3, D4 = (D1 + timedelta(days=n) for n in (1, 2, 3))


def at(day: datetime, hhmm: str) -> datetime:
    h, m = hhmm.split(":")
    return day + timedelta(hours=int(h), minutes=int(m))


@dataclass(frozen=True)
class Ev:
    source: str  # a1 | a2 | b1
    type: str
    start: datetime
    duration_s: float
    verification: str  # rule | model | human
    zone: str | None = None
    route: str | None = None
    trigger: str | None = None
    latency_s: float | None = None


EVENTS: list[Ev] = [
    # a1: dwell in two zones
    Ev("a1", "dwell", at(D1, "10:00"), 3.0, "rule", zone="gate"),
    Ev("a1", "dwell", at(D1, "10:10"), 4.99, "model", zone="gate"),
    Ev("a1", "dwell", at(D1, "10:20"), 5.0, "human", zone="gate"),
    Ev("a1", "dwell", at(D1, "10:30"), 12.3, "rule", zone="gate"),
    Ev("a1", "dwell", at(D1, "11:00"), 0.5, "rule", zone="bench"),
    Ev("a1", "dwell", at(D1, "11:30"), 7.0, "human", zone="bench"),
    # a1: follow
    Ev("a1", "follow", at(D1, "10:05"), 8.0, "rule"),
    Ev("a1", "follow", at(D1, "10:20"), 6.0, "model"),
    Ev("a1", "follow", at(D1, "11:10"), 10.0, "human"),
    Ev("a1", "follow", at(D2, "09:00"), 5.0, "rule"),
    # a1: route choices
    Ev("a1", "choose_route", at(D1, "10:40"), 4.0, "rule", zone="fork", route="north"),
    Ev("a1", "choose_route", at(D1, "10:41"), 4.0, "rule", zone="fork", route="north"),
    Ev("a1", "choose_route", at(D1, "11:40"), 4.0, "human", zone="fork", route="north"),
    Ev("a1", "choose_route", at(D1, "11:45"), 4.0, "model", zone="fork", route="south"),
    Ev("a1", "choose_route", at(D2, "09:30"), 4.0, "rule", zone="plaza", route="east"),
    Ev("a1", "choose_route", at(D2, "09:31"), 4.0, "rule", zone="plaza", route="east"),
    # a1: startles
    Ev("a1", "startle", at(D1, "10:50"), 1.0, "rule", trigger="bang", latency_s=0.10),
    Ev("a1", "startle", at(D1, "10:51"), 1.0, "rule", trigger="bang", latency_s=0.29),
    Ev("a1", "startle", at(D1, "10:52"), 1.0, "model", trigger="bang", latency_s=0.30),
    Ev("a1", "startle", at(D1, "11:50"), 1.0, "rule", trigger="bang", latency_s=0.74),
    Ev("a1", "startle", at(D1, "11:55"), 1.0, "human", trigger="horn", latency_s=1.00),
    # a2
    Ev("a2", "dwell", at(D1, "10:15"), 6.0, "rule", zone="gate"),
    Ev("a2", "follow", at(D1, "10:30"), 5.0, "rule"),
    Ev("a2", "follow", at(D4, "12:00"), 5.0, "rule"),  # a day without tracks
    Ev("a2", "choose_route", at(D1, "10:45"), 4.0, "rule", zone="fork", route="south"),
    Ev("a2", "startle", at(D1, "10:55"), 1.0, "rule", trigger="bang", latency_s=0.5),
    # b1 (project B): must never show for A
    Ev("b1", "dwell", at(D1, "10:00"), 100.0, "rule", zone="gate"),
    Ev("b1", "follow", at(D1, "10:00"), 5.0, "rule"),
    Ev("b1", "choose_route", at(D1, "10:00"), 4.0, "rule", zone="fork", route="west"),
    Ev("b1", "startle", at(D1, "10:00"), 1.0, "rule", trigger="bang", latency_s=2.0),
    Ev("b1", "meet", at(D1, "10:00"), 9.0, "model"),
]

# Candidates besides the accepted ones behind human events: (source, type, start, status).
CANDIDATES: list[tuple[str, str, datetime, str]] = [
    ("a1", "dwell", at(D1, "10:01"), "new"),
    ("a1", "dwell", at(D1, "10:02"), "new"),
    ("a1", "follow", at(D1, "10:03"), "scored"),
    ("a1", "follow", at(D1, "10:04"), "rejected"),
    ("a1", "meet", at(D1, "10:06"), "in_review"),
    ("b1", "meet", at(D1, "10:00"), "new"),
]

# Distinct tracks per source and day: the follow rate's actors.
TRACKS: dict[tuple[str, datetime], list[str]] = {
    ("a1", D1): ["t1", "t2", "t3", "t4"],
    ("a1", D2): ["t1", "t5"],
    ("a2", D1): ["u1", "u2"],
    ("a2", D3): ["u1", "u3", "u4"],  # a day without follows
    ("b1", D1): [f"v{i}" for i in range(7)],
}


@dataclass(frozen=True)
class Analytics:
    a: str
    b: str
    sources: dict[str, int]


def _candidate(db: Conn, project: str, source_id: int, ontology: int, type_: str,
               start: datetime, end: datetime, status: str, n: int, **attrs: Any) -> int:
    row = db.execute(
        "INSERT INTO candidates.candidates (project_id, source_id, type, actors, zone, route,"
        " trigger, latency_s, start_ts, end_ts, rule_name, ontology_id, ontology_version,"
        " rule_score, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1, 0.8, %s)"
        " RETURNING candidate_id",
        (project, source_id, type_, json.dumps({"a": f"c{n}"}), attrs.get("zone"),
         attrs.get("route"), attrs.get("trigger"), attrs.get("latency_s"), start, end,
         f"default.{type_}", ontology, status)).fetchone()
    assert row is not None
    return int(row["candidate_id"])


def build(db: Conn) -> Analytics:
    """Write the tables above; commits."""
    a = make_project(db, "acme", "analytics-a")
    b = make_project(db, "globex", "analytics-b")
    project_of = {"a1": a, "a2": a, "b1": b}
    sources: dict[str, int] = {}
    ontologies: dict[str, int] = {}
    for pid in (a, b):
        row = db.execute(
            "INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed,"
            " active) VALUES (%s, 'default', 1, repeat('0', 64), '', '{}', true)"
            " RETURNING ontology_id", (pid,)).fetchone()
        assert row is not None
        ontologies[pid] = int(row["ontology_id"])
    for name, pid in project_of.items():
        row = db.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, %s, 10)"
                         " RETURNING source_id", (pid, name)).fetchone()
        assert row is not None
        sources[name] = int(row["source_id"])
    n = 0
    for ev in EVENTS:
        n += 1
        pid, sid = project_of[ev.source], sources[ev.source]
        end = ev.start + timedelta(seconds=ev.duration_s)
        attrs = {"zone": ev.zone, "route": ev.route, "trigger": ev.trigger,
                 "latency_s": ev.latency_s}
        candidate_id = decision_id = None
        if ev.verification == "human":
            candidate_id = _candidate(db, pid, sid, ontologies[pid], ev.type, ev.start, end,
                                      "accepted", n, **attrs)
            row = db.execute(
                "INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind,"
                " start_ts, end_ts) VALUES (%s, %s, 'rita', 'first', 'accept', %s, %s)"
                " RETURNING decision_id", (pid, candidate_id, ev.start, end)).fetchone()
            assert row is not None
            decision_id = row["decision_id"]
        db.execute(
            "INSERT INTO events.events (project_id, source_id, candidate_id, type, actors, zone,"
            " route, trigger, latency_s, start_ts, end_ts, confidence, source, verified_by,"
            " decision_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0.9, %s, %s, %s)",
            (pid, sid, candidate_id, ev.type, json.dumps({"a": f"e{n}"}), ev.zone, ev.route,
             ev.trigger, ev.latency_s, ev.start, end, ev.verification,
             "rita" if ev.verification == "human" else f"default.{ev.type}", decision_id))
    for source, type_, start, status in CANDIDATES:
        n += 1
        pid = project_of[source]
        _candidate(db, pid, sources[source], ontologies[pid], type_, start,
                   start + timedelta(seconds=5), status, n)
    for (source, day), tracks in TRACKS.items():
        pid = project_of[source]
        batch = db.execute(
            "INSERT INTO ingest.batches (project_id, source_id, idempotency_key, format, status)"
            " VALUES (%s, %s, %s, 'api', 'applied') RETURNING batch_id",
            (pid, sources[source], f"{source}-{day:%F}")).fetchone()
        assert batch is not None
        # Three points per track, at noon: several points of one track count once.
        db.execute(
            "INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x, y,"
            " batch_id) SELECT %s, %s, t, f, %s + f * interval '100 ms', f, 0, %s"
            " FROM unnest(%s::text[]) t CROSS JOIN generate_series(0, 2) f",
            (pid, sources[source], day + timedelta(hours=12), batch["batch_id"], tracks))
    db.commit()
    return Analytics(a, b, sources)
