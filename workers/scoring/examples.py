"""Training examples of a project (scoring.examples): what people decided and labelled,
each with the window the model learns from.

* **Reviews**: `scoring.sync_review_examples` (SQL) keeps one example per live decision.
* **Imported labels**: `import_truth` judges a source's candidates against a truth.json
  with the evaluation matcher (type, actors, temporal IoU >= 0.5): matched = 1, the other
  candidates of a judged type = 0.
* **Windows**: `build_missing_windows` builds each valid example's window once, from the
  features as they are under the settings the example was made under, and stores it with
  `WINDOW_VERSION`. `refresh` marks examples of changed settings or window definitions
  invalid (with the reason): training never mixes them in silently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from workers.db.queries import query
from workers.errors import UserError
from workers.evaluate.matching import Event, match_events, temporal_iou
from workers.evaluate.truth import load_truth, resolve_source
from workers.scoring.inputs import fetch_candidates, load_inputs
from workers.scoring.train import Dataset
from workers.scoring.windows import (
    DEFAULT_STEPS,
    N_FEATURES,
    WINDOW_VERSION,
    build_windows,
    type_index,
)

Conn = psycopg.Connection[Any]
WINDOW_BATCH = 256


def _value(conn: Conn, name: str, params: dict[str, Any]) -> Any:
    """The one value of a one-row, one-column query of workers/queries/training.sql."""
    row = conn.execute(query("training", name), params).fetchone()
    assert row is not None, name
    return next(iter(row.values()))


def refresh(conn: Conn, project_id: str) -> dict[str, Any]:
    """Bring review examples up to date and mark stale ones invalid; returns the counts.
    Does not commit."""
    counts = dict(_value(conn, "sync_review_examples", {"project_id": project_id}))
    marked = _value(conn, "invalidate_stale_examples",
                    {"project_id": project_id, "window_version": WINDOW_VERSION})
    return {"review": counts, "invalidated": int(marked)}


def readmit(conn: Conn, project_id: str) -> int:
    """Re-admit every invalid example under today's feature settings (its window is built
    again). Does not commit."""
    return int(_value(conn, "refresh_examples", {"project_id": project_id}))


def status(conn: Conn, project_id: str) -> dict[str, Any]:
    """The project's examples per origin, new ones, invalid ones and why (SQL
    scoring.examples_status)."""
    return dict(_value(conn, "examples_status", {"project_id": project_id}))


def judged_classes(truth: list[Event], classes: dict[str, str | None],
                   types: list[str] | None) -> dict[str, set[str]]:
    """Per judged type, the actor classes its truth events have (a candidate of another
    class is not judged: MEVA's `stop` labels vehicles only). `types` narrows the judged
    types; by default they are the types the truth file has."""
    chosen = types or sorted({e.type for e in truth})
    out: dict[str, set[str]] = {}
    for etype in chosen:
        seen = {classes.get(a) for e in truth if e.type == etype for a in e.actors.values()}
        out[etype] = {c for c in seen if c}
    return out


@dataclass(frozen=True)
class TruthImport:
    source: str
    sha256: str
    judged: dict[str, list[str]]
    candidates: int
    positives: int
    truth_events: int
    matched_truth: int
    truth_by_type: dict[str, int] = field(default_factory=dict)
    """Labelled events per judged type (the denominator of AP over labelled events)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def import_truth(conn: Conn, project: str, source: str, truth_path: Path,
                 types: list[str] | None = None) -> TruthImport:
    """Label the source's candidates (both tiers) from a truth file as training examples
    of the project; a re-import replaces the source's truth labels of the judged types.
    Commits; nothing is written when the file is refused."""
    truth = load_truth(truth_path).events
    src = resolve_source(conn, source, project)
    classes = {str(r["track_id"]): r["class"] for r in conn.execute(
        query("training", "track_classes"), {"source_id": src.source_id}).fetchall()}
    judged = judged_classes(truth, classes, types)
    if not judged:
        raise UserError(f"{truth_path}: no events to learn from (and no --type given)")
    rows = conn.execute(query("scoring", "source_candidates"),
                        {"source_id": src.source_id}).fetchall()
    if not rows:
        raise UserError(f"source {source!r} has no candidates yet: run `secinf tick "
                        "--until-idle` before importing its labels")

    def is_judged(r: dict[str, Any]) -> bool:
        allowed = judged.get(str(r["type"]))
        if allowed is None:
            return False
        return not allowed or all(classes.get(str(a)) in allowed for a in r["actors"].values())

    rows = [r for r in rows if is_judged(r)]
    cands = [Event(str(r["type"]), {str(k): str(v) for k, v in r["actors"].items()},
                   float(r["start_s"]), float(r["end_s"]),
                   {k: r[k] for k in ("zone", "route", "trigger") if r[k] is not None})
             for r in rows]
    kept_truth = [e for e in truth if e.type in judged]
    result = match_events(kept_truth, cands, types={t: () for t in judged})
    spans: dict[int, Event] = {j: kept_truth[i] for i, j, _ in result.pairs}
    labels, starts, ends, ious = [], [], [], []
    for j, c in enumerate(cands):
        t = spans.get(j)
        labels.append(t is not None)
        starts.append(t.start if t else c.start)
        ends.append(t.end if t else c.end)
        ious.append(temporal_iou(c.start, c.end, t.start, t.end) if t else None)
    sha = hashlib.sha256(truth_path.read_bytes()).hexdigest()
    ids = [int(r["candidate_id"]) for r in rows]
    conn.execute(query("training", "delete_truth_examples_except"),
                 {"source_id": src.source_id, "types": sorted(judged), "ids": ids})
    conn.execute(query("training", "upsert_truth_examples"),
                 {"sha256": sha, "ids": ids, "labels": labels, "starts": starts,
                  "ends": ends, "ious": ious})
    conn.commit()
    by_type = {t: sum(1 for e in kept_truth if e.type == t) for t in sorted(judged)}
    return TruthImport(src.name, sha, {t: sorted(c) for t, c in judged.items()}, len(rows),
                       int(sum(labels)), len(kept_truth), len(result.pairs), by_type)


def window_bytes(window: npt.NDArray[np.float64]) -> bytes:
    return np.ascontiguousarray(window, dtype="<f4").tobytes()


def window_from_bytes(data: bytes, steps: int = DEFAULT_STEPS) -> npt.NDArray[np.float64]:
    return np.frombuffer(data, dtype="<f4").reshape(steps, N_FEATURES).astype(np.float64)


def build_missing_windows(conn: Conn, project_id: str,
                          on_batch: Callable[[int, int], None] | None = None) -> int:
    """Build and store the window of every valid example that has none; returns how many.
    Commits after each batch (a long build keeps what it did)."""
    todo = conn.execute(query("training", "examples_without_window"),
                        {"project_id": project_id}).fetchall()
    done = 0
    for i in range(0, len(todo), WINDOW_BATCH):
        batch = todo[i:i + WINDOW_BATCH]
        by_candidate = {int(r["candidate_id"]): int(r["example_id"]) for r in batch}
        cands = fetch_candidates(conn, list(by_candidate))
        windows = build_windows(load_inputs(conn, cands), DEFAULT_STEPS)
        conn.execute(query("training", "store_windows"), {
            "ids": [by_candidate[c.candidate_id] for c in cands],
            "windows": [window_bytes(w) for w in windows], "window_version": WINDOW_VERSION})
        conn.commit()
        done += len(cands)
        if on_batch is not None:
            on_batch(done, len(todo))
    return done


@dataclass
class ExampleSet:
    """A project's valid, windowed examples as arrays, with where each came from."""

    data: Dataset
    example_ids: npt.NDArray[np.int64]
    candidate_ids: npt.NDArray[np.int64]
    source_ids: npt.NDArray[np.int64]
    origins: npt.NDArray[np.str_]
    event_types: npt.NDArray[np.str_]
    tiers: npt.NDArray[np.str_]
    source_names: dict[int, str]

    def __len__(self) -> int:
        return len(self.data)

    def subset(self, mask: npt.NDArray[np.bool_]) -> ExampleSet:
        return ExampleSet(self.data.subset(mask), self.example_ids[mask],
                          self.candidate_ids[mask], self.source_ids[mask], self.origins[mask],
                          self.event_types[mask], self.tiers[mask], self.source_names)


def load_examples(conn: Conn, project_id: str) -> ExampleSet:
    """The project's valid examples with a window of today's definition. A candidate with
    both a review and a truth example counts once, as the review (a person's decision on
    this very candidate wins over a label matched to it)."""
    rows = conn.execute(query("training", "training_examples"),
                        {"project_id": project_id, "window_version": WINDOW_VERSION}).fetchall()
    by_candidate: dict[int, dict[str, Any]] = {}
    for r in rows:
        cid = int(r["candidate_id"])
        if cid not in by_candidate or r["origin"] == "review":
            by_candidate[cid] = r
    kept = sorted(by_candidate.values(), key=lambda r: int(r["example_id"]))
    n = len(kept)
    windows = (np.stack([window_from_bytes(bytes(r["window_data"])) for r in kept]) if n
               else np.zeros((0, DEFAULT_STEPS, N_FEATURES)))
    sources = np.array([int(r["source_id"]) for r in kept], dtype=np.int64)
    data = Dataset(windows, np.array([type_index(str(r["type"])) for r in kept], np.int64),
                   np.array([1.0 if r["label"] else 0.0 for r in kept], np.float32),
                   np.array([float(r["rule_score"]) for r in kept]), sources)
    return ExampleSet(data, np.array([int(r["example_id"]) for r in kept], np.int64),
                      np.array([int(r["candidate_id"]) for r in kept], np.int64), sources,
                      np.array([str(r["origin"]) for r in kept]),
                      np.array([str(r["type"]) for r in kept]),
                      np.array([str(r["tier"]) for r in kept]),
                      {int(r["source_id"]): str(r["source_name"]) for r in kept})
