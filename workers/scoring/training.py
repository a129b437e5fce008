"""`secinf train` end to end: collect labelled windows from simulated scenes, split by
scene, train, evaluate the held-out scenes (model_score vs rule_score, overall and per
noise setting), and register the model."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from workers import tenancy
from workers.errors import NotFound, UserError
from workers.scoring.collect import (
    HARD_NOISE,
    TIERS,
    TRAINING_RECALL_FACTOR,
    collect,
    scene_plan,
)
from workers.scoring.model import ModelConfig, weights_bytes
from workers.scoring.registry import register
from workers.scoring.train import TrainConfig, compare_scores, predict, train_model

Conn = psycopg.Connection[Any]
TRAINING_ORG = "secinf"
TRAINING_PROJECT = "training"


def training_project(conn: Conn) -> str:
    """The project that holds `secinf train`'s simulated scenes (created once)."""
    try:
        return tenancy.resolve_project(conn, f"{TRAINING_ORG}/{TRAINING_PROJECT}")
    except (NotFound, UserError):
        conn.rollback()
    return str(tenancy.create_project(conn, TRAINING_ORG, TRAINING_PROJECT)["project_id"])


def run_training(conn: Conn, *, scenes: int = 12, seed: int = 0, epochs: int = 30,
                 duration: float = 120.0, holdout_every: int = 4,
                 out: Path | None = None, model_config: ModelConfig | None = None,
                 on_scene: Callable[[dict[str, Any]], None] | None = None,
                 on_epoch: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train and register; returns the report (version, sha256, metrics, training)."""
    if scenes < 2:
        raise UserError(f"--scenes {scenes}: need at least 2 (one is held out for evaluation)")
    every = max(2, min(holdout_every, scenes))
    plan = scene_plan(scenes, seed, duration)
    project_id = training_project(conn)
    collected = collect(conn, project_id, plan, on_scene=on_scene)
    data = collected.data
    held = (data.scenes % every) == every - 1
    if not held.any() or held.all() or data.labels[~held].sum() == 0:
        raise UserError(f"{scenes} scenes gave {len(data)} candidates with "
                        f"{int(data.labels.sum())} true ones: too few to train and hold out; "
                        "raise --scenes or --duration")
    tc = TrainConfig(epochs=epochs, seed=seed)
    trained = train_model(data.subset(~held), model_config, tc, on_epoch)
    test = data.subset(held)
    probs, _ = predict(trained.model, trained.norm, test.windows, test.types)
    noise = np.array(collected.noise)[held]
    metrics: dict[str, Any] = {"held_out": compare_scores(test.labels, probs, test.rule_scores)}
    for setting in sorted(set(noise.tolist())):
        m = noise == setting
        metrics[f"held_out_{setting}_noise"] = compare_scores(test.labels[m], probs[m],
                                                              test.rule_scores[m])
    tier = np.array(collected.tiers)
    held_tier = tier[held]
    for name in TIERS:
        m = held_tier == name
        if m.any():
            metrics[f"held_out_{name}_tier"] = compare_scores(test.labels[m], probs[m],
                                                              test.rule_scores[m])
    metrics["final_train_loss"] = round(trained.history[-1], 5)
    training = {
        "scenes": [asdict(s) | {"held_out": i % every == every - 1}
                   for i, s in enumerate(plan)],
        "per_scene": collected.per_scene, "hard_noise": HARD_NOISE,
        "windows": len(data), "train_windows": int((~held).sum()),
        "held_out_windows": int(held.sum()), "positives": int(data.labels.sum()),
        "recall_factor": TRAINING_RECALL_FACTOR,
        "tiers": {name: {"windows": int((tier == name).sum()),
                         "positives": int(data.labels[tier == name].sum()),
                         "held_out": int((held_tier == name).sum()),
                         "held_out_positives": int(test.labels[held_tier == name].sum())}
                  for name in TIERS},
        "labels": "candidates matched to planted truth (type, actors, temporal IoU >= 0.5)",
        "train_config": asdict(tc), "seed": seed,
    }
    version, sha, created = register(conn, trained.model, trained.norm, seed=seed,
                                     training=training, metrics=metrics)
    report = {"version": version, "sha256": sha, "created": created, "metrics": metrics,
              "training": {k: v for k, v in training.items() if k != "per_scene"}}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.pt").write_bytes(weights_bytes(trained.model))
        (out / "model.json").write_text(json.dumps(
            {**report, "config": trained.model.config.to_json(),
             "normalisation": trained.norm.to_json()}, indent=2, default=str))
    return report
