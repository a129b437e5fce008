"""Quality gates checked before a dataset version is published. Every gate runs (so the
report is complete); any failure blocks publishing and the report names the gate.

schema            files read back have the expected Parquet schema and row counts; required
                  values present; types, roles and attributes as the ontology defines them
finite_values     no NaN or infinity anywhere; scores and confidence within [0, 1]
spans_in_tracks   every actor's track covers the event's span (± one frame)
no_duplicates     no two events of the same type, source, actors and attributes whose spans
                  are equal or overlap with temporal IoU ≥ duplicate_iou
min_per_type      at least min_per_type events of every type present
class_balance     no type above max_class_share of the events, largest/smallest ≤ max_imbalance
drift             against the previous published version: type-mix total-variation distance
                  and duration KS statistics within their limits
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workers.datasets.collect import Lifetime, OntologyRef, SourceRef
from workers.datasets.schema import EVENTS_SCHEMA, FEATURES_SCHEMA, TABLES
from workers.datasets.stats import drift

ATTRIBUTE_COLUMNS = {"zone": "zone", "route": "route", "trigger": "trigger",
                     "latency": "latency_s"}
EXAMPLES = 20  # offenders listed per gate


@dataclass(frozen=True)
class GateConfig:
    """Limits of the gates (recorded in the manifest of every version)."""

    min_per_type: int = 5
    max_class_share: float = 0.6
    max_imbalance: float = 50.0
    max_type_tvd: float = 0.25
    max_duration_ks: float = 0.35
    drift_min_n: int = 20
    duplicate_iou: float = 0.9
    span_tolerance_s: float | None = None
    """None: one frame of the event's source (0.1 s when its fps is unknown)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    summary: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WrittenTable:
    """A Parquet file as the exporter wrote it."""

    path: Path
    table: str   # events | features
    rows: int


@dataclass(frozen=True)
class GateInputs:
    events: pa.Table
    features: pa.Table
    lifetimes: Sequence[Lifetime]
    ontology: OntologyRef | None
    sources: Mapping[int, SourceRef]
    statistics: Mapping[str, Any]
    previous: tuple[str, Mapping[str, Any]] | None  # (version, its statistics)
    written: Sequence[WrittenTable]


def _result(gate: str, problems: list[str], ok: str, details: dict[str, Any]) -> GateResult:
    if problems:
        shown = "; ".join(problems[:3]) + (f"; … {len(problems) - 3} more"
                                           if len(problems) > 3 else "")
        return GateResult(gate, False, shown, {**details, "problems": problems[:EXAMPLES],
                                               "problem_count": len(problems)})
    return GateResult(gate, True, ok, details)


# ------------------------------------------------------------------------------- schema
def check_schema(inp: GateInputs, cfg: GateConfig) -> GateResult:
    problems: list[str] = []
    for w in inp.written:
        expected = TABLES[w.table]
        got = pq.read_schema(w.path)
        if not got.equals(expected, check_metadata=False):
            problems.append(f"{w.path.parent.name}/{w.path.name}: schema differs from "
                            f"{w.table} schema")
        rows = pq.ParquetFile(w.path).metadata.num_rows
        if rows != w.rows:
            problems.append(f"{w.path.parent.name}/{w.path.name}: {rows} rows, {w.rows} written")
    for name, table, schema in (("events", inp.events, EVENTS_SCHEMA),
                                ("features", inp.features, FEATURES_SCHEMA)):
        for f in schema:
            nulls = table.column(f.name).null_count
            if not f.nullable and nulls:
                problems.append(f"{name}.{f.name}: {nulls} missing values")
    if inp.ontology is None:
        problems.append("the project has no active ontology: load one with `secinf rules load`")
    else:
        types = inp.ontology.types
        for e in inp.events.select(["event_id", "type", "actors", "zone", "route", "trigger",
                                    "latency_s"]).to_pylist():
            spec = types.get(e["type"])
            if spec is None:
                problems.append(f"event {e['event_id']}: type {e['type']!r} is not in ontology "
                                f"{inp.ontology.name} v{inp.ontology.version}")
                continue
            roles = sorted(a["role"] for a in e["actors"])
            if roles != sorted(spec.get("roles", [])):
                problems.append(f"event {e['event_id']} ({e['type']}): roles {roles}, ontology "
                                f"says {sorted(spec.get('roles', []))}")
            for attr in spec.get("attributes", []):
                column = ATTRIBUTE_COLUMNS.get(attr)
                if column and e[column] is None:
                    problems.append(f"event {e['event_id']} ({e['type']}): no {attr}")
    return _result("schema", problems, f"{len(inp.written)} files with the expected schemas",
                   {"files": len(inp.written)})


