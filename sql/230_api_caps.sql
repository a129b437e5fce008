-- Caps on the work one project may have in flight through the API, so that one tenant
-- cannot fill the queue or the pipeline's backlog for every other (issue 16). Refusals are
-- SQLSTATE PT429 (HTTP 429 through PostgREST) and name the cap, the count and the fix.
-- See docs/api.md ("Limits").
--
-- api.create_job queues jobs: at most jobs_in_flight_max of them queued or running per
-- project. api.ingest_batch queues no job (pg_cron's pipeline.tick() works the new points),
-- so its cap is on the work it leaves behind: at most points_in_flight_max points the
-- pipeline has not processed yet (above their source's watermark) per project.

-- ======================================================================= settings
-- Defaults (project_id NULL); a project's own row overrides them:
-- `secinf pipeline settings -p ORG/PROJECT jobs_in_flight_max=500`.
INSERT INTO pipeline.settings (project_id, key, value) VALUES
  (NULL, 'jobs_in_flight_max', '100'),         -- queued + running API jobs per project
  (NULL, 'points_in_flight_max', '1000000')    -- ingested points not yet processed, per project
ON CONFLICT (project_id, key) DO NOTHING;

-- ======================================================================= jobs
-- The job kinds that enter through the API and count against jobs_in_flight_max: those of
-- api.create_job, and the ingest of a signed upload (api.ingest_upload_complete).
CREATE OR REPLACE FUNCTION jobs.api_job_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['pipeline_run', 'pipeline_reprocess', 'rules_backfill', 'ingest_file'] $$;

-- Refuse (PT429) a new job of the API's kinds when the project has its cap of them queued
-- or running; an equal live job (same kind and dedupe key) is returned by jobs.enqueue, not
-- created, so it passes. Takes the project's advisory lock until the caller's transaction
-- ends: two create_job calls of one project count and insert one after the other, never
-- both on the same count. API jobs always have a dedupe key, so the count reads the partial
-- index of live keyed jobs (jobs_live_dedupe_key), however long the project's history.
CREATE OR REPLACE FUNCTION jobs.check_in_flight(p_project uuid, p_kinds text[], p_kind text,
                                                p_dedupe_key text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_cap bigint := coalesce(pipeline.setting_float(p_project, 'jobs_in_flight_max'), 100);
  v_count bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('jobs.in_flight:' || p_project::text, 0));
  IF EXISTS (SELECT FROM jobs.jobs j
             WHERE j.project_id = p_project AND j.kind = p_kind
               AND j.dedupe_key = p_dedupe_key AND j.state IN ('queued', 'running')) THEN
    RETURN;
  END IF;
  SELECT count(*) INTO v_count FROM jobs.jobs j
  WHERE j.project_id = p_project AND j.kind = ANY (p_kinds) AND j.dedupe_key IS NOT NULL
    AND j.state IN ('queued', 'running');
  IF v_count >= v_cap THEN
    RAISE EXCEPTION 'too many jobs in flight: the project has % jobs queued or running, '
                    'its cap (jobs_in_flight_max) is %', v_count, v_cap
      USING ERRCODE = 'PT429',
      HINT = 'Wait for some to finish (GET /jobs lists them, state queued or running) and '
             'retry, or ask an operator to raise the cap: secinf pipeline settings -p '
             'ORG/PROJECT jobs_in_flight_max=N.';
  END IF;
END
$$;

-- ======================================================================= points
-- Refuse (PT429) a batch of p_new points when the points of the project that the pipeline
-- has not processed yet (above their source's watermark; a source that never ran: all of
-- it) plus the batch would pass the cap. Counts at most cap + 1 points (LIMIT), one index
-- range per source that is behind, so the check costs at most the cap whatever the
-- history. Late points (at or below the watermark, re-processed through dirty ranges) are
-- not counted. No lock: batches of one project on several sources run side by side, and
-- batches in flight at the same moment do not see each other, so the cap can be passed by
-- at most their own size (10 000 points each, times PostgREST's pool).
CREATE OR REPLACE FUNCTION ingest.check_points_in_flight(p_project uuid, p_new bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_cap bigint := coalesce(pipeline.setting_float(p_project, 'points_in_flight_max'),
                           1000000);
  v_count bigint := 0;
  v_more bigint;
  s record;
BEGIN
  FOR s IN SELECT src.source_id, coalesce(pipeline.watermark(src.source_id), '-infinity') AS wm,
                  src.high_water
           FROM ingest.sources src
           WHERE src.project_id = p_project AND src.high_water IS NOT NULL
           ORDER BY src.source_id LOOP
    CONTINUE WHEN s.high_water <= s.wm;
    SELECT count(*) INTO v_more
    FROM (SELECT FROM ingest.track_points tp
          WHERE tp.source_id = s.source_id AND tp.ts > s.wm
          LIMIT v_cap - v_count + 1) x;
    v_count := v_count + v_more;
    EXIT WHEN v_count > v_cap;
  END LOOP;
  IF v_count + p_new > v_cap THEN
    RAISE EXCEPTION 'too many points in flight: the project has % points the pipeline has not '
                    'processed yet, and this batch of % would pass its cap '
                    '(points_in_flight_max) of %',
                    CASE WHEN v_count > v_cap THEN 'more than ' || v_cap ELSE v_count::text END,
                    p_new, v_cap
      USING ERRCODE = 'PT429',
      HINT = 'Retry once the pipeline has caught up (GET /sources: lag_s, caught_up), send '
             'smaller batches, or ask an operator to raise the cap: secinf pipeline '
             'settings -p ORG/PROJECT points_in_flight_max=N.';
  END IF;
END
$$;
