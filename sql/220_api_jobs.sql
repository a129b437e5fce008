-- The api schema, sources and jobs: each source with its pipeline status, and processing
-- jobs a customer may request (run the pipeline for a source now, re-process a time
-- range, re-run the rules) through the work queue (sql/600_jobs.sql, docs/queue.md).
-- Workers run these kinds with the handlers of workers/pipeline/jobs.py, workers/rules/jobs.py. See docs/api.md.

-- ======================================================================= sources
-- Where the pipeline stands for one source of the caller's projects (no row otherwise):
-- the watermark (oldest over the enabled stages; NULL until every stage ran), each stage's
-- watermark, the lag behind the newest ingested point, pending dirty ranges (late data or
-- re-processing requests), the last tick that touched the source and the last error, and
-- while it is failing its failures in a row and when a tick tries it again
-- (pipeline.source_failures).
DROP VIEW IF EXISTS api.sources;
DROP FUNCTION IF EXISTS ingest.source_status(bigint);
CREATE FUNCTION ingest.source_status(p_source bigint)
RETURNS TABLE (watermark timestamptz, lag_s double precision, caught_up boolean,
               stages jsonb, dirty_pending bigint, dirty_ranges jsonb,
               last_run_at timestamptz, last_run_status text, last_run_points bigint,
               last_error_at timestamptz, last_error text, failures bigint,
               retry_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_src ingest.sources;
  v_wm timestamptz;
  v_dirty bigint;
BEGIN
  SELECT * INTO v_src FROM ingest.sources s WHERE s.source_id = p_source;
  IF NOT FOUND OR NOT auth.can_access(v_src.project_id) THEN
    RETURN;
  END IF;
  v_wm := pipeline.watermark(p_source);
  SELECT count(*) INTO v_dirty FROM ingest.dirty_ranges d WHERE d.source_id = p_source;
  RETURN QUERY
  SELECT v_wm,
         extract(epoch FROM v_src.high_water - v_wm)::double precision,
         v_wm IS NOT NULL AND v_wm >= coalesce(v_src.high_water, '-infinity') AND v_dirty = 0,
         (SELECT jsonb_object_agg(st.name, w.watermark)
          FROM pipeline.stages st
          LEFT JOIN features.watermarks w ON w.stage = st.name AND w.source_id = p_source
          WHERE st.enabled),
         v_dirty,
         coalesce((SELECT jsonb_agg(jsonb_build_object('from_ts', d.from_ts, 'to_ts', d.to_ts,
                                                       'reason', d.reason,
                                                       'created_at', d.created_at)
                                    ORDER BY d.from_ts)
                   FROM (SELECT * FROM ingest.dirty_ranges d WHERE d.source_id = p_source
                         ORDER BY d.from_ts LIMIT 20) d), '[]'),
         r.finished_at, r.status, r.points, e.finished_at, e.error,
         coalesce(f.failures, 0), f.retry_at
  FROM (SELECT 1) one
  LEFT JOIN pipeline.source_failures f ON f.source_id = p_source
  LEFT JOIN LATERAL (SELECT * FROM pipeline.runs r WHERE r.source_id = p_source
                     ORDER BY r.started_at DESC LIMIT 1) r ON true
  LEFT JOIN LATERAL (SELECT * FROM pipeline.runs r WHERE r.source_id = p_source
                       AND r.status = 'error' ORDER BY r.started_at DESC LIMIT 1) e ON true;
END
$$;

CREATE VIEW api.sources WITH (security_invoker = true) AS
SELECT s.source_id, s.project_id, s.name, s.units, s.fps, s.time_origin, s.video_uri,
       s.created_at, s.high_water AS newest_ts, st.watermark, st.lag_s, st.caught_up,
       st.stages, st.dirty_pending, st.dirty_ranges, st.last_run_at, st.last_run_status,
       st.last_run_points, st.last_error_at, st.last_error, st.failures, st.retry_at
FROM ingest.sources s
LEFT JOIN LATERAL ingest.source_status(s.source_id) st ON true;
COMMENT ON VIEW api.sources IS
  'Sources (cameras, scenes) of the caller''s projects and where the pipeline stands for '
  'each: watermark, lag, pending dirty ranges, last tick and last error.';
COMMENT ON COLUMN api.sources.newest_ts IS 'Newest ingested point (the source''s high water).';
COMMENT ON COLUMN api.sources.watermark IS
  'Everything at or before it is processed by every pipeline stage (NULL: not yet run).';
COMMENT ON COLUMN api.sources.lag_s IS 'Seconds of ingested data not yet processed.';
COMMENT ON COLUMN api.sources.caught_up IS
  'The watermark has reached the newest point and no dirty range is pending.';
COMMENT ON COLUMN api.sources.stages IS 'Each pipeline stage''s watermark.';
COMMENT ON COLUMN api.sources.dirty_ranges IS
  'Pending ranges to re-process (late data, re-process jobs): the first 20 by time.';
COMMENT ON COLUMN api.sources.last_run_at IS 'When the last pipeline tick for this source ended.';
COMMENT ON COLUMN api.sources.failures IS
  'Failed pipeline runs in a row (0: not failing); the source is retried with backoff.';
COMMENT ON COLUMN api.sources.retry_at IS
  'While failing: when the pipeline tries the source again (a pipeline_run job: now).';

-- ======================================================================= jobs
DROP VIEW IF EXISTS api.jobs;
CREATE VIEW api.jobs WITH (security_invoker = true) AS
SELECT j.job_id, j.project_id, j.kind, j.payload AS params, j.state, j.attempt AS attempts,
       j.failures, j.max_attempts, j.run_after, j.progress, j.last_error AS error, r.result,
       j.created_by, j.created_at, j.updated_at, j.finished_at, j.priority
FROM jobs.jobs j
LEFT JOIN jobs.results r ON r.job_id = j.job_id;
COMMENT ON VIEW api.jobs IS
  'Processing jobs of the caller''s projects (customers, project admins): state queued | '
  'running | succeeded | dead | cancelled, attempts, last error and the result.';
COMMENT ON COLUMN api.jobs.attempts IS 'Claims so far (a retried job has several).';
COMMENT ON COLUMN api.jobs.error IS 'The last failure''s message (dead: why it gave up).';
COMMENT ON COLUMN api.jobs.result IS 'What the job produced, once succeeded.';
COMMENT ON COLUMN api.jobs.priority IS
  'Claim order: higher first (the organization''s plan''s job_priority when queued); FIFO '
  'within one priority.';

DROP FUNCTION IF EXISTS api.job(bigint);
-- One job of the caller's projects, to poll; 404 when it is not theirs or does not exist.
CREATE FUNCTION api.job(p_job_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_job jsonb;
BEGIN
  SELECT to_jsonb(j) INTO v_job FROM api.jobs j WHERE j.job_id = p_job_id;
  IF v_job IS NULL THEN
    RAISE EXCEPTION 'job % not found in your projects', p_job_id USING ERRCODE = 'P0002',
      HINT = 'GET /jobs lists your projects'' jobs.';
  END IF;
  RETURN v_job;
END
$$;
COMMENT ON FUNCTION api.job(bigint) IS
  'One job of the caller''s projects: state, attempts, error, progress and result (poll it).';

-- A source of the project named by id ("source_id") or by name ("source"); 404 otherwise.
CREATE OR REPLACE FUNCTION ingest.api_find_source(p_project uuid, p_params jsonb)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id bigint;
BEGIN
  IF p_params ? 'source_id' THEN
    IF jsonb_typeof(p_params -> 'source_id') <> 'number' THEN
      RAISE EXCEPTION 'source_id must be a number' USING ERRCODE = '22023';
    END IF;
    SELECT s.source_id INTO v_id FROM ingest.sources s
    WHERE s.project_id = p_project AND s.source_id = (p_params ->> 'source_id')::numeric;
  ELSIF p_params ? 'source' THEN
    SELECT s.source_id INTO v_id FROM ingest.sources s
    WHERE s.project_id = p_project AND s.name = p_params ->> 'source';
  ELSE
    RAISE EXCEPTION 'name the source: "source_id" or "source" (its name)'
      USING ERRCODE = '22023', HINT = 'GET /sources lists them.';
  END IF;
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'source % not found in your project',
      coalesce(p_params ->> 'source_id', p_params ->> 'source') USING ERRCODE = 'P0002',
      HINT = 'GET /sources lists them.';
  END IF;
  RETURN v_id;
END
$$;

DROP FUNCTION IF EXISTS api.create_job(text, jsonb);
-- Queue a processing job in the caller's project; an equal job still queued or running is
-- returned instead of a second one.
CREATE FUNCTION api.create_job(p_kind text, p_params jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c_kinds constant text[] := ARRAY['pipeline_run', 'pipeline_reprocess', 'rules_backfill'];
  v_params jsonb := coalesce(p_params, '{}');
  v_allowed text[];
  v_unknown text[];
  v_project uuid;
  v_source bigint;
  v_from timestamptz;
  v_to timestamptz;
  v_payload jsonb;
  v_dedupe text;
  v_job bigint;
  v_new boolean;
  v_out jsonb;
BEGIN
  IF p_kind IS NULL OR NOT (p_kind = ANY (c_kinds)) THEN
    RAISE EXCEPTION 'unknown job kind "%"', p_kind USING ERRCODE = '22023',
      HINT = 'Kinds: ' || array_to_string(c_kinds, ', ') || ' (docs/api.md).';
  END IF;
  IF jsonb_typeof(v_params) <> 'object' THEN
    RAISE EXCEPTION 'p_params must be a JSON object' USING ERRCODE = '22023';
  END IF;
  v_allowed := CASE p_kind
                 WHEN 'pipeline_reprocess' THEN ARRAY['project_id', 'source_id', 'source',
                                                      'from', 'to']
                 ELSE ARRAY['project_id', 'source_id', 'source'] END;
  v_unknown := ARRAY(SELECT k FROM jsonb_object_keys(v_params) k WHERE k <> ALL (v_allowed)
                     ORDER BY k);
  IF cardinality(v_unknown) > 0 THEN
    RAISE EXCEPTION 'unknown parameter(s) for %: %', p_kind, array_to_string(v_unknown, ', ')
      USING ERRCODE = '22023', HINT = 'Parameters: ' || array_to_string(v_allowed, ', ') || '.';
  END IF;
  v_project := auth.target_project(v_params, ARRAY['customer', 'project_admin']);

  IF p_kind = 'rules_backfill' AND NOT (v_params ? 'source_id' OR v_params ? 'source') THEN
    v_source := NULL;  -- every source of the project
  ELSE
    v_source := ingest.api_find_source(v_project, v_params);
  END IF;
  IF p_kind = 'pipeline_reprocess' THEN
    BEGIN
      v_from := (v_params ->> 'from')::timestamptz;
      v_to := (v_params ->> 'to')::timestamptz;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
      RAISE EXCEPTION 'from and to must be timestamps' USING ERRCODE = '22023',
        HINT = 'e.g. "2026-01-01T00:00:00Z"';
    END;
    IF v_from IS NULL OR v_to IS NULL OR v_to <= v_from THEN
      RAISE EXCEPTION 'pipeline_reprocess needs "from" before "to"' USING ERRCODE = '22023',
        HINT = 'e.g. {"source": "cam-1", "from": "2026-01-01T00:00:00Z", '
               '"to": "2026-01-01T00:10:00Z"}';
    END IF;
  END IF;

  v_payload := jsonb_strip_nulls(jsonb_build_object(
    'source_id', v_source, 'from_ts', v_from, 'to_ts', v_to));
  v_dedupe := concat_ws(':', 'source', coalesce(v_source::text, 'all'),
                        (extract(epoch FROM v_from) * 1000000)::bigint,
                        (extract(epoch FROM v_to) * 1000000)::bigint);
  -- At most jobs_in_flight_max queued or running per project (sql/230_api_caps.sql): 429.
  PERFORM jobs.check_in_flight(v_project, jobs.api_job_kinds(), p_kind, v_dedupe);
  -- Pipeline and rules jobs process source time: refused (402) once the month's quota of
  -- source_seconds is used up (sql/240_billing_usage.sql).
  PERFORM billing.check_quota(v_project, 'source_seconds', 1);
  v_job := jobs.enqueue(v_project, p_kind, v_payload, p_max_attempts => 3,
                        p_dedupe_key => v_dedupe);
  -- Created by this call (not an equal live job found by its dedupe key)?
  UPDATE jobs.jobs j SET created_by = auth.subject()
  WHERE j.job_id = v_job AND j.created_at = now() AND j.created_by = session_user;
  v_new := FOUND;
  IF v_new THEN
    PERFORM audit.record(v_project, 'job.create', p_kind,
                         jsonb_build_object('job_id', v_job, 'params', v_payload));
  END IF;
  SELECT to_jsonb(j) || jsonb_build_object('deduplicated', NOT v_new) INTO v_out
  FROM api.jobs j WHERE j.job_id = v_job;
  RETURN v_out;
END
$$;
COMMENT ON FUNCTION api.create_job(text, jsonb) IS
  'Queue a processing job in the caller''s project (customers, project admins). Kinds: '
  'pipeline_run {source_id | source} (run the pipeline for the source now), '
  'pipeline_reprocess {source_id | source, from, to} (mark the range dirty and re-process '
  'it), rules_backfill {source_id | source, optional} (re-run the active rules over the '
  'history). An equal job still queued or running is returned (deduplicated: true). Poll '
  'with GET /rpc/job?p_job_id=…. At most jobs_in_flight_max (default 100) queued or '
  'running per project: 429 beyond.';