# ------------------------------------------------------------------------------- values
def _non_finite(col: pa.ChunkedArray) -> int:
    finite = pc.fill_null(pc.is_finite(col), True)
    return int(pc.sum(pc.cast(pc.invert(finite), pa.int64())).as_py() or 0)


def _outside(col: pa.ChunkedArray, lo: float, hi: float) -> int:
    bad = pc.or_(pc.less(col, lo), pc.greater(col, hi))
    return int(pc.sum(pc.cast(pc.fill_null(bad, False), pa.int64())).as_py() or 0)


def check_finite(inp: GateInputs, cfg: GateConfig) -> GateResult:
    problems: list[str] = []
    for name, table in (("events", inp.events), ("features", inp.features)):
        for f in table.schema:
            if pa.types.is_floating(f.type):
                n = _non_finite(table.column(f.name))
                if n:
                    problems.append(f"{name}.{f.name}: {n} NaN or infinite values")
    for column in ("confidence", "rule_score", "model_score"):
        n = _outside(inp.events.column(column), 0.0, 1.0)
        if n:
            problems.append(f"events.{column}: {n} values outside [0, 1]")
    n = _outside(inp.events.column("duration_s"), 0.0, float("inf"))
    if n:
        problems.append(f"events.duration_s: {n} negative durations")
    return _result("finite_values", problems, "every value finite and in range",
                   {"event_rows": inp.events.num_rows, "feature_rows": inp.features.num_rows})


# ------------------------------------------------------------------------------- spans
def check_spans(inp: GateInputs, cfg: GateConfig) -> GateResult:
    fps = {s.name: s.fps for s in inp.sources.values()}
    spans = {e["event_id"]: e for e in _rows(inp.events,
                                              ["event_id", "source", "start_ts", "end_ts"])}
    problems: list[str] = []
    for lt in inp.lifetimes:
        e = spans.get(lt.event_id)
        if e is None:
            continue
        rate = fps.get(e["source"])
        tol_s = cfg.span_tolerance_s if cfg.span_tolerance_s is not None else (
            1.0 / rate if rate else 0.1)
        tol = round(tol_s * 1e6)
        start, end = e["start_ts"], e["end_ts"]
        if lt.first_us is None or lt.last_us is None:
            problems.append(f"event {lt.event_id}: track {lt.track_id} ({lt.role}) has no points")
        elif start < lt.first_us - tol or end > lt.last_us + tol:
            problems.append(
                f"event {lt.event_id}: span [{(start - lt.first_us) / 1e6:+.2f} s, "
                f"{(end - lt.last_us) / 1e6:+.2f} s] outside track {lt.track_id} ({lt.role})")
    return _result("spans_in_tracks", problems,
                   f"{len(inp.lifetimes)} actor spans inside their tracks",
                   {"actor_spans": len(inp.lifetimes),
                    "tolerance_s": cfg.span_tolerance_s or "one frame"})


def _rows(table: pa.Table, columns: list[str]) -> list[dict[str, Any]]:
    """Rows of some columns, timestamps as epoch microseconds (exact integers)."""
    part = table.select(columns)
    for i, f in enumerate(part.schema):
        if pa.types.is_timestamp(f.type):
            part = part.set_column(i, f.name, pc.cast(part.column(i), pa.int64()))
    rows: list[dict[str, Any]] = part.to_pylist()
    return rows


