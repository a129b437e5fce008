"""`secinf bench learning`: does a project model learn from people? Leave one labelled
scene out.

In a scratch database: a global model trained on simulated scenes (`--sim-scenes`), one
project with the default ontology plus the recall tier (so the model has the looser
candidates to rescue), every scene of the labelled development set ingested and ticked,
and each scene's truth.json imported as examples (`secinf models import-truth`). Then for
every held-out scene, on its candidates of the judged types, AP of:

* `rule_score`;
* **simulation**: the global model alone;
* **labels**: a model trained from scratch on the other scenes' imported labels only;
* **simulation + labels**: the global model fine-tuned on the other scenes' labels (what
  `secinf train --project` does by default).

Reviews carry the same information per candidate as imported labels (a decision on a
candidate vs. a label matched to it); the dev set has no reviews, so they are not a column
here. `--time-examples N` also times training from scratch on N windows drawn with
replacement from the examples (the cost depends on the count, not on the content).
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
from workers.rules import load_ontology, store
from workers.rules.ontology import with_recall_tier
from workers.scoring import examples as ex
from workers.scoring.collect import TRAINING_RECALL_FACTOR
from workers.scoring.registry import load_model
from workers.scoring.train import Dataset, TrainConfig, average_precision, predict, train_model
from workers.scoring.training import run_training
from workers.settings import ONTOLOGIES_DIR

ORG, PROJECT = "bench", "learning"


def _ap(y: np.ndarray[Any, Any], s: np.ndarray[Any, Any]) -> float | None:
    v = average_precision(y, s)
    return None if v is None else round(v, 4)


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
                           "epochs": epochs, "sim_scenes": sim_scenes}
    with scratch_database("learning") as target, connect(conninfo=target) as conn:
        say(f"global model from {sim_scenes} simulated scenes")
        t0 = time.perf_counter()
        base_report = run_training(conn, scenes=sim_scenes, seed=0, epochs=12, duration=90.0)
        out["base_model"] = {"version": base_report["version"],
                             "seconds": round(time.perf_counter() - t0, 1)}
        base = load_model(conn, version=base_report["version"])
        pid = str(tenancy.create_project(conn, ORG, PROJECT)["project_id"])
        onto = with_recall_tier(load_ontology(ONTOLOGIES_DIR / "default.yaml"),
                                TRAINING_RECALL_FACTOR)
        store.load(conn, pid, onto)
        conn.execute("INSERT INTO pipeline.settings (project_id, key, value) "
                     "VALUES (%s, 'scoring_auto', 'false')", (pid,))
        conn.commit()
        for sc in scenes:
            say(f"ingest {sc.set}/{sc.name}")
            ingest(conn, IngestRequest(project=f"{ORG}/{PROJECT}", source=sc.source,
                                       path=sc.tracks))
        say("tick until idle")
        tick(conn, until_idle=True)
        for sc in scenes:
            ex.import_truth(conn, f"{ORG}/{PROJECT}", sc.source, sc.truth,
                            sorted(sc.judged))
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
        types = es.event_types[held]
        for etype in sorted(set(types.tolist())):
            m = types == etype
            y = test.labels[m]
            if y.sum() == 0:
                continue
            rule = _ap(y, test.rule_scores[m])
            row = {"scene": names[sid], "type": etype, "candidates": int(m.sum()),
                   "true": int(y.sum()), "rule_score": rule,
                   "simulation": _ap(y, p_base[m]), "labels": _ap(y, p_scratch[m]),
                   "simulation+labels": _ap(y, p_tuned[m]),
                   "headroom": None if rule is None else round(1 - rule, 4)}
            tuned_ap = row["simulation+labels"]
            row["gain"] = None if rule is None or tuned_ap is None else round(tuned_ap - rule, 4)
            out["scenes"].append(row)
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
        for col in ("rule_score", "simulation", "labels", "simulation+labels", "headroom"):
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
