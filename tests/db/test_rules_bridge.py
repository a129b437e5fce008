"""Bridges (a state type's `bridge` predicate, docs/rules.md "Bridges"): a pair that walks
together, pauses within reach and walks on is one accompany event; a bridge keeps an
interval open for at most bridge_max_s after its last held row, so a pair that stays
together longer is two events, and a live source's walk is emitted while they still stand."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest

from tests.support.ontology_variants import default_with
from tests.support.scene_loader import candidates_of, load_tracks, project, run_tick
from workers.rules import store
from workers.rules.ontology import Ontology

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
FPS = 5.0
WALK_S = 10.0
SPEED = 1.2


def _track(track: str, y: float, stand_s: float, tail_s: float = 0.0) -> pl.DataFrame:
    """Walk WALK_S along x, stand still stand_s, walk WALK_S again (tail_s = 0), or stand
    to the end (tail_s > 0: stand for stand_s + tail_s and never walk again)."""
    walk = np.arange(int(WALK_S * FPS)) / FPS
    if tail_s:
        t = np.arange(int((WALK_S + stand_s + tail_s) * FPS)) / FPS
        x = SPEED * np.minimum(t, WALK_S)
    else:
        stand = WALK_S + np.arange(1, int(stand_s * FPS) + 1) / FPS
        again = WALK_S + stand_s + walk + 1 / FPS
        t = np.concatenate([walk, stand, again])
        x = SPEED * np.concatenate([walk, np.full(len(stand), WALK_S), WALK_S + walk + 1 / FPS])
    return pl.DataFrame({"track_id": [track] * len(t), "frame": np.arange(len(t)),
                         "t": t, "x": x, "y": [y] * len(t)})


def _scene(stand_s: float, tail_s: float = 0.0) -> pl.DataFrame:
    """a and b 1 m apart (the pause well inside the bridge's 2.5 m); z walks alone 40 m
    away, 10 s longer than a and b's two walks (the recording goes on after them), or as
    long as a and b stand (tail_s > 0: they are still there when the data ends)."""
    end = (WALK_S + stand_s + tail_s) if tail_s else (2 * WALK_S + stand_s + 10.0)
    n = int(end * FPS)
    z = pl.DataFrame({"track_id": ["z"] * n, "frame": np.arange(n), "t": np.arange(n) / FPS,
                      "x": SPEED * np.arange(n) / FPS, "y": [40.0] * n})
    return pl.concat([_track("a", 0.0, stand_s, tail_s), _track("b", 1.0, stand_s, tail_s), z])


def _ontology(bridge_max_s: float | None) -> Ontology:
    """The default ontology, its accompany bridge capped at bridge_max_s (None: no bridge)."""
    bridge = {} if bridge_max_s is None else {"bridge": "distance < 2.5",
                                              "bridge_max_s": bridge_max_s}
    return default_with("accompany", ("bridge", "bridge_max_s"), **bridge)


def _spans(db: Conn, slug: str, bridge_max_s: float | None, scene: pl.DataFrame
           ) -> list[tuple[float, float]]:
    pid = project(db, slug)
    store.load(db, pid, _ontology(bridge_max_s))
    source = load_tracks(db, pid, scene, FPS, name=f"{slug}-cam")
    run_tick(db)
    rows = candidates_of(db, source, "accompany")
    assert all(sorted(r["actors"].values()) == ["a", "b"] for r in rows)
    return [(round(r["t0"]), round(r["t1"])) for r in rows]


def test_a_pause_within_reach_joins_the_two_walks(db: Conn) -> None:
    scene = _scene(stand_s=60.0)
    # without a bridge: the two walks, each its own event
    assert _spans(db, "unbridged", None, scene) == [(0, 10), (70, 80)]
    # the default ontology's bridge: one event from the first walk's start to the second's
    # end (the span is the walks', the pause between them counts)
    assert _spans(db, "bridged", 300.0, scene) == [(0, 80)]


def test_a_bridge_holds_for_at_most_bridge_max_s(db: Conn) -> None:
    # standing 60 s is past a 30 s bridge: two events again
    assert _spans(db, "short-bridge", 30.0, _scene(stand_s=60.0)) == [(0, 10), (70, 80)]


def test_a_live_pair_still_standing_together_gets_its_walk_once_the_bridge_ends(
        db: Conn) -> None:
    # a and b walk, then stand together to the end of the data: the walk is emitted once
    # the bridge has run out (30 s here), not held back for as long as they stand
    standing = _scene(stand_s=60.0, tail_s=60.0)
    assert _spans(db, "live-short", 30.0, standing) == [(0, 10)]
    # within the bridge (300 s) the interval is still open: nothing yet
    assert _spans(db, "live-long", 300.0, standing) == []
