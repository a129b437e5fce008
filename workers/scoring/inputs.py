"""Read what the window builder needs from the database: candidates, their actors'
kinematics and zone presence, and the pair's relations — four set-based queries per batch,
whatever its size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from workers.db.queries import query
from workers.scoring.windows import ActorSeries, CandidateInput, PairSeries, window_span

Conn = psycopg.Connection[Any]
_KIN = ("t", "x", "y", "speed", "accel", "turn_rate", "heading")
_REL = ("t", "distance", "approach_speed", "rel_speed", "heading_diff", "lon_offset",
        "lat_offset")


@dataclass(frozen=True)
class CandidateRow:
    """A candidate as stored (times in epoch seconds)."""

    candidate_id: int
    project_id: str
    source_id: int
    type: str
    actors: list[str]
    """Track ids in role-name order."""
    zone: str | None
    rule_score: float
    start: float
    end: float
    trigger: float | None


def _column(rows: Sequence[dict[str, Any]], name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([np.nan if r[name] is None else float(r[name]) for r in rows],
                    dtype=np.float64)


def fetch_candidates(conn: Conn, ids: Sequence[int],
                     project_id: str | None = None) -> list[CandidateRow]:
    """The candidates among `ids` (of the project, when given), by id."""
    rows = conn.execute(query("scoring", "candidates"),
                        {"ids": list(ids), "project_id": project_id}).fetchall()
    return [CandidateRow(int(r["candidate_id"]), str(r["project_id"]), int(r["source_id"]),
                         str(r["type"]), [str(r["actors"][k]) for k in sorted(r["actors"])],
                         r["zone"], float(r["rule_score"]), float(r["start_s"]),
                         float(r["end_s"]), r["trigger_s"]) for r in rows]


def _grouped(rows: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[int(r["req"]) - 1].append(r)
    return out


def load_inputs(conn: Conn, cands: Sequence[CandidateRow]) -> list[CandidateInput]:
    """The window inputs of each candidate (same order)."""
    kin_req: list[tuple[int, str, float, float]] = []
    rel_req: list[tuple[int, str, str, float, float]] = []
    for c in cands:
        lo, hi = window_span(c.start, c.end)
        for track in c.actors[:2]:
            kin_req.append((c.source_id, track, lo - 1.0, hi + 1.0))
        if len(c.actors) >= 2:
            rel_req.append((c.source_id, c.actors[0], c.actors[1], lo - 1.0, hi + 1.0))
    kin_params = {"source": [r[0] for r in kin_req], "track": [r[1] for r in kin_req],
                  "lo": [r[2] for r in kin_req], "hi": [r[3] for r in kin_req]}
    kin = _grouped(conn.execute(query("scoring", "kinematics"), kin_params).fetchall())
    zones = _grouped(conn.execute(query("scoring", "zones"), kin_params).fetchall())
    rel = _grouped(conn.execute(query("scoring", "relations"), {
        "source": [r[0] for r in rel_req], "track": [r[1] for r in rel_req],
        "other": [r[2] for r in rel_req], "lo": [r[3] for r in rel_req],
        "hi": [r[4] for r in rel_req]}).fetchall()) if rel_req else {}
    out: list[CandidateInput] = []
    k_i = r_i = 0
    for c in cands:
        actors = []
        for _ in c.actors[:2]:
            rows = kin.get(k_i, [])
            cols = {n: _column(rows, n) for n in _KIN}
            intervals = [(str(z["zone_name"]), float(z["entered_s"]), float(z["left_s"]))
                         for z in zones.get(k_i, [])]
            actors.append(ActorSeries(**cols, zones=tuple(intervals)))
            k_i += 1
        pair = None
        if len(c.actors) >= 2:
            rows = rel.get(r_i, [])
            pair = PairSeries(**{n: _column(rows, n) for n in _REL})
            r_i += 1
        out.append(CandidateInput(c.candidate_id, c.type, c.start, c.end, c.rule_score, actors,
                                  pair, c.zone, c.trigger))
    return out
