"""The model registry (scoring.models): register trained weights with their normalisation,
training description and metrics; load a model by version or the default for a project.

Models are global (project_id NULL: trained on simulated scenes, used by every project) or
per project (a project's own active model wins over the global one).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from workers.db.errors import wrap_db_errors
from workers.db.queries import query
from workers.errors import NotFound, SecinfError
from workers.scoring.model import ModelConfig, ScoringModel, load_weights, weights_bytes
from workers.scoring.windows import NormStats

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class RegisteredModel:
    """A model as stored, with its weights loaded (eval mode, CPU)."""

    model_id: int
    version: str
    sha256: str
    project_id: str | None
    config: ModelConfig
    norm: NormStats
    model: ScoringModel
    metrics: dict[str, Any]
    training: dict[str, Any]
    created_at: datetime


def make_version(sha256: str, seed: int) -> str:
    """A version name that is equal for equal weights: `s<seed>-<first 12 hex of sha256>`."""
    return f"s{seed}-{sha256[:12]}"


def register(conn: Conn, model: ScoringModel, norm: NormStats, *, seed: int,
             training: dict[str, Any], metrics: dict[str, Any],
             project_id: str | None = None, parent_version: str | None = None,
             commit: bool = True) -> tuple[str, str, bool]:
    """Store the model; returns (version, sha256, created). Registering identical weights
    again is a no-op. A project model is registered inactive (`activate` decides). Commits
    unless told not to (a job registers inside its fenced write-back)."""
    data = weights_bytes(model)
    sha = hashlib.sha256(data).hexdigest()
    version = make_version(sha, seed)
    if project_id is not None:
        version = f"p{project_id.replace('-', '')[:8]}-{version}"
    row = conn.execute(query("scoring", "insert_model"), {
        "project_id": project_id, "version": version, "sha256": sha, "weights": data,
        "config": Jsonb(model.config.to_json()), "normalisation": Jsonb(norm.to_json()),
        "training": Jsonb(training), "metrics": Jsonb(metrics),
        "parent_version": parent_version, "active": project_id is None}).fetchone()
    if commit:
        conn.commit()
    return version, sha, row is not None


def _from_row(row: dict[str, Any]) -> RegisteredModel:
    data = bytes(row["weights"])
    sha = hashlib.sha256(data).hexdigest()
    if sha != row["sha256"]:
        raise SecinfError(f"model {row['version']}: stored weights do not match their sha256 "
                          f"({sha[:12]}… ≠ {str(row['sha256'])[:12]}…); re-run `secinf train`")
    config = ModelConfig.from_json(dict(row["config"]))
    return RegisteredModel(int(row["model_id"]), str(row["version"]), sha,
                           row["project_id"], config, NormStats.from_json(row["normalisation"]),
                           load_weights(config, data), dict(row["metrics"]),
                           dict(row["training"]), row["created_at"])


_CACHE: dict[str, RegisteredModel] = {}
_LOCK = threading.Lock()


def load_model(conn: Conn, *, version: str | None = None,
               project_id: str | None = None) -> RegisteredModel:
    """The named version, else the project's default model; cached by version (a version's
    weights never change)."""
    if version is None:
        found = conn.execute(query("scoring", "default_model"),
                             {"project_id": project_id}).fetchone()
        if found is None:
            raise NotFound("no scoring model is registered: run `secinf train` first")
        version = str(found["version"])
    with _LOCK:
        if version in _CACHE:
            return _CACHE[version]
    row = conn.execute(query("scoring", "model_by_version"), {"version": version}).fetchone()
    if row is None:
        raise NotFound(f"no scoring model {version!r}; list them with `secinf train --list` "
                       "or train one with `secinf train`")
    loaded = _from_row(row)
    with _LOCK:
        _CACHE[loaded.version] = loaded
    return loaded


def list_models(conn: Conn, project_id: str | None = None) -> list[dict[str, Any]]:
    """Every registered model (or one project's), newest first (without weights)."""
    return [dict(r) for r in conn.execute(query("scoring", "list_models"),
                                          {"project_id": project_id}).fetchall()]


def model_in_charge(conn: Conn, project_id: str) -> str | None:
    """The version the project's candidates are scored with now (its own active model,
    else the newest active global one); None when there is none."""
    row = conn.execute(query("training", "model_in_charge"), {"project_id": project_id}
                       ).fetchone()
    return None if row is None or row["version"] is None else str(row["version"])


def activate(conn: Conn, version: str, reason: str, commit: bool = True) -> dict[str, Any]:
    """Make a project model its project's active one and queue the project's open
    candidates for rescoring with it (scoring.activate_model)."""
    with wrap_db_errors(rollback=conn):
        row = conn.execute(query("training", "activate_model"),
                           {"version": version, "reason": reason}).fetchone()
    assert row is not None
    if commit:
        assert row is not None
    conn.commit()
    return dict(row["result"])


def rollback(conn: Conn, project_id: str, reason: str) -> dict[str, Any]:
    """Go back to the model that was active before the current one (or to the global
    model), recorded, with the open candidates queued for rescoring. Commits."""
    with wrap_db_errors(rollback=conn):
        row = conn.execute(query("training", "rollback_model"),
                           {"project_id": project_id, "reason": reason}).fetchone()
    assert row is not None
    conn.commit()
    return dict(row["result"])
