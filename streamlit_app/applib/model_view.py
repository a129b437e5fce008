"""Model page logic (no Streamlit calls): which scoring model is in charge of the project,
its models with their held-out AP, the activation history, the training examples that moved
a model most, and the examples per origin.

`fetch` reads everything as the signed-in caller (the named queries `project_models` …
`blind_candidates` of workers/queries/app.sql); the other functions shape those rows and are
pure. RLS shows a caller only their project's models, activations and examples; the global
models (project_id NULL) are never among them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from workers.appdb.session import AppDB, Identity, Row

GLOBAL_IN_CHARGE = "the global model (no project model active)"
NO_MODELS = ("This project has no scoring model of its own yet: the global model scores its "
             "candidates. Train one with `secinf train --project ORG/PROJECT`, or let the "
             "pg_cron `train_model` job train it once enough reviewed examples are new "
             "(pipeline setting `train_min_new_examples`).")
# The roles sql/989_grants_scoring.sql lets read scoring.models, activations and examples.
MODEL_ROLES = frozenset({"reviewer", "project_admin"})
NOT_FOR_ROLE = "The Model page is for reviewers and project admins of the project."
ORIGINS = ("review", "truth")  # review: live first decisions; truth: imported labels
HIDDEN = "hidden (awaiting your second opinion)"

MODEL_COLUMNS = ["version", "active", "parent", "mode", "held-out n", "model AP",
                 "rule_score AP", "in charge before", "in charge before AP", "created_at"]
TYPE_COLUMNS = ["type", "n", "positives", "model AP", "rule_score AP", "in charge before AP"]
ACTIVATION_COLUMNS = ["activated_at", "action", "version", "previous", "reason", "actor"]
CHANGED_COLUMNS = ["candidate_id", "type", "origin", "label", "before", "after", "moved"]
EXAMPLE_COLUMNS = ["origin", "valid", "invalid", "positives"]
REASON_COLUMNS = ["reason", "origin", "examples", "latest"]


# ---------------------------------------------------------------- reading
@dataclass(frozen=True)
class ModelData:
    """What the Model page shows, as the caller may see it."""

    models: list[Row]            # newest first
    activations: list[Row]       # newest first
    example_counts: list[Row]    # per origin: valid, invalid, positives
    invalid_reasons: list[Row]   # per reason and origin
    blind: frozenset[int]        # candidates the caller judges blind


def may_view(role: str) -> bool:
    return role in MODEL_ROLES


def fetch(db: AppDB, who: Identity) -> ModelData:
    """The project's models, activations and examples, read as `who` (RLS applies)."""
    return ModelData(
        models=db.call(who, "project_models"),
        activations=db.call(who, "model_activations"),
        example_counts=db.call(who, "example_counts"),
        invalid_reasons=db.call(who, "example_invalid_reasons"),
        blind=frozenset(int(r["candidate_id"]) for r in db.call(who, "blind_candidates")),
    )


# ---------------------------------------------------------------- which model
def _utc(ts: Any) -> datetime | None:
    """UTC wall time without tzinfo (tables label their times UTC)."""
    if not isinstance(ts, datetime):
        return None
    return (ts.astimezone(UTC) if ts.tzinfo else ts).replace(tzinfo=None)


