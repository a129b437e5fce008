"""A scene written by `secinf simulate` marks its source as simulated (the data card of a
dataset counts such sources); a hand-written scene.json does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from workers import tenancy
from workers.ingest import IngestRequest, ingest
from workers.simulate import preset_config, simulate, write_outputs

pytestmark = pytest.mark.db


def _attributes(db: psycopg.Connection[Any], name: str) -> dict[str, Any]:
    row = db.execute("SELECT attributes FROM ingest.sources WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return dict(row["attributes"])


def test_simulated_scene_marks_its_source(db: psycopg.Connection[Any], tmp_path: Path) -> None:
    project = str(tenancy.create_project(db, "sim-org", "sim")["project_id"])
    files = write_outputs(simulate(preset_config("corridor", seed=3, duration=10.0)),
                          tmp_path / "sim")
    for _ in range(2):  # idempotent
        ingest(db, IngestRequest(project=project, source="sim-cam", path=files["parquet"],
                                 scene=files["scene"]))
    marked = _attributes(db, "sim-cam")["simulated"]
    assert (marked["preset"], marked["seed"]) == ("corridor", 3)
    assert set(marked["noise"]) >= {"jitter", "drop_rate"}

    scene = json.loads(files["scene"].read_text())
    for key in ("preset", "seed", "noise", "duration"):
        scene.pop(key, None)
    own = tmp_path / "own-scene.json"
    own.write_text(json.dumps(scene))
    ingest(db, IngestRequest(project=project, source="real-cam", path=files["parquet"],
                             scene=own))
    assert "simulated" not in _attributes(db, "real-cam")