# ------------------------------------------------------------------------------- duplicates
def check_duplicates(inp: GateInputs, cfg: GateConfig) -> GateResult:
    symmetric = {t for t, spec in (inp.ontology.types.items() if inp.ontology else [])
                 if spec.get("symmetric")}
    groups: dict[tuple[Any, ...], list[tuple[int, int, int]]] = defaultdict(list)
    for e in _rows(inp.events, ["event_id", "source", "type", "actors", "zone", "route",
                                "trigger", "start_ts", "end_ts"]):
        actors: tuple[Any, ...] = (
            tuple(sorted(a["track_id"] for a in e["actors"])) if e["type"] in symmetric
            else tuple(sorted((a["role"], a["track_id"]) for a in e["actors"])))
        key = (e["source"], e["type"], actors, e["zone"], e["route"], e["trigger"])
        groups[key].append((e["start_ts"], e["end_ts"], e["event_id"]))
    problems: list[str] = []
    for spans in groups.values():
        spans.sort()
        for i, (s1, e1, id1) in enumerate(spans):
            for s2, e2, id2 in spans[i + 1:]:
                if s2 > e1:
                    break
                union = max(e1, e2) - min(s1, s2)
                inter = min(e1, e2) - max(s1, s2)
                iou = 1.0 if union == 0 else inter / union
                if (s1, e1) == (s2, e2) or iou >= cfg.duplicate_iou:
                    problems.append(f"events {id1} and {id2} duplicate each other "
                                    f"(temporal IoU {iou:.2f})")
    return _result("no_duplicates", problems, "no duplicate events",
                   {"duplicate_iou": cfg.duplicate_iou})


# ------------------------------------------------------------------------------- balance
def check_min_per_type(inp: GateInputs, cfg: GateConfig) -> GateResult:
    by_type: dict[str, int] = dict(inp.statistics["by_type"])
    problems = [f"{t}: {n} events < {cfg.min_per_type}" for t, n in sorted(by_type.items())
                if n < cfg.min_per_type]
    absent = sorted(set(inp.ontology.types) - set(by_type)) if inp.ontology else []
    return _result("min_per_type", problems,
                   f"every type has ≥ {cfg.min_per_type} events",
                   {"min_per_type": cfg.min_per_type, "by_type": by_type,
                    "absent_types": absent})


def check_balance(inp: GateInputs, cfg: GateConfig) -> GateResult:
    by_type: dict[str, int] = dict(inp.statistics["by_type"])
    total = sum(by_type.values())
    problems: list[str] = []
    details: dict[str, Any] = {"max_class_share": cfg.max_class_share,
                               "max_imbalance": cfg.max_imbalance}
    if total:
        top, top_n = max(by_type.items(), key=lambda kv: (kv[1], kv[0]))
        low_n = min(by_type.values())
        share, ratio = top_n / total, top_n / low_n
        details.update({"largest_type": top, "largest_share": round(share, 4),
                        "imbalance": round(ratio, 2)})
        if share > cfg.max_class_share:
            problems.append(f"{top} is {share:.0%} of the events > {cfg.max_class_share:.0%}")
        if ratio > cfg.max_imbalance:
            problems.append(f"largest/smallest type = {ratio:.1f} > {cfg.max_imbalance:g}")
    return _result("class_balance", problems, "class balance within limits", details)


# ------------------------------------------------------------------------------- drift
def check_drift(inp: GateInputs, cfg: GateConfig) -> GateResult:
    limits = {"max_type_tvd": cfg.max_type_tvd, "max_duration_ks": cfg.max_duration_ks,
              "min_n": cfg.drift_min_n}
    if inp.previous is None:
        return GateResult("drift", True, "no previous published version to compare with",
                          {"previous_version": None, **limits})
    version, previous = inp.previous
    report = drift(inp.statistics, previous, min_n=cfg.drift_min_n)
    problems: list[str] = []
    if report["type_mix_tvd"] > cfg.max_type_tvd:
        problems.append(f"type mix moved: TVD {report['type_mix_tvd']:.3f} > "
                        f"{cfg.max_type_tvd:g} against {version}")
    for key, r in report["duration_ks"].items():
        if r["ks"] is not None and r["ks"] > cfg.max_duration_ks:
            what = "all durations" if key == "all" else f"durations of {key}"
            problems.append(f"{what} moved: KS {r['ks']:.3f} > {cfg.max_duration_ks:g} "
                            f"against {version}")
    return _result("drift", problems, f"within limits against {version}",
                   {"previous_version": version, **limits, **report})


GATES: tuple[Callable[[GateInputs, GateConfig], GateResult], ...] = (
    check_schema, check_finite, check_spans, check_duplicates, check_min_per_type,
    check_balance, check_drift)


def run_gates(inp: GateInputs, cfg: GateConfig) -> list[GateResult]:
    """Every gate's result, in order."""
    return [gate(inp, cfg) for gate in GATES]
