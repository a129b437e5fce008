"""`secinf tune`: fit rule thresholds on simulated scenes by coordinate search.

Tuning scenes are simulated from the *tuning* seeds (keep them apart from evaluation
seeds; docs/rules.md records both), loaded and ticked once. Each trial then stores a
modified ontology inside a transaction, runs its rules over the tuning sources, scores
them against truth and rolls back, so trials leave nothing behind. Event types are
independent, so one trial perturbs the k-th tunable number of every type at once and each
type keeps its own best value. A change is kept only if it raises that type's F1.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from workers.db.queries import query
from workers.errors import UserError
from workers.pipeline.runner import tick
from workers.pipeline.scene_copy import load_result
from workers.rules.ontology import Ontology, dump_ontology, parse_ontology
from workers.rules.store import write_compiled
from workers.simulate import EVENT_TYPES, preset_config, simulate

from .matching import TypeScore, match_events
from .truth import SourceRef, load_candidates, parse_truth, resolve_source

Conn = psycopg.Connection[Any]
MULTIPLIERS = (0.8, 0.9, 1.1, 1.25)
MIN_GAIN = 0.005
_SCRATCH_VERSION = 2_000_000_000


def parse_seeds(text: str) -> list[int]:
    """'0-4' or '0,2,5' → seeds."""
    try:
        if "-" in text:
            lo, hi = (int(p) for p in text.split("-", 1))
            return list(range(lo, hi + 1))
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise UserError(f"--seeds {text!r}: use a range like 0-4 or a list like 0,2,5") from exc


@dataclass
class TuneReport:
    """Before/after F1 per type and the tuned ontology text."""

    version: int
    presets: list[str]
    seeds: list[int]
    before: dict[str, float]
    after: dict[str, float]
    changes: dict[str, dict[str, list[float]]]
    yaml: str

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "presets": self.presets, "seeds": self.seeds,
                "before": self.before, "after": self.after, "changes": self.changes}


def tunables(data: dict[str, Any], tname: str) -> list[tuple[str, ...]]:
    """Paths of the tunable numbers of one type, in a stable order."""
    spec = data["types"][tname]
    out: list[tuple[str, ...]] = [(k,) for k in ("min_duration_s", "max_gap_s") if k in spec]
    for k, v in sorted((spec.get("params") or {}).items()):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "lookback_s":
            out.append(("params", k))
    return out


def _get(spec: dict[str, Any], path: tuple[str, ...]) -> float:
    node: Any = spec
    for p in path:
        node = node[p]
    return float(node)


def _set(spec: dict[str, Any], path: tuple[str, ...], value: float) -> None:
    node: Any = spec
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = round(value, 4)


def _scenes(conn: Conn, pid: str, presets: list[str], seeds: list[int], duration: float,
            progress: Callable[[str], Any]) -> list[tuple[SourceRef, Any]]:
    scenes = []
    for preset in presets:
        for seed in seeds:
            progress(f"simulating {preset} seed {seed}")
            res = simulate(preset_config(preset, seed=seed, duration=duration))
            name = f"tune-{preset}-{seed}-{int(duration)}"
            load_result(conn, pid, res, name=name)
            truth = parse_truth(json.loads(json.dumps(res.truth, default=float)))
            scenes.append((name, truth))
    progress("computing features")
    tick(conn, until_idle=True)
    return [(resolve_source(conn, name, pid), truth) for name, truth in scenes]


def _score(conn: Conn, pid: str, data: dict[str, Any],
           scenes: list[tuple[SourceRef, Any]]) -> dict[str, float]:
    """F1 per type of the ontology `data` over the scenes; leaves nothing behind."""
    onto = parse_ontology(dump_ontology({**data, "version": _SCRATCH_VERSION}), "<trial>")
    totals = {t: TypeScore() for t in onto.types}
    try:
        conn.execute("UPDATE rules.ontologies SET active = false WHERE project_id = %s",
                     (pid,))
        oid = conn.execute(query("rules", "insert_ontology"), {
            "project_id": pid, "name": onto.name, "version": onto.version,
            "sha256": onto.sha256, "yaml": onto.text, "parsed": Jsonb(onto.data)}).fetchone()
        assert oid is not None
        ontology_id = int(oid["ontology_id"] if isinstance(oid, dict) else oid[0])
        write_compiled(conn, pid, ontology_id, onto)
        conn.execute(query("rules", "activate"), {"ontology_id": ontology_id})
        for src, truth in scenes:
            conn.execute(query("rules", "run_rules"),
                         {"source_id": src.source_id, "from_ts": None, "to_ts": "infinity"})
            cands = load_candidates(conn, src, ontology_id)
            res = match_events(truth.events, cands, types=EVENT_TYPES)
            for t, s in res.per_type.items():
                totals.setdefault(t, TypeScore()).add(s)
    finally:
        conn.rollback()
    return {t: totals[t].f1 for t in onto.types}


def tune(conn: Conn, pid: str, onto: Ontology, presets: list[str], seeds: list[int],
         duration: float = 120.0, progress: Callable[[str], Any] = lambda _m: None,
         rounds: int = 1) -> TuneReport:
    """Coordinate search over every type's tunable numbers; returns the tuned version."""
    if not seeds:
        raise UserError("--seeds names no seed")
    scenes = _scenes(conn, pid, presets, seeds, duration, progress)
    best = copy.deepcopy(onto.data)
    progress("scoring the starting ontology")
    before = _score(conn, pid, best, scenes)
    current = dict(before)
    changes: dict[str, dict[str, list[float]]] = {}
    depth = max(len(tunables(best, t)) for t in best["types"])
    for _ in range(rounds):
        for k in range(depth):
            for mult in MULTIPLIERS:
                progress(f"parameter #{k + 1}, x {mult}")
                trial = copy.deepcopy(best)
                moved: dict[str, tuple[tuple[str, ...], float, float]] = {}
                for t in trial["types"]:
                    paths = tunables(trial, t)
                    if k < len(paths):
                        old = _get(trial["types"][t], paths[k])
                        _set(trial["types"][t], paths[k], old * mult)
                        moved[t] = (paths[k], old, old * mult)
                if not moved:
                    continue
                scores = _score(conn, pid, trial, scenes)
                for t, (path, old, new) in moved.items():
                    if scores[t] > current[t] + MIN_GAIN:
                        _set(best["types"][t], path, new)
                        current[t] = scores[t]
                        changes.setdefault(t, {})[".".join(path)] = [old, round(new, 4)]
    best["version"] = int(onto.version) + 1
    summary = ", ".join(f"{t} {before[t]:.2f}→{current[t]:.2f}" for t in before)
    best["description"] = (f"{onto.data.get('description', '')} Tuned from v{onto.version} on "
                           f"{'+'.join(presets)} seeds {seeds} ({duration:g} s): "
                           f"F1 {summary}.").strip()
    text = dump_ontology(best)
    parse_ontology(text, "<tuned>")
    return TuneReport(best["version"], presets, seeds, before, current, changes, text)
