"""`secinf bench learning`: does a project model learn from people? Leave one labelled
scene out.

In a scratch database: a global model trained on simulated scenes (`--sim-scenes`), one
project with the training ontology (the default one plus the recall tier: shorter
intervals and widened predicates, so the model has the looser candidates to rescue), every
scene of the labelled development set ingested and ticked, and each scene's truth.json
imported as examples (`secinf models import-truth`). Then for every held-out scene and
judged type, **AP over the labelled events** (a labelled event that no candidate holds is
never recalled, so it caps the curve; docs/scoring.md says why this is the measure) of:

* `rule_score` over the **strict** candidates: the rules as written, what the product
  delivers without a model (rule_score auto-accept takes strict candidates only);
* `rule_score` over **every tier**: the same candidates the models rank;
* **simulation**: the global model alone, every tier;
* **labels**: a model trained from scratch on the other scenes' imported labels only;
* **simulation + labels**: the global model fine-tuned on the other scenes' labels (what
  `secinf train --project` does by default).

`bound` is the recall of every tier (no score can do better) and `gain` is
simulation + labels minus rule_score over the same candidates, `gain_vs_rules` minus
rule_score over the strict ones. Reviews carry the same information per candidate as
imported labels (a decision on a candidate vs. a label matched to it); the dev set has no
reviews, so they are not a column here. `--time-examples N` also times training from
scratch on N windows drawn with replacement from the examples (the cost depends on the
count, not on the content).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from workers import tenancy
from workers.bench.scratch import scratch_database
from workers.db.connect import connect
from workers.errors import UserError
from workers.evaluate.quality import DEFAULT_LABELLED, labelled_scenes
from workers.ingest import IngestRequest, ingest
from workers.pipeline import tick
from workers.rules import store
from workers.scoring import examples as ex
from workers.scoring.collect import TRAINING_RECALL_FACTOR, TRAINING_WIDEN, training_ontology
from workers.scoring.registry import load_model
from workers.scoring.train import Dataset, TrainConfig, average_precision, predict, train_model
from workers.scoring.training import run_training

ORG, PROJECT = "bench", "learning"


COLUMNS = ("rule_score_strict", "rule_score", "simulation", "labels", "simulation+labels")


def _ap(y: np.ndarray[Any, Any], s: np.ndarray[Any, Any], n_events: int) -> float | None:
    v = average_precision(y, s, n_events)
    return None if v is None else round(v, 4)


def held_out_row(scene: str, etype: str, n_events: int, labels: np.ndarray[Any, Any],
                 tiers: np.ndarray[Any, Any],
                 scores: dict[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
    """One held-out scene and type: AP over its `n_events` labelled events of each score
    (`scores`: rule_score, simulation, labels, simulation+labels over every candidate of
    the type; `rule_score_strict` is rule_score over the strict tier alone)."""
    strict = tiers == "strict"
    row: dict[str, Any] = {
        "scene": scene, "type": etype, "labelled": n_events,
        "candidates": f"{int(strict.sum())} + {int((~strict).sum())}",
        "true": f"{int(labels[strict].sum())} + {int(labels[~strict].sum())}",
        "rule_score_strict": _ap(labels[strict], scores["rule_score"][strict], n_events)}
    for col in COLUMNS[1:]:
        row[col] = _ap(labels, scores[col], n_events)
    row["bound"] = round(float(labels.sum()) / n_events, 4) if n_events else None
    tuned, rule, rules = row["simulation+labels"], row["rule_score"], row["rule_score_strict"]
    row["gain"] = None if tuned is None or rule is None else round(tuned - rule, 4)
    row["gain_vs_rules"] = None if tuned is None or rules is None else round(tuned - rules, 4)
    return row


def run_learning_bench(labelled: Path | None = None, sim_scenes: int = 6, epochs: int = 20,
                       time_examples: int = 0,
                       say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The leave-one-scene-out table (see the module text)."""
    say = say or (lambda _m: None)
    root = labelled or DEFAULT_LABELLED
    scenes = labelled_scenes(root) if root.is_dir() else []
    if len(scenes) < 2:
        raise UserError(f"no labelled scenes under {root} (need at least 2): pass --labelled")
    out: dict[str, Any] = {"scenes": [], "recall_factor": TRAINING_RECALL_FACTOR,
                           "widen": TRAINING_WIDEN, "epochs": epochs,
                           "sim_scenes": sim_scenes}
    n_events: dict[tuple[str, str], int] = {}
    with scratch_database("learning") as target, connect(conninfo=target) as conn:
        say(f"global model from {sim_scenes} simulated scenes")
        t0 = time.perf_counter()
        base_report = run_training(conn, scenes=sim_scenes, seed=0, epochs=12, duration=90.0)
        out["base_model"] = {"version": base_report["version"],
                             "seconds": round(time.perf_counter() - t0, 1)}
        base = load_model(conn, version=base_report["version"])
        pid = str(tenancy.create_project(conn, ORG, PROJECT)["project_id"])
        store.load(conn, pid, training_ontology())
        conn.execute("INSERT INTO pipeline.settings (project_id, key, value) "
                     "VALUES (%s, 'scoring_auto', 'false')", (pid,))
        conn.commit()
        for sc in scenes:
            say(f"ingest {sc.set}/{sc.name}")
            ingest(conn, IngestRequest(project=f"{ORG}/{PROJECT}", source=sc.source,
                                       path=sc.tracks, ended=True))  # recorded clips
        say("tick until idle")
        tick(conn, until_idle=True)
        for sc in scenes:
            imported = ex.import_truth(conn, f"{ORG}/{PROJECT}", sc.source, sc.truth,
                                       sorted(sc.judged))
            for etype, count in imported.truth_by_type.items():
                n_events[(sc.source, etype)] = count
        say("windows")
        ex.build_missing_windows(conn, pid)
        es = ex.load_examples(conn, pid)
    names = {sid: name for sid, name in es.source_names.items()}
    base_probs, _ = predict(base.model, base.norm, es.data.windows, es.data.types)
    for sid in sorted(names):
        held = es.source_ids == sid
        train = es.data.subset(~held)
        say(f"held out {names[sid]}: train on {int((~held).sum())} examples")
        scratch = train_model(train, None, TrainConfig(epochs=epochs + 10, seed=0))
        tuned = train_model(train, None, TrainConfig(epochs=epochs, seed=0, lr=5e-4),
                            init=(base.model, base.norm))
        test = es.data.subset(held)
        p_scratch, _ = predict(scratch.model, scratch.norm, test.windows, test.types)
        p_tuned, _ = predict(tuned.model, tuned.norm, test.windows, test.types)
        p_base = base_probs[held]
        types, tiers = es.event_types[held], es.tiers[held]
        for etype in sorted(set(types.tolist())):
            m = types == etype
            y = test.labels[m].astype(bool)
            total = n_events.get((names[sid], etype), 0)
            if total == 0:
                continue
            out["scenes"].append(held_out_row(names[sid], etype, total, y, tiers[m], {
                "rule_score": test.rule_scores[m], "simulation": p_base[m],
                "labels": p_scratch[m], "simulation+labels": p_tuned[m]}))
    out["summary"] = _summary(out["scenes"])
    if time_examples:
        out["timing"] = time_training(es.data, time_examples, epochs + 10)
    return out


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean AP per type over the held-out scenes, per column."""
    summary = []
    for etype in sorted({r["type"] for r in rows}):
        mine = [r for r in rows if r["type"] == etype]
        entry: dict[str, Any] = {"type": etype, "scenes": len(mine)}
        for col in (*COLUMNS, "bound", "gain", "gain_vs_rules"):
            vals = [r[col] for r in mine if r[col] is not None]
            entry[col] = round(float(np.mean(vals)), 4) if vals else None
        summary.append(entry)
    return summary


def time_training(data: Dataset, n: int, epochs: int) -> dict[str, Any]:
    """Seconds to train from scratch on n windows drawn with replacement from `data`."""
    idx = np.random.default_rng(0).integers(0, len(data), size=n)
    sample = Dataset(data.windows[idx], data.types[idx], data.labels[idx],
                     data.rule_scores[idx], data.scenes[idx])
    t0 = time.perf_counter()
    train_model(sample, None, TrainConfig(epochs=epochs, seed=0))
    seconds = time.perf_counter() - t0
    return {"examples": n, "epochs": epochs, "seconds": round(seconds, 1),
            "minutes": round(seconds / 60, 2), "target_minutes": 10}
