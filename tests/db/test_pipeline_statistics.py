"""pipeline.tick() analyzes what its stages wrote before the next stage is planned.

The tick is one transaction, so without this a later stage (the candidates rules) was
planned on freshly filled chunks with no statistics: `source_id = $2` estimated at 0.5 % of
the rows and a range at 0.5 % of that, i.e. a few rows for 514k, and a nested loop over
them (UCY students03: > 5 minutes in one rule instead of 1.4 s). These checks read the
planner's estimates from inside the tick, through a probe stage registered between the
feature stages and the candidates, so they fail deterministically if that comes back.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.support.scene_loader import load_sim, project, run_tick
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db

# A stage at position 45: after the feature stages, before the candidates (50). It
# records the planner's row estimate and the true count for one source's feature rows.
PROBE = """
CREATE TABLE public.plan_probe_log (source_id bigint, tab text, estimated double precision,
                                    actual bigint);
GRANT INSERT ON public.plan_probe_log TO secinf_owner;
CREATE FUNCTION public.plan_probe(p_source bigint, p_from timestamptz, p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tab    text;
  v_plan   json;
  v_actual bigint;
BEGIN
  FOREACH v_tab IN ARRAY ARRAY['kinematics'] LOOP
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM features.%I t '
                   'WHERE t.source_id = $1 AND t.ts >= $2 AND t.ts <= $3', v_tab)
      INTO v_plan USING p_source, p_from, p_to;
    EXECUTE format('SELECT count(*) FROM features.%I t '
                   'WHERE t.source_id = $1 AND t.ts >= $2 AND t.ts <= $3', v_tab)
      INTO v_actual USING p_source, p_from, p_to;
    INSERT INTO public.plan_probe_log
    VALUES (p_source, v_tab, (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision, v_actual);
  END LOOP;
  RETURN 0;
END
$$;
GRANT EXECUTE ON FUNCTION public.plan_probe(bigint, timestamptz, timestamptz) TO secinf_owner;
SELECT pipeline.register_stage('plan_probe',
         'public.plan_probe(bigint, timestamptz, timestamptz)', 45);
"""


def _probe(db: psycopg.Connection[dict[str, Any]]) -> list[dict[str, Any]]:
    return db.execute("SELECT source_id, tab, estimated, actual FROM public.plan_probe_log "
                      "ORDER BY source_id, tab").fetchall()


def test_a_later_stage_is_planned_on_statistics_of_the_earlier_stages_rows(
        db: psycopg.Connection[dict[str, Any]]) -> None:
    db.execute(PROBE)
    db.commit()
    pid = project(db)
    # Two sources in one tick, in the same chunks: the second one's rows are analyzed too.
    sources = [load_sim(db, pid, simulate(preset_config("corridor", seed=seed, duration=30)),
                        name=f"corridor-{seed}") for seed in (1, 2)]
    out = run_tick(db)
    assert [s["status"] for s in out["sources"]] == ["ok", "ok"]
    probes = _probe(db)
    assert {(p["source_id"], p["tab"]) for p in probes} == {
        (s, "kinematics") for s in sources}
    for p in probes:
        assert p["actual"] > 1000, p
        # Without statistics the estimate is 0.5 % x 0.5 % of the rows (a handful).
        assert p["actual"] / 2 <= p["estimated"] <= p["actual"] * 2, p
    # The tick reports what it analyzed: the kinematics chunks, per source (pair rows are
    # not stored: the candidates stage analyzes its own temporary table).
    chunks = db.execute(
        "SELECT hypertable_name AS tab, format('%I.%I', chunk_schema, chunk_name) AS chunk "
        "FROM timescaledb_information.chunks WHERE hypertable_schema = 'features'").fetchall()
    assert {c["tab"] for c in chunks} == {"kinematics"}
    for s in out["sources"]:
        assert {c["chunk"] for c in chunks} <= set(s["analyzed"]), s["analyzed"]
        assert s["ms"]["analyze"] >= 0
    # ... and the statistics committed with the tick.
    stats = db.execute(
        "SELECT count(DISTINCT s.starelid) AS n FROM pg_statistic s "
        "WHERE s.starelid = ANY (%s::regclass[])", ([c["chunk"] for c in chunks],)).fetchone()
    assert stats == {"n": len(chunks)}


def test_nothing_is_analyzed_again_until_it_grows(db: psycopg.Connection[dict[str, Any]]) -> None:
    pid = project(db)
    load_sim(db, pid, simulate(preset_config("corridor", seed=1, duration=30)))
    db.execute("SET ROLE pipeline")
    first = db.execute("SELECT pipeline.tick(true) AS r").fetchone()
    assert first is not None and first["r"]["sources"][0]["analyzed"]
    # Same transaction, nothing written since: the check finds nothing to do.
    db.execute("RESET ROLE")
    again = db.execute("SELECT pipeline.analyze_written() AS a").fetchone()
    assert again == {"a": []}
    db.rollback()
    # A re-run of a tick that has nothing to do runs no stage and analyzes nothing.
    run_tick(db)
    out = run_tick(db)
    assert out["sources"] == []
