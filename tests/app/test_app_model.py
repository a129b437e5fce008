"""The Model page: which scoring model is in charge, the project's models, the activation
history, the most changed examples and the examples per origin; first as pure shaping of
rows, then against a real database as the reviewers who use it (RLS: another project's
reviewer sees none of it, nobody sees the global models).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest
from applib import model_view as mv

from tests.app.conftest import app_test
from tests.support.factories import make_key, make_person_key, make_project
from workers.appdb import AppDB, Identity
from workers.appdb import api as app_api

Conn = psycopg.Connection[dict[str, Any]]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STALE = "feature settings changed: smoothing_s 0.5 → 1"


def _metrics(candidates: list[int], in_charge: str | None = "iso") -> dict[str, Any]:
    """A metrics document shaped as workers/scoring/project_training.py writes it."""
    held: dict[str, Any] = {"n": 40, "positives": 12, "model": {"auc": 0.9, "ap": 0.81},
                            "rule_score": {"auc": 0.7, "ap": 0.55}, "ap_gain": 0.26}
    if in_charge:
        held["in_charge"] = {"version": in_charge, "ap": 0.62, "auc": 0.75}
    moves = [(0.5, 0.95, True), (0.5, 0.2, False), (0.5, 0.6, True)]
    return {
        "held_out": held,
        "held_out_follow": {"n": 25, "positives": 8, "model": {"auc": 0.9, "ap": 0.8},
                            "rule_score": {"auc": 0.7, "ap": 0.5},
                            "in_charge": {"auc": 0.8, "ap": 0.6}},
        "held_out_stop": {"n": 15, "positives": 4, "model": {"auc": 0.8, "ap": 0.7},
                          "rule_score": {"auc": 0.6, "ap": 0.4}},
        "most_changed": [
            {"example_id": 100 + i, "candidate_id": cid, "origin": "review", "type": "follow",
             "label": label, "before": before, "after": after}
            for i, (cid, (before, after, label)) in enumerate(zip(candidates, moves,
                                                                  strict=False))],
    }


TRAINING = {"mode": "fine-tune", "parent": "iso", "epochs": 20,
            "train": {"examples": 60, "positives": 20, "review": {"examples": 50,
                                                                   "positives": 15},
                      "truth": {"examples": 10, "positives": 5}},
            "held_out": {"examples": 40, "positives": 12,
                         "review": {"examples": 40, "positives": 12},
                         "truth": {"examples": 0, "positives": 0}},
            "train_sources": ["a-plaza"], "held_out_sources": ["a-hall"]}


def _model(version: str, *, active: bool = False, created: datetime = T0, model_id: int = 1,
           metrics: Any = None, training: Any = None) -> dict[str, Any]:
    return {"model_id": model_id, "version": version, "active": active,
            "parent_version": None, "metrics": metrics or {}, "training": training or {},
            "activated_at": created if active else None, "created_by": "secinf",
            "created_at": created}


# ---------------------------------------------------------------- pure shaping
def _featured(models: list[dict[str, Any]], version: str | None = None) -> str:
    found = mv.featured(models, version)
    assert found is not None
    return str(found["version"])


def test_in_charge_is_the_active_project_model_else_the_global_model() -> None:
    old = _model("pm-1", created=T0, model_id=1)
    new = _model("pm-2", created=T0 + timedelta(hours=1), model_id=2)
    assert mv.in_charge_text([]) == "the global model (no project model active)"
    assert mv.in_charge_text([new, old]) == mv.GLOBAL_IN_CHARGE
    assert _featured([new, old]) == "pm-2"  # no active one: the newest
    assert _featured([old, new]) == "pm-2"
    assert mv.featured([]) is None
    active = _model("pm-1", active=True, created=T0, model_id=1)
    assert mv.in_charge_text([new, active]) == (
        "project model pm-1 (active since 2026-03-01 12:00 UTC)")
    assert _featured([new, active]) == "pm-1"
    assert _featured([new, active], "pm-2") == "pm-2"
    assert _featured([new, active], "gone") == "pm-1"


def test_models_frame_compares_model_rule_score_and_the_model_in_charge_before() -> None:
    full = _model("pm-2", active=True, metrics=_metrics([1, 2]), training=TRAINING)
    full["parent_version"] = "iso"
    bare = _model("iso", created=T0 - timedelta(days=1))  # metrics and training '{}'
    frame = mv.models_frame([full, bare])
    assert list(frame.columns) == mv.MODEL_COLUMNS
    first = frame.iloc[0].to_dict()
    assert {k: first[k] for k in ("version", "active", "parent", "mode", "held-out n",
                                  "model AP", "rule_score AP", "in charge before",
                                  "in charge before AP")} == {
        "version": "pm-2", "active": True, "parent": "iso", "mode": "fine-tune",
        "held-out n": 40, "model AP": 0.81, "rule_score AP": 0.55,
        "in charge before": "iso", "in charge before AP": 0.62}
    assert first["created_at"] == datetime(2026, 3, 1, 12, 0)  # UTC, no tzinfo
    second = frame.iloc[1]
    assert second["version"] == "iso" and not second["active"]
    assert all(pd.isna(second[c]) for c in ("parent", "mode", "model AP", "rule_score AP",
                                            "in charge before AP"))
    types = mv.per_type_frame(full)
    assert list(types["type"]) == ["follow", "stop"]
    assert list(types["model AP"]) == [0.8, 0.7]
    assert types["in charge before AP"].iloc[0] == 0.6 and pd.isna(
        types["in charge before AP"].iloc[1])
    assert mv.per_type_frame(bare).empty and mv.per_type_frame(None).empty
    assert mv.training_text(full) == (
        "fine-tune from iso; trained on 60 examples (20 positive; review 50, truth 10) from "
        "a-plaza; measured on 40 examples (12 positive; review 40) from a-hall")
    assert mv.training_text(bare) == ""


def test_most_changed_largest_move_first_and_blind_candidates_hidden() -> None:
    model = _model("pm-2", metrics=_metrics([7, 8, 9]))
    frame = mv.most_changed_frame(model)
    assert list(frame.columns) == mv.CHANGED_COLUMNS
    assert list(frame["candidate_id"]) == [7, 8, 9]
    assert list(frame["moved"]) == [0.45, -0.3, 0.1]
    assert list(frame["label"]) == ["positive", "negative", "positive"]
    hidden = mv.most_changed_frame(model, blind={8})
    row = hidden[hidden["candidate_id"] == 8].iloc[0]
    assert row["label"] == mv.HIDDEN
    assert all(pd.isna(row[c]) for c in ("before", "after", "moved"))
    assert mv.most_changed_frame(_model("iso")).empty
    assert mv.most_changed_frame(_model("x", metrics={"most_changed": "junk"})).empty


def test_activations_newest_first_and_examples_per_origin() -> None:
    rows = [{"activated_at": T0, "action": "activate", "version": "pm-1",
             "previous_version": None, "reason": "first", "actor": "secinf"},
            {"activated_at": T0 + timedelta(hours=2), "action": "rollback", "version": None,
             "previous_version": "pm-1", "reason": "worse", "actor": "ann"}]
    frame = mv.activations_frame(rows)
    assert list(frame.columns) == mv.ACTIVATION_COLUMNS
    assert list(frame["action"]) == ["rollback", "activate"]
    assert list(frame["version"]) == ["global model", "pm-1"]
    assert list(frame["previous"]) == ["pm-1", "global model"]

    counts = mv.examples_frame([{"origin": "truth", "valid": 3, "invalid": 0,
                                 "positives": 2}])
    assert counts.to_dict("records") == [
        {"origin": "review", "valid": 0, "invalid": 0, "positives": 0},
        {"origin": "truth", "valid": 3, "invalid": 0, "positives": 2}]
    reasons = mv.invalid_reasons_frame([
        {"reason": "b", "origin": "review", "examples": 1, "latest": T0},
        {"reason": "a", "origin": "truth", "examples": 4, "latest": T0}])
    assert list(reasons["reason"]) == ["a", "b"]
    assert mv.may_view("reviewer") and mv.may_view("project_admin")
    assert not mv.may_view("analyst") and not mv.may_view("customer")


# ---------------------------------------------------------------- as the reviewers
def _iso(db: Conn, project: str) -> str:
    """The model the app template registered for the project (active, metrics '{}')."""
    row = db.execute("SELECT version FROM scoring.models WHERE project_id = %s AND active",
                     (project,)).fetchone()
    assert row is not None
    return str(row["version"])


def _insert_model(db: Conn, project: str | None, version: str, *, metrics: Any = None,
                  training: Any = None, parent: str | None = None,
                  active: bool = False) -> None:
    weights = f"not a real model: {version}".encode()
    db.execute(
        "INSERT INTO scoring.models (project_id, version, sha256, weights, config,"
        " normalisation, active, metrics, training, parent_version)"
        " VALUES (%s, %s, encode(sha256(%s), 'hex'), %s, '{}', '{}', %s, %s, %s, %s)",
        (project, version, weights, weights, active, json.dumps(metrics or {}),
         json.dumps(training or {}), parent))


@pytest.fixture
def trained(db: Conn, app_db: AppDB, reviewer: Identity, project: str,
            scene: list[dict[str, Any]]) -> dict[str, Any]:
    """acme/north after a fine-tuned model pm-north-1 replaced its first model (both
    activations recorded), with review examples from the reviewer's decisions (the accepted
    one invalid) and a truth example; and an active global model nobody may see."""
    db.execute("INSERT INTO review.settings (project_id, second_opinion_share) VALUES (%s, 0)"
               " ON CONFLICT (project_id) DO UPDATE SET second_opinion_share = 0", (project,))
    db.commit()
    accepted, rejected, labelled = (scene[i]["candidate_id"] for i in range(3))
    app_api.decide(app_db, reviewer, accepted, "accept")
    app_api.decide(app_db, reviewer, rejected, "reject", reason="no_event")

    iso = _iso(db, project)
    db.execute("INSERT INTO scoring.activations (project_id, version, previous_version, action,"
               " reason, activated_at) VALUES (%s, %s, NULL, 'activate', 'first model',"
               " now() - interval '1 day')", (project,  iso))
    version = "pm-north-1"
    _insert_model(db, project, version, metrics=_metrics([accepted, rejected], iso),
                  training={**TRAINING, "parent": iso}, parent=iso)
    db.execute("SELECT scoring.activate_model(%s, 'activated: held-out AP 0.810 > 0.620')",
               (version,))
    _insert_model(db, None, "global-zz", active=True)
    db.execute("SELECT scoring.sync_review_examples(%s)", (project,))
    db.execute("UPDATE scoring.examples SET invalid_reason = %s, invalidated_at = now()"
               " WHERE candidate_id = %s AND origin = 'review'", (STALE, accepted))
    db.execute(
        "INSERT INTO scoring.examples (project_id, source_id, candidate_id, origin, label,"
        " truth_sha256, type, start_ts, end_ts, ontology_id, ontology_version, features)"
        " SELECT project_id, source_id, candidate_id, 'truth', true, repeat('ab', 32), type,"
        " start_ts, end_ts, ontology_id, ontology_version, '{}'"
        " FROM candidates.candidates WHERE candidate_id = %s", (labelled,))
    db.commit()
    return {"version": version, "iso": iso, "accepted": accepted, "rejected": rejected,
            "labelled": labelled}


def _frame_with(at: Any, column: str) -> pd.DataFrame:
    [found] = [d.value for d in at.dataframe if column in d.value.columns]
    return found


@pytest.mark.db
def test_the_reviewer_sees_the_projects_models_history_and_examples(
        app_db: AppDB, reviewer: Identity, trained: dict[str, Any]) -> None:
    data = mv.fetch(app_db, reviewer)
    assert [m["version"] for m in data.models] == [trained["version"], trained["iso"]]
    assert mv.in_charge_text(data.models).startswith(f"project model {trained['version']} ")
    models = mv.models_frame(data.models)
    assert models.iloc[0][["active", "parent", "mode", "model AP", "rule_score AP",
                           "in charge before", "in charge before AP"]].tolist() == [
        True, trained["iso"], "fine-tune", 0.81, 0.55, trained["iso"], 0.62]
    assert not models.iloc[1]["active"]
    assert "global-zz" not in set(models["version"])

    history = mv.activations_frame(data.activations)
    assert history[["action", "version", "previous"]].values.tolist() == [
        ["activate", trained["version"], trained["iso"]],
        ["activate", trained["iso"], "global model"]]

    changed = mv.most_changed_frame(mv.featured(data.models), data.blind)
    assert list(changed["candidate_id"]) == [trained["accepted"], trained["rejected"]]
    assert list(changed["label"]) == ["positive", "negative"]  # the reviewer decided them

    assert mv.examples_frame(data.example_counts).to_dict("records") == [
        {"origin": "review", "valid": 1, "invalid": 1, "positives": 0},  # the accept: stale
        {"origin": "truth", "valid": 1, "invalid": 0, "positives": 1}]
    reasons = mv.invalid_reasons_frame(data.invalid_reasons)
    assert reasons[["reason", "origin", "examples"]].values.tolist() == [[STALE, "review", 1]]


@pytest.mark.db
def test_another_projects_reviewer_sees_none_of_it(
        app_db: AppDB, db: Conn, other_project: str, trained: dict[str, Any]) -> None:
    them = app_db.sign_in_key(str(make_person_key(db, other_project)["api_key"]))
    data = mv.fetch(app_db, them)
    # Only globex/south's own first model; nothing of acme/north's, and no global model.
    assert [m["version"] for m in data.models] == [_iso(db, other_project)]
    assert data.activations == [] and data.example_counts == []
    assert data.invalid_reasons == [] and data.blind == frozenset()
    mine = {trained["version"], trained["iso"], "global-zz"}
    at = app_test("pages/6_Model.py", them).run()
    assert not at.exception and not at.error
    assert not mine & set(_frame_with(at, "held-out n")["version"])
    assert _frame_with(at, "invalid")["valid"].tolist() == [0, 0]


@pytest.mark.db
def test_model_page_shows_it_and_opens_a_most_changed_candidate(
        reviewer: Identity, trained: dict[str, Any]) -> None:
    at = app_test("pages/6_Model.py", reviewer).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Model"
    [charge] = [m.value for m in at.markdown if m.value.startswith("**In charge:**")]
    assert charge.startswith(f"**In charge:** project model {trained['version']} (active")
    assert list(_frame_with(at, "held-out n")["version"]) == [trained["version"],
                                                                 trained["iso"]]
    assert list(_frame_with(at, "previous")["version"]) == [trained["version"], trained["iso"]]
    assert at.selectbox(key="m_version").value == trained["version"]
    assert list(_frame_with(at, "moved")["candidate_id"]) == [trained["accepted"],
                                                              trained["rejected"]]
    assert list(_frame_with(at, "latest")["reason"]) == [STALE]

    at.selectbox(key="m_version").set_value(trained["iso"]).run()  # no most_changed there
    assert "This model records no most-changed examples." in [i.value for i in at.info]
    at.selectbox(key="m_version").set_value(trained["version"]).run()
    at.selectbox(key="m_pick").set_value(trained["rejected"]).run()
    [button] = [b for b in at.button if b.label == "Open candidate"]
    button.click().run()
    assert at.query_params["id"] == str(trained["rejected"])
    assert at.title[0].value.startswith(f"Candidate #{trained['rejected']} · ")


@pytest.mark.db
def test_a_second_reviewer_does_not_see_labels_awaiting_their_opinion(
        app_db: AppDB, db: Conn, reviewer: Identity, project: str,
        trained: dict[str, Any], scene: list[dict[str, Any]]) -> None:
    rival = app_db.sign_in_key(str(make_person_key(db, project)["api_key"]))
    db.execute("UPDATE review.settings SET second_opinion_share = 1 WHERE project_id = %s",
               (project,))
    db.commit()
    cid = scene[3]["candidate_id"]
    assert app_api.decide(app_db, reviewer, cid, "accept")["second_opinion"] is True
    metrics = _metrics([cid, trained["accepted"]], trained["iso"])
    db.execute("UPDATE scoring.models SET metrics = %s WHERE version = %s",
               (json.dumps(metrics), trained["version"]))
    db.commit()
    mine = mv.fetch(app_db, reviewer)
    theirs = mv.fetch(app_db, rival)
    assert cid not in mine.blind and theirs.blind == {cid}
    seen = mv.most_changed_frame(mv.featured(theirs.models), theirs.blind)
    assert seen["label"].tolist() == [mv.HIDDEN, "negative"]
    assert mv.most_changed_frame(mv.featured(mine.models), mine.blind)["label"].tolist() == [
        "positive", "negative"]


@pytest.mark.db
def test_a_project_without_models_says_how_to_train_one(
        app_db: AppDB, db: Conn) -> None:
    empty = make_project(db, "initech", "empty")
    _insert_model(db, None, "global-zz", active=True)
    db.commit()
    who = app_db.sign_in_key(str(make_person_key(db, empty)["api_key"]))
    assert mv.fetch(app_db, who).models == []
    at = app_test("pages/6_Model.py", who).run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown if m.value.startswith("**In charge:**")] == [
        "**In charge:** the global model (no project model active)"]
    [info] = [i.value for i in at.info]
    assert "`secinf train --project ORG/PROJECT`" in info and "train_model" in info
    assert _frame_with(at, "invalid").to_dict("records") == [
        {"origin": "review", "valid": 0, "invalid": 0, "positives": 0},
        {"origin": "truth", "valid": 0, "invalid": 0, "positives": 0}]
    assert "No invalid examples." in [c.value for c in at.caption]


@pytest.mark.db
def test_roles_without_the_scoring_grants_get_a_message_not_an_error(
        app_db: AppDB, db: Conn, project: str) -> None:
    customer = app_db.sign_in_key(str(make_key(db, project, "customer")["api_key"]))
    at = app_test("pages/6_Model.py", customer).run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info] == [mv.NOT_FOR_ROLE]
    assert not at.dataframe