def in_charge(models: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The project's active model (at most one), or None: the global model scores."""
    return next((m for m in models if m.get("active")), None)


def in_charge_text(models: Sequence[Mapping[str, Any]]) -> str:
    """Which model scores the project's candidates, in words."""
    model = in_charge(models)
    if model is None:
        return GLOBAL_IN_CHARGE
    since = _utc(model.get("activated_at"))
    return (f"project model {model['version']}"
            + (f" (active since {since:%Y-%m-%d %H:%M} UTC)" if since else ""))


def featured(models: Sequence[Mapping[str, Any]],
             version: str | None = None) -> Mapping[str, Any] | None:
    """The model `version` names; else the active one; else the newest; None without any."""
    if version is not None:
        named = next((m for m in models if m.get("version") == version), None)
        if named is not None:
            return named
    active = in_charge(models)
    if active is not None or not models:
        return active
    return max(models, key=lambda m: (m.get("created_at") or datetime.min.replace(tzinfo=UTC),
                                      m.get("model_id") or 0))


# ---------------------------------------------------------------- models
def _doc(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ap(part: Any) -> float | None:
    ap = _doc(part).get("ap")
    return float(ap) if isinstance(ap, int | float) else None


def models_frame(models: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model: lineage, training mode and held-out AP of the model, of
    rule_score and of the model that was in charge when it was trained."""
    records = []
    for m in models:
        metrics, training = _doc(m.get("metrics")), _doc(m.get("training"))
        held = _doc(metrics.get("held_out"))
        before = _doc(held.get("in_charge"))
        records.append({
            "version": m.get("version"), "active": bool(m.get("active")),
            "parent": m.get("parent_version") or training.get("parent"),
            "mode": training.get("mode"), "held-out n": held.get("n"),
            "model AP": _ap(held.get("model")), "rule_score AP": _ap(held.get("rule_score")),
            "in charge before": before.get("version"), "in charge before AP": _ap(before),
            "created_at": _utc(m.get("created_at"))})
    return pd.DataFrame.from_records(records, columns=MODEL_COLUMNS)


def per_type_frame(model: Mapping[str, Any] | None) -> pd.DataFrame:
    """The model's held-out measures per event type (metrics keys held_out_<type>)."""
    metrics = _doc(model.get("metrics")) if model else {}
    records = []
    for key in sorted(k for k in metrics if k.startswith("held_out_")):
        part = _doc(metrics[key])
        records.append({"type": key.removeprefix("held_out_"), "n": part.get("n"),
                        "positives": part.get("positives"), "model AP": _ap(part.get("model")),
                        "rule_score AP": _ap(part.get("rule_score")),
                        "in charge before AP": _ap(part.get("in_charge"))})
    return pd.DataFrame.from_records(records, columns=TYPE_COLUMNS)


def _counted(part: Any) -> str:
    doc = _doc(part)
    by_origin = ", ".join(f"{o} {_doc(doc.get(o)).get('examples', 0)}"
                          for o in ORIGINS if _doc(doc.get(o)).get("examples"))
    text = f"{doc.get('examples', 0)} examples ({doc.get('positives', 0)} positive"
    return text + (f"; {by_origin})" if by_origin else ")")


def training_text(model: Mapping[str, Any] | None) -> str:
    """How the model was trained, in one line ('' when its row says nothing)."""
    training = _doc(model.get("training")) if model else {}
    if not training:
        return ""
    mode = training.get("mode") or "trained"
    parts = [f"{mode}" + (f" from {training['parent']}" if training.get("parent") else "")]
    if "train" in training:
        sources = ", ".join(training.get("train_sources") or [])
        parts.append(f"trained on {_counted(training['train'])}"
                     + (f" from {sources}" if sources else ""))
    if "held_out" in training:
        sources = ", ".join(training.get("held_out_sources") or [])
        parts.append(f"measured on {_counted(training['held_out'])}"
                     + (f" from {sources}" if sources else ""))
    return "; ".join(parts)


# ---------------------------------------------------------------- history
def activations_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every change of the project's active model, newest first (NULL: the global model)."""
    records = [{"activated_at": _utc(r.get("activated_at")), "action": r.get("action"),
                "version": r.get("version") or "global model",
                "previous": r.get("previous_version") or "global model",
                "reason": r.get("reason"), "actor": r.get("actor")} for r in rows]
    frame = pd.DataFrame.from_records(records, columns=ACTIVATION_COLUMNS)
    return frame.sort_values("activated_at", ascending=False, kind="stable",
                             ignore_index=True)


# ---------------------------------------------------------------- examples
def most_changed_frame(model: Mapping[str, Any] | None,
                       blind: Collection[int] = ()) -> pd.DataFrame:
    """The training examples whose score the model moved most (metrics.most_changed), the
    largest move first. For a candidate the caller judges blind (its second opinion is
    open), the label and the scores stay hidden, as the candidate page hides its first
    decision."""
    metrics = _doc(model.get("metrics")) if model else {}
    raw = metrics.get("most_changed")
    records = []
    for item in raw if isinstance(raw, list) else []:
        e = _doc(item)
        if "candidate_id" not in e:
            continue
        cid = int(e["candidate_id"])
        before, after = e.get("before"), e.get("after")
        moved = (round(float(after) - float(before), 4)
                 if isinstance(before, int | float) and isinstance(after, int | float) else None)
        hidden = cid in blind
        records.append({
            "candidate_id": cid, "type": e.get("type"), "origin": e.get("origin"),
            "label": HIDDEN if hidden else ("positive" if e.get("label") else "negative"),
            "before": None if hidden else before, "after": None if hidden else after,
            "moved": None if hidden else moved,
            "_order": -abs(moved) if moved is not None else 0.0})
    frame = pd.DataFrame.from_records(records, columns=[*CHANGED_COLUMNS, "_order"])
    frame = frame.sort_values("_order", kind="stable", ignore_index=True)
    return frame.drop(columns="_order")


def examples_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Examples per origin (both origins always listed): valid, invalid, valid positives."""
    by_origin = {str(r["origin"]): r for r in rows}
    origins = [*ORIGINS, *sorted(set(by_origin) - set(ORIGINS))]
    records = [{"origin": o, **{c: int(by_origin.get(o, {}).get(c) or 0)
                               for c in ("valid", "invalid", "positives")}}
               for o in origins]
    return pd.DataFrame.from_records(records, columns=EXAMPLE_COLUMNS)


def invalid_reasons_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Invalid examples grouped by why (and origin), the most common reason first."""
    records = [{"reason": r.get("reason"), "origin": r.get("origin"),
                "examples": int(r.get("examples") or 0), "latest": _utc(r.get("latest"))}
               for r in rows]
    frame = pd.DataFrame.from_records(records, columns=REASON_COLUMNS)
    return frame.sort_values(["examples", "reason", "origin"], ascending=[False, True, True],
                             kind="stable", ignore_index=True)
