"""Incremental candidates: a scene ticked in pieces yields the candidates of one pass, and
events spanning a tick's range boundary appear once."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import polars as pl
import psycopg
import pytest

from tests.support.factories import make_project
from workers.pipeline.runner import tick
from workers.pipeline.scene_copy import copy_points, load_result, scene_source
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _candidates(db: Conn, pid: str) -> set[tuple[Any, ...]]:
    rows = db.execute("SELECT type, actors::text AS actors, zone, route, trigger, start_ts, "
                      "end_ts FROM candidates.candidates WHERE project_id = %s",
                      (pid,)).fetchall()
    return {tuple(r.values()) for r in rows}


@pytest.mark.slow
def test_pieces_equal_one_pass(db: Conn) -> None:
    res = simulate(preset_config("plaza", seed=103, duration=90.0))
    onto = load_ontology(DEFAULT_PATH)
    whole = make_project(db, "acme", "whole")
    store.load(db, whole, onto)
    load_result(db, whole, res, name="whole")
    tick(db, until_idle=True)

    parts = make_project(db, "acme", "parts")
    store.load(db, parts, onto)
    sid = scene_source(db, parts, res.scene, "parts")
    origin = datetime.fromisoformat(res.scene["time_origin"].replace("Z", "+00:00"))
    cuts = [0.0, 31.0, 58.0, 1e9]
    for lo, hi in itertools.pairwise(cuts):
        piece = res.tracks.filter((pl.col("t") >= lo) & (pl.col("t") < hi))
        copy_points(db, parts, sid, piece, origin, f"parts-{int(lo)}")
        tick(db, until_idle=True)
    one = _candidates(db, whole)
    assert len(one) > 20
    assert _candidates(db, parts) == one
