"""The datasets endpoints as PostgREST serves them (tests/support/postgrest.py): the list of
versions, a manifest, a data card, and similar events by embedding; another project's
datasets and events stay invisible."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.db import datasets_helpers as h
from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from workers.datasets import ExportRequest, GateConfig, export

pytestmark = pytest.mark.db
RELAXED = GateConfig(min_per_type=1, max_class_share=1.0, max_imbalance=1e9)
READERS = ("customer", "reviewer", "analyst", "project_admin")


@dataclass(frozen=True)
class Published:
    dsn: str
    a: str
    b: str
    a_path: Path
    b_event: int


@pytest.fixture(scope="module")
def published(module_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Published:
    tmp = tmp_path_factory.mktemp("dataset-api")
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        for pid, tag, seeds in ((a, "a", (1, 2)), (b, "b", (3,))):
            h.load_default_ontology(db, pid)
            for seed in seeds:
                h.add_scene(db, pid, f"{tag}-plaza-{seed}", seed, tmp, duration=30.0)
        h.run_pipeline(db)
        for pid in (a, b):
            h.score_candidates(db, pid)
            h.promote(db, pid)
        ra = export(db, ExportRequest(project=a, storage_root=tmp / "store", gates=RELAXED))
        rb = export(db, ExportRequest(project=b, storage_root=tmp / "store", gates=RELAXED,
                                      version="3.0.0"))
        assert (ra.status, rb.status) == ("published", "published")
        b_event = db.execute("SELECT min(event_id) AS e FROM events.events WHERE project_id = %s",
                             (b,)).fetchone()
        assert b_event is not None
    return Published(module_dsn, a, b, ra.path, int(b_event["e"]))


def _api(p: Published, role: str = "customer", project: str | None = None) -> Api:
    return Api(p.dsn).as_(role, project_id=project or p.a)


def test_anonymous_callers_get_nothing(published: Published) -> None:
    anon = Api(published.dsn)
    for call in (lambda: anon.get("datasets"), lambda: anon.rpc("dataset_manifest",
                                                                p_version="1.0.0"),
                 lambda: anon.rpc("similar_events", p_event_id=1)):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 401 and "permission denied" in err.value.message


@pytest.mark.parametrize("role", READERS)
def test_members_list_only_their_projects_versions(published: Published, role: str) -> None:
    rows = _api(published, role).get("datasets")
    assert [(str(r["project_id"]), r["version"], r["status"]) for r in rows] == [
        (published.a, "1.0.0", "published")]
    row = rows[0]
    assert row["failed_gates"] == [] and row["files"] == 10 and row["bytes"] > 0
    assert row["ratios"] == {"train": 0.7, "val": 0.15, "test": 0.15}
    assert sum(row["events_by_split"].values()) == row["events"] > 0
    assert "storage_path" not in row
    other = _api(published, role, published.b).get("datasets")
    assert [r["version"] for r in other] == ["3.0.0"]


def test_manifest_and_card_of_a_version(published: Published) -> None:
    api = _api(published)
    manifest = api.rpc("dataset_manifest", p_version="1.0.0")
    assert manifest == json.loads((published.a_path / "manifest.json").read_text())
    assert api.rpc("dataset_manifest", p_version="events@1.0.0") == manifest
    card = api.rpc("dataset_card", p_version="1.0.0")
    assert card == (published.a_path / "card" / "README.md").read_text()
    assert card.startswith("# Dataset `events` 1.0.0")
    # Another project's version is not found, not forbidden.
    for version in ("3.0.0", "events@3.0.0", "7.7.7"):
        with pytest.raises(ApiError) as err:
            api.rpc("dataset_manifest", p_version=version)
        assert (err.value.status, err.value.message) == (
            404, f"dataset version {version} not found in your projects")
    assert _api(published, "analyst", published.b).rpc("dataset_card", p_version="3.0.0"
                                                       ).startswith("# Dataset `events` 3.0.0")


def test_similar_events_stay_in_the_callers_projects(published: Published) -> None:
    with psycopg.connect(published.dsn, row_factory=dict_row) as db:
        mine = {r["event_id"] for r in db.execute(
            "SELECT event_id FROM events.events WHERE project_id = %s", (published.a,))}
        probe = min(mine)
        expected = [r["event_id"] for r in db.execute(
            """SELECT e.event_id FROM events.events e JOIN candidates.candidates c
               USING (candidate_id) WHERE e.project_id = %(a)s AND e.event_id <> %(p)s
               ORDER BY c.embedding <=> (SELECT c2.embedding FROM events.events e2
                 JOIN candidates.candidates c2 USING (candidate_id) WHERE e2.event_id = %(p)s),
                 e.event_id LIMIT 5""", {"a": published.a, "p": probe})]
    for role in READERS:
        rows = _api(published, role).rpc("similar_events", p_event_id=probe, p_k=5)
        assert [r["event_id"] for r in rows] == expected
        sims = [r["similarity"] for r in rows]
        assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
        assert {r["event_id"] for r in rows} <= mine - {probe}
    everything = _api(published).rpc("similar_events", p_event_id=probe, p_k=1000)
    assert {r["event_id"] for r in everything} == mine - {probe}
    with pytest.raises(ApiError) as err:
        _api(published).rpc("similar_events", p_event_id=published.b_event)
    assert (err.value.status, err.value.message) == (
        404, f"event {published.b_event} not found in your projects")
    with pytest.raises(ApiError) as err:
        _api(published).rpc("similar_events", p_event_id=probe, p_k=0)
    assert (err.value.status, err.value.message) == (
        400, "p_k must be between 1 and 1000, not 0")


def test_every_datasets_api_object_has_a_comment(published: Published) -> None:
    with psycopg.connect(published.dsn, row_factory=dict_row) as db:
        rows = db.execute(sql.SQL(
            """SELECT o.name, obj_description(o.oid, o.catalog) AS comment FROM (
                 SELECT 'api.datasets' AS name, 'api.datasets'::regclass::oid AS oid,
                        'pg_class' AS catalog
                 UNION ALL SELECT p.oid::regprocedure::text, p.oid, 'pg_proc'
                 FROM pg_proc p WHERE p.pronamespace = 'api'::regnamespace
                   AND p.proname IN ('dataset_manifest', 'dataset_card', 'similar_events')
               ) o""")).fetchall()
    assert len(rows) == 4
    assert all(r["comment"] and len(r["comment"]) > 40 for r in rows), rows
