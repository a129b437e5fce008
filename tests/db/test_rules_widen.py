"""The widened recall tier (`candidates.widen`): looser predicates emit `recall`
candidates for the pairs the strict rule misses, never a second candidate of a pair whose
strict interval they contain, the same rows on every re-run, and nothing without the block."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest

from tests.support.scene_loader import load_tracks, project, run_tick
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology, with_recall_tier

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
FPS = 10.0
WIDE = {"accompany": {
    "condition": "abs(lon_offset) < 2.0 and abs(lat_offset) <= 3.0 and heading_diff < 30"
                 " and speed > 0.3 and other_speed > 0.3",
    "hysteresis": "abs(lon_offset) < 2.5 and abs(lat_offset) <= 3.5 and heading_diff < 40"
                  " and speed > 0.25 and other_speed > 0.25"}}


def _walk(track: str, y: float, seconds: float, x0: float = 0.0) -> pl.DataFrame:
    frames = np.arange(int(seconds * FPS))
    return pl.DataFrame({"track_id": [track] * len(frames), "frame": frames,
                         "t": frames / FPS, "x": x0 + 1.2 * frames / FPS,
                         "y": [y] * len(frames)})


def _scene() -> pl.DataFrame:
    """Pair a-b side by side 1 m apart (strict accompany, 15 s); pair c-d 2.5 m apart
    (beyond the strict 1.5 m, inside the widened 3 m, 15 s); e alone 40 m away. All walk
    along x at 1.2 m/s; the recording goes on 5 s after c and d leave."""
    return pl.concat([_walk("a", 0.0, 15.0), _walk("b", 1.0, 15.0),
                      _walk("c", 20.0, 15.0), _walk("d", 22.5, 15.0),
                      _walk("e", 60.0, 20.0)])


def _candidates(db: Conn, source: int) -> list[tuple[str, str, str]]:
    rows = db.execute(
        "SELECT type, tier, actors FROM candidates.candidates "
        "WHERE source_id = %s AND type = 'accompany' ORDER BY tier, actors::text",
        (source,)).fetchall()
    return [(r["type"], r["tier"], "-".join(sorted(r["actors"].values()))) for r in rows]


def test_widened_tier_adds_the_missed_pair_once(db: Conn) -> None:
    plain = project(db, "plain")
    store.load(db, plain, load_ontology(DEFAULT_PATH))
    s_plain = load_tracks(db, plain, _scene(), FPS, name="plain-cam")
    run_tick(db)
    assert _candidates(db, s_plain) == [("accompany", "strict", "a-b")]

    wide = project(db, "wide")
    store.load(db, wide, with_recall_tier(load_ontology(DEFAULT_PATH), 0.5, widen=WIDE))
    s_wide = load_tracks(db, wide, _scene(), FPS, name="wide-cam")
    run_tick(db)
    # a-b keeps its one strict candidate (the widened interval holds it: not emitted); c-d
    # gets a recall one
    assert _candidates(db, s_wide) == [("accompany", "recall", "c-d"),
                                       ("accompany", "strict", "a-b")]
    rows = {r["tier"]: r for r in db.execute(
        "SELECT tier, rule_score, extract(epoch FROM end_ts - start_ts)::float8 AS dur "
        "FROM candidates.candidates WHERE source_id = %s AND type = 'accompany'",
        (s_wide,)).fetchall()}
    strict_plain = db.execute(
        "SELECT rule_score FROM candidates.candidates WHERE source_id = %s "
        "AND type = 'accompany'", (s_plain,)).fetchone()
    assert rows["strict"]["rule_score"] == strict_plain["rule_score"]
    # the widened pair's margin is the strict condition's (2.5 m fails |lat| <= 1.5: 0), so
    # its rule_score is the duration term alone, below the strict candidate's
    assert rows["recall"]["dur"] == pytest.approx(14.9, abs=0.3)
    assert rows["recall"]["rule_score"] == pytest.approx(0.5, abs=0.01)
    assert rows["recall"]["rule_score"] < rows["strict"]["rule_score"]

    # re-running the rules over the whole history inserts nothing and changes nothing
    before = db.execute("SELECT candidate_id, start_ts, end_ts, rule_score FROM "
                        "candidates.candidates WHERE source_id = %s ORDER BY 1",
                        (s_wide,)).fetchall()
    assert store.backfill(db, wide) == {"wide-cam": 0}
    after = db.execute("SELECT candidate_id, start_ts, end_ts, rule_score FROM "
                       "candidates.candidates WHERE source_id = %s ORDER BY 1",
                       (s_wide,)).fetchall()
    assert after == before


def test_widened_pair_is_not_emitted_where_a_stored_candidate_overlaps(db: Conn) -> None:
    """A stored candidate of the pair (an earlier tick's, of another span) claims it."""
    pid = project(db, "claimed")
    store.load(db, pid, with_recall_tier(load_ontology(DEFAULT_PATH), 0.5, widen=WIDE))
    source = load_tracks(db, pid, _scene(), FPS, name="claimed-cam")
    ontology_id = db.execute("SELECT ontology_id FROM rules.ontologies WHERE project_id = %s "
                             "AND active", (pid,)).fetchone()["ontology_id"]
    db.execute(
        "INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts, "
        "end_ts, rule_name, ontology_id, ontology_version, rule_score, evidence, tier) "
        "SELECT %s, %s, 'accompany', '{\"a\": \"c\", \"b\": \"d\"}', s.time_origin + "
        "interval '3 s', s.time_origin + interval '6 s', 'manual', %s, 1, 0.4, '{}', "
        "'recall' FROM ingest.sources s WHERE s.source_id = %s",
        (pid, source, ontology_id, source))
    db.commit()
    run_tick(db)
    assert _candidates(db, source) == [("accompany", "recall", "c-d"),
                                       ("accompany", "strict", "a-b")]
    assert db.execute("SELECT rule_name FROM candidates.candidates WHERE source_id = %s "
                      "AND tier = 'recall'", (source,)).fetchone() == {"rule_name": "manual"}
