"""`secinf train --project P` and the `train_model` job: a project's own model from what
its people decided and labelled (workers/scoring/examples.py).

1. Review examples are brought up to date, stale ones marked invalid, missing windows built.
2. The examples are split **by source** (a scene is never on both sides): whole sources are
   held out until they hold `holdout` of the examples.
3. The model is fine-tuned from the model in charge (the project's active one, else the
   global one), keeping its normalisation; or trained from scratch when the project has
   `scratch_min` training examples or there is no model to start from.
4. On the held-out sources the new model's AP is compared with the model in charge and with
   `rule_score`; the new model is registered for the project either way, and activated
   only when it beats the model in charge there (activation queues the project's open
   candidates for rescoring, so the review queue re-ranks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from workers.errors import UserError
from workers.scoring import examples as ex
from workers.scoring.registry import (
    RegisteredModel,
    activate,
    load_model,
    model_in_charge,
    register,
)
from workers.scoring.train import (
    TrainConfig,
    Trained,
    average_precision,
    compare_scores,
    predict,
    train_model,
)
from workers.scoring.windows import WINDOW_VERSION

Conn = psycopg.Connection[Any]
Progress = Callable[[dict[str, Any]], None]
MOST_CHANGED = 20
"""Training examples listed as the ones the new model changed its mind on most."""


@dataclass(frozen=True)
class ProjectTrainConfig:
    epochs: int | None = None
    """None: 20 when fine-tuning, 30 from scratch."""
    seed: int = 0
    holdout: float = 0.25
    """Share of the examples held out (whole sources)."""
    mode: str = "auto"
    """auto, fine-tune or scratch."""
    scratch_min: int = 2000
    """auto trains from scratch from this many training examples on."""
    min_examples: int = 20
    lr_fine_tune: float = 5e-4

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "fine-tune", "scratch"):
            raise UserError(f"--mode {self.mode!r}: choose auto, fine-tune or scratch")
        if not 0.0 < self.holdout < 1.0:
            raise UserError(f"--holdout {self.holdout}: a share between 0 and 1, e.g. 0.25")


def split_by_source(sources: npt.NDArray[np.int64], holdout: float,
                    seed: int) -> npt.NDArray[np.bool_]:
    """Held-out mask: whole sources, in a seeded order, until they hold `holdout` of the
    rows; at least one source on each side."""
    unique = np.unique(sources)
    if unique.size < 2:
        raise UserError(f"the examples come from {unique.size} source(s); a held-out split "
                        "by source needs at least 2 (label or review a second source)")
    order = np.random.default_rng(seed).permutation(unique)
    held: list[int] = []
    for s in order[:-1]:
        held.append(int(s))
        if np.isin(sources, held).sum() >= holdout * sources.size:
            break
    return np.isin(sources, held)


def _counts(es: ex.ExampleSet) -> dict[str, Any]:
    out: dict[str, Any] = {"examples": len(es), "positives": int(es.data.labels.sum())}
    for origin in ("review", "truth"):
        m = es.origins == origin
        out[origin] = {"examples": int(m.sum()), "positives": int(es.data.labels[m].sum())}
    return out


@dataclass
class ProjectModel:
    """A trained, not yet registered project model and what it was measured on."""

    project_id: str
    trained: Trained
    parent: RegisteredModel | None
    mode: str
    metrics: dict[str, Any]
    training: dict[str, Any]
    beats_in_charge: bool
    verdict: str
    seed: int
    seconds: dict[str, float] = field(default_factory=dict)


def _evaluate(test: ex.ExampleSet, probs: npt.NDArray[np.float32],
              in_charge: RegisteredModel | None
              ) -> tuple[dict[str, Any], float | None, float | None]:
    y, rule = test.data.labels, test.data.rule_scores
    metrics: dict[str, Any] = {"held_out": compare_scores(y, probs, rule)}
    old: npt.NDArray[np.float32] | None = None
    if in_charge is not None:
        old, _ = predict(in_charge.model, in_charge.norm, test.data.windows, test.data.types)
        metrics["held_out"]["in_charge"] = {"version": in_charge.version,
                                            **compare_scores(y, old, rule)["model"]}
    for etype in sorted(set(test.event_types.tolist())):
        m = test.event_types == etype
        metrics[f"held_out_{etype}"] = compare_scores(y[m], probs[m], rule[m])
        if old is not None:
            metrics[f"held_out_{etype}"]["in_charge"] = compare_scores(y[m], old[m],
                                                                       rule[m])["model"]
    new_ap = average_precision(y, probs)
    old_ap = None if old is None else average_precision(y, old)
    return metrics, new_ap, old_ap


def _most_changed(train: ex.ExampleSet, after: npt.NDArray[np.float32],
                  before: npt.NDArray[np.float32] | None) -> list[dict[str, Any]]:
    """The training examples whose score moved most from the model trained from (or 0.5
    from scratch): the decisions that changed the model."""
    base = before if before is not None else np.full_like(after, 0.5)
    delta = np.abs(after - base)
    top = np.argsort(-delta, kind="mergesort")[:MOST_CHANGED]
    return [{"example_id": int(train.example_ids[i]), "candidate_id": int(train.candidate_ids[i]),
             "origin": str(train.origins[i]), "type": str(train.event_types[i]),
             "label": bool(train.data.labels[i]), "before": round(float(base[i]), 4),
             "after": round(float(after[i]), 4)} for i in top]


def train_project(conn: Conn, project_id: str, cfg: ProjectTrainConfig | None = None,
                  progress: Progress | None = None) -> ProjectModel:
    """Steps 1-4 of the module text, short of registering (see `publish`)."""
    cfg = cfg or ProjectTrainConfig()
    say = progress or (lambda _p: None)
    t0 = time.perf_counter()
    say({"phase": "examples"})
    refreshed = ex.refresh(conn, project_id)
    conn.commit()
    built = ex.build_missing_windows(
        conn, project_id, lambda done, total: say({"phase": "windows", "done": done,
                                                   "total": total}))
    es = ex.load_examples(conn, project_id)
    status = ex.status(conn, project_id)
    n_pos = int(es.data.labels.sum())
    if len(es) < cfg.min_examples or n_pos == 0 or n_pos == len(es):
        raise UserError(
            f"project has {len(es)} usable examples ({n_pos} positive); training needs at "
            f"least {cfg.min_examples} with both accepted and rejected ones: review more "
            "candidates or import labels (`secinf models import-truth`)"
            + (f"; {sum(status['invalid_reasons'].values())} examples are invalid: "
               + "; ".join(status["invalid_reasons"]) + " (`secinf models examples "
               "--refresh` re-admits them)" if status["invalid_reasons"] else ""))
    held = split_by_source(es.source_ids, cfg.holdout, cfg.seed)
    train, test = es.subset(~held), es.subset(held)
    if train.data.labels.sum() in (0, len(train)):
        raise UserError("the training sources hold only one kind of label; review or label "
                        "both true and false candidates on more sources")
    in_charge_version = model_in_charge(conn, project_id)
    parent = load_model(conn, version=in_charge_version) if in_charge_version else None
    mode = cfg.mode
    if mode == "auto":
        mode = "scratch" if parent is None or len(train) >= cfg.scratch_min else "fine-tune"
    if mode == "fine-tune" and parent is None:
        raise UserError("--mode fine-tune: no model to start from (run `secinf train` for "
                        "the global model, or use --mode scratch)")
    epochs = cfg.epochs or (20 if mode == "fine-tune" else 30)
    tc = TrainConfig(epochs=epochs, seed=cfg.seed,
                     lr=cfg.lr_fine_tune if mode == "fine-tune" else TrainConfig.lr)
    t1 = time.perf_counter()
    trained = train_model(
        train.data, None, tc,
        lambda epoch, loss: say({"phase": "train", "epoch": epoch + 1, "epochs": epochs,
                                 "loss": round(loss, 4)}),
        init=(parent.model, parent.norm) if mode == "fine-tune" and parent else None)
    t2 = time.perf_counter()
    say({"phase": "evaluate"})
    probs, _ = predict(trained.model, trained.norm, test.data.windows, test.data.types)
    metrics, new_ap, old_ap = _evaluate(test, probs, parent)
    after, _ = predict(trained.model, trained.norm, train.data.windows, train.data.types)
    before = (predict(parent.model, parent.norm, train.data.windows, train.data.types)[0]
              if parent is not None else None)
    metrics["most_changed"] = _most_changed(train, after, before)
    metrics["final_train_loss"] = round(trained.history[-1], 5)
    if new_ap is None:
        beats, verdict = False, "not activated: the held-out sources have no positive example"
    elif parent is None or old_ap is None:
        beats, verdict = True, f"activated: held-out AP {new_ap:.3f}, no model in charge"
    elif new_ap > old_ap:
        beats, verdict = True, (f"activated: held-out AP {new_ap:.3f} > {old_ap:.3f} of "
                                f"{parent.version}")
    else:
        beats, verdict = False, (f"not activated: held-out AP {new_ap:.3f} <= {old_ap:.3f} "
                                 f"of {parent.version}, which stays in charge")
    t3 = time.perf_counter()
    training = {
        "mode": mode, "parent": parent.version if parent else None, "epochs": epochs,
        "window_version": WINDOW_VERSION, "train_config": asdict(tc),
        "train": _counts(train), "held_out": _counts(test),
        "train_sources": sorted(train.source_names[int(s)] for s in np.unique(train.source_ids)),
        "held_out_sources": sorted(es.source_names[int(s)] for s in np.unique(test.source_ids)),
        "refreshed": refreshed, "windows_built": built,
        "invalid_examples": status["invalid_reasons"],
        "labels": "review: live first decisions (accept = 1); truth: candidates matched to "
                  "imported labels (type, actors, temporal IoU >= 0.5)",
    }
    seconds = {"examples": round(t1 - t0, 2), "train": round(t2 - t1, 2),
               "evaluate": round(t3 - t2, 2)}
    training["seconds"] = seconds
    return ProjectModel(project_id, trained, parent, mode, metrics, training, beats, verdict,
                        cfg.seed, seconds)


def publish(conn: Conn, pm: ProjectModel, commit: bool = True) -> dict[str, Any]:
    """Register the model for its project and activate it when it beat the model in
    charge; returns the report. With commit=False the caller's transaction holds both."""
    version, sha, created = register(
        conn, pm.trained.model, pm.trained.norm, seed=pm.seed, training=pm.training,
        metrics=pm.metrics, project_id=pm.project_id,
        parent_version=pm.parent.version if pm.parent else None, commit=False)
    activation = activate(conn, version, pm.verdict, commit=False) if pm.beats_in_charge else None
    if commit:
        conn.commit()
    return {"version": version, "sha256": sha, "created": created,
            "activated": activation is not None, "verdict": pm.verdict,
            "activation": activation, "mode": pm.mode, "metrics": pm.metrics,
            "training": pm.training}
