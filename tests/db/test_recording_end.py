"""The end of a recording (`secinf ingest --ended`, ingest.sources.ended_at): an interval
still holding at the last frame of an ended recording is emitted; without the mark, or
once later points come, it is an interval that has not ended yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.scene_loader import project, run_tick
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
FPS = 10


def _walk_csv(path: Path, seconds: float, start: float = 0.0) -> Path:
    """Two people 1 m apart walking along x at 1.2 m/s from `start` for `seconds`."""
    lines = ["track_id,frame,x,y,class"]
    for f in range(int(start * FPS), int((start + seconds) * FPS)):
        for track, y in (("a", 0.0), ("b", 1.0)):
            lines.append(f"{track},{f},{1.2 * f / FPS:.3f},{y},person")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _accompany(db: Conn, slug: str) -> list[tuple[float, float]]:
    return [(r["s0"], r["s1"]) for r in db.execute(
        "SELECT round(extract(epoch FROM c.start_ts - s.time_origin)::numeric, 1)::float8 s0, "
        "round(extract(epoch FROM c.end_ts - s.time_origin)::numeric, 1)::float8 s1 "
        "FROM candidates.candidates c JOIN ingest.sources s USING (source_id) "
        "JOIN core.projects p ON p.project_id = c.project_id WHERE p.slug = %s "
        "AND c.type = 'accompany' ORDER BY 1", (slug,)).fetchall()]


def _ingest(db: Conn, slug: str, path: Path, ended: bool) -> Any:
    return ingest(db, IngestRequest(project=f"{slug}-org/{slug}", source="clip", path=path,
                                    fps=FPS, ended=ended))


def test_an_interval_lasting_to_the_end_is_emitted_once_the_recording_ended(
        db: Conn, tmp_path: Path) -> None:
    walk = _walk_csv(tmp_path / "walk.csv", 12.0)
    for slug in ("live", "ended"):
        store.load(db, project(db, slug), load_ontology(DEFAULT_PATH))
    _ingest(db, "live", walk, ended=False)
    run_tick(db)
    assert _accompany(db, "live") == []  # holding at the last frame: not ended yet

    summary = _ingest(db, "ended", walk, ended=True)
    assert summary.ended_at is not None and "ended_at" in summary.as_json()
    run_tick(db)
    assert _accompany(db, "ended") == [(0.0, 11.9)]

    # marking the live source afterwards re-runs its tail (a dirty range) and emits it
    again = _ingest(db, "live", walk, ended=True)
    assert again.duplicate_batch and again.ended_at == summary.ended_at
    run_tick(db)
    assert _accompany(db, "live") == [(0.0, 11.9)]
    run_tick(db)  # nothing left to do: the same one candidate
    assert _accompany(db, "live") == [(0.0, 11.9)]


def test_later_points_make_the_source_live_again(db: Conn, tmp_path: Path) -> None:
    """Points after ended_at: the recording went on, so the rules wait again."""
    store.load(db, project(db, "goes-on"), load_ontology(DEFAULT_PATH))
    _ingest(db, "goes-on", _walk_csv(tmp_path / "one.csv", 3.0), ended=True)
    run_tick(db)
    assert _accompany(db, "goes-on") == []  # 3 s: shorter than the rule's 5 s
    _ingest(db, "goes-on", _walk_csv(tmp_path / "two.csv", 9.0, start=3.0), ended=False)
    run_tick(db)
    assert _accompany(db, "goes-on") == []  # 12 s together, but the walk may go on
    _ingest(db, "goes-on", _walk_csv(tmp_path / "two.csv", 9.0, start=3.0), ended=True)
    run_tick(db)
    assert _accompany(db, "goes-on") == [(0.0, 11.9)]


def test_ended_without_points_is_refused(db: Conn, tmp_path: Path) -> None:
    project(db, "empty")
    scene = tmp_path / "scene.json"
    scene.write_text('{"zones": [], "routes": [], "triggers": []}', encoding="utf-8")
    with pytest.raises(UserError, match="has no points"):
        ingest(db, IngestRequest(project="empty-org/empty", source="clip", scene=scene,
                                 ended=True))
    assert db.execute("SELECT count(*) AS n FROM ingest.sources s JOIN core.projects p "
                      "USING (project_id) WHERE p.slug = 'empty'").fetchone() == {"n": 0}
