-- Auto-accept: candidates whose scores reach the project's thresholds (review.settings)
-- become verified events without a person, source 'model' (model_score ≥
-- auto_accept_model) or else 'rule' (rule_score ≥ auto_accept_rule, strict-tier candidates
-- only: recall-tier ones need the model or a person). Only undecided
-- candidates (new, scored) without a live human decision; their status becomes 'accepted',
-- so they leave the default queue. A reviewer can still reject one (api.decide removes the
-- machine event) or accept it (the event becomes the human one). Run every minute by
-- pg_cron (sql/810_cron_review.sql); idempotent.

-- Promote the candidates of one project (NULL: every project); returns the events made.
-- Executable by the pipeline only (987_grants_review.sql) and administrators.
CREATE OR REPLACE FUNCTION events.promote(p_project uuid DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p record;
  v review.settings;
  v_sources bigint[];
  v_rows bigint;
  v_total bigint := 0;
BEGIN
  FOR p IN
    SELECT x.project_id FROM core.projects x
    WHERE p_project IS NULL OR x.project_id = p_project
    ORDER BY x.project_id
  LOOP
    v := review.project_settings(p.project_id);
    CONTINUE WHEN v.auto_accept_model IS NULL AND v.auto_accept_rule IS NULL;
    -- The sources no tick holds now. A tick locks its source FOR UPDATE and later writes
    -- that source's candidates; the events inserted below need a KEY SHARE lock on the
    -- source (their foreign key) while this holds candidate locks: taking the sources
    -- first, and skipping a source being ticked until the next run, keeps the two from
    -- deadlocking (tests/db/test_cron_scheduled.py).
    v_sources := ARRAY(SELECT s.source_id FROM ingest.sources s
                       WHERE s.project_id = p.project_id
                       ORDER BY s.source_id FOR KEY SHARE SKIP LOCKED);
    CONTINUE WHEN cardinality(v_sources) = 0;
    -- The UPDATE locks each candidate and re-checks its status after a concurrent
    -- api.decide (which locks the same row first), so a decided candidate is skipped.
    WITH promoted AS (
      UPDATE candidates.candidates c
      SET status = 'accepted', updated_at = now()
      WHERE c.project_id = p.project_id
        AND c.source_id = ANY (v_sources)
        AND c.status IN ('new', 'scored')
        -- rule_score alone accepts only the rules' strict tier; the model may accept both.
        AND (c.model_score >= v.auto_accept_model
             OR (c.tier = 'strict' AND c.rule_score >= v.auto_accept_rule))
        AND NOT EXISTS (SELECT FROM review.current r WHERE r.candidate_id = c.candidate_id)
        AND NOT EXISTS (SELECT FROM events.events e WHERE e.candidate_id = c.candidate_id)
      RETURNING c.*
    ), made AS (
      INSERT INTO events.events
        (project_id, source_id, candidate_id, type, actors, zone, route, trigger, latency_s,
         start_ts, end_ts, confidence, source, verified_by, ontology_id, ontology_version,
         model_version)
      SELECT c.project_id, c.source_id, c.candidate_id, c.type, c.actors, c.zone, c.route,
             c.trigger, c.latency_s, c.start_ts, c.end_ts,
             CASE WHEN m.by_model THEN c.model_score ELSE c.rule_score END,
             CASE WHEN m.by_model THEN 'model' ELSE 'rule' END,
             CASE WHEN m.by_model THEN coalesce(c.model_version, 'model') ELSE c.rule_name END,
             c.ontology_id, c.ontology_version, c.model_version
      FROM promoted c
      CROSS JOIN LATERAL (SELECT coalesce(c.model_score >= v.auto_accept_model, false)
                                 AS by_model) m
      ON CONFLICT (candidate_id) DO NOTHING
      RETURNING 1
    )
    SELECT count(*) INTO v_rows FROM made;
    IF v_rows > 0 THEN
      PERFORM audit.record(p.project_id, 'events.promote', NULL,
                           jsonb_build_object('events', v_rows,
                                              'auto_accept_model', v.auto_accept_model,
                                              'auto_accept_rule', v.auto_accept_rule));
    END IF;
    v_total := v_total + v_rows;
  END LOOP;
  RETURN v_total;
END
$$;
