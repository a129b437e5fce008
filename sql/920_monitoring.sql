-- Database-side metrics (issue 19): aggregate views for Prometheus's postgres_exporter,
-- read by the login secinf_monitor (docs/operations.md, "Metrics and alerts"; the exporter's
-- queries: docker/monitoring/postgres_exporter_queries.yaml). Every view is security_invoker
-- over a SECURITY DEFINER function of the owner that returns counts, ages and lags only:
-- tenants appear as project and source ids, never a name, a payload, an error text or a row.
-- Each function reads indexes whose size does not grow with history (the target: < 50 ms
-- at 10M rows; `secinf bench monitoring` times them).

-- ======================================================================= pipeline
-- Per source: how far the features lag the newest merged data (high_water − the lowest
-- stage watermark; never processed: high_water − the first point), the latest run's age,
-- duration and outcome, failures in a row (pipeline.source_failures) and dirty ranges
-- waiting. A source without data has lag 0.
CREATE OR REPLACE FUNCTION monitoring.pipeline_source_stats()
RETURNS TABLE (project_id uuid, source_id bigint, lag_seconds double precision,
               last_run_age_seconds double precision, last_run_seconds double precision,
               last_run_ok boolean, failures bigint, dirty_pending bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.project_id, s.source_id,
         coalesce(extract(epoch FROM s.high_water - coalesce(
           pipeline.watermark(s.source_id),
           (SELECT min(p.ts) FROM ingest.track_points p WHERE p.source_id = s.source_id)
         ))::double precision, 0),
         extract(epoch FROM now() - r.finished_at)::double precision,
         extract(epoch FROM r.finished_at - r.started_at)::double precision,
         r.status = 'ok',
         coalesce(f.failures, 0),
         (SELECT count(*) FROM ingest.dirty_ranges d WHERE d.source_id = s.source_id)
  FROM ingest.sources s
  LEFT JOIN LATERAL (SELECT r.finished_at, r.started_at, r.status FROM pipeline.runs r
                     WHERE r.source_id = s.source_id
                     ORDER BY r.started_at DESC LIMIT 1) r ON true
  LEFT JOIN pipeline.source_failures f ON f.source_id = s.source_id
$$;

DROP VIEW IF EXISTS monitoring.pipeline_sources;
CREATE VIEW monitoring.pipeline_sources WITH (security_invoker = true) AS
SELECT * FROM monitoring.pipeline_source_stats();

-- ======================================================================= queue
-- Jobs by kind, state and priority (the claim order: the plan's job_priority when queued,
-- so a free tenant's flood shows apart from paying tenants' work): queued (and how many of
-- them are due now, and how long the oldest due one has waited), running, dead. Succeeded and cancelled jobs are history, not
-- depth: the workers' counters count them. An index-only scan of jobs_monitor_idx (0026).
-- (Dropped first: its columns changed once.)
DROP VIEW IF EXISTS monitoring.queue_depth;
DROP FUNCTION IF EXISTS monitoring.queue_depth_stats();
CREATE OR REPLACE FUNCTION monitoring.queue_depth_stats()
RETURNS TABLE (kind text, state text, priority bigint, jobs bigint, due bigint,
               oldest_due_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT j.kind, j.state, j.priority, count(*),
         count(*) FILTER (WHERE j.state = 'queued' AND j.run_after <= now()),
         coalesce(extract(epoch FROM now() - min(j.run_after)
                  FILTER (WHERE j.state = 'queued' AND j.run_after <= now())
                  )::double precision, 0)
  FROM jobs.jobs j
  WHERE j.state IN ('queued', 'running', 'dead')
  GROUP BY j.kind, j.state, j.priority
$$;

DROP VIEW IF EXISTS monitoring.queue_depth;
CREATE VIEW monitoring.queue_depth WITH (security_invoker = true) AS
SELECT * FROM monitoring.queue_depth_stats();

-- Dead letters by kind: how many wait for `secinf jobs retry`, how many died in the last
-- hour, and the age of the newest (0 when none).
CREATE OR REPLACE FUNCTION monitoring.dead_letter_stats()
RETURNS TABLE (kind text, jobs bigint, last_hour bigint, newest_age_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT j.kind, count(*), count(*) FILTER (WHERE j.finished_at > now() - interval '1 hour'),
         coalesce(extract(epoch FROM now() - max(j.finished_at))::double precision, 0)
  FROM jobs.jobs j
  WHERE j.state = 'dead'
  GROUP BY j.kind
$$;

DROP VIEW IF EXISTS monitoring.dead_letters;
CREATE VIEW monitoring.dead_letters WITH (security_invoker = true) AS
SELECT * FROM monitoring.dead_letter_stats();

-- ======================================================================= cron
-- pg_cron's jobs of this database (sql/910_monitoring_cron.sql); no rows without pg_cron.
-- The pipeline's tick duration is the last_duration_seconds of secinf-pipeline-tick.
DROP VIEW IF EXISTS monitoring.cron_jobs;
CREATE VIEW monitoring.cron_jobs WITH (security_invoker = true) AS
SELECT * FROM monitoring.cron_job_runs();

-- ======================================================================= replication
-- The standbys streaming from this server (sql/915_monitoring_replication.sql): state,
-- bytes and seconds of replay lag; no rows without a replica.
DROP VIEW IF EXISTS monitoring.replication;
CREATE VIEW monitoring.replication WITH (security_invoker = true) AS
SELECT * FROM monitoring.replication_stats();

-- ======================================================================= review
-- Candidates waiting for a decision, per project and status (new, scored, in_review), and
-- the age of the oldest: an index-only scan of candidates_project_status_idx.
CREATE OR REPLACE FUNCTION monitoring.review_backlog_stats()
RETURNS TABLE (project_id uuid, status text, candidates bigint,
               oldest_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.project_id, c.status, count(*),
         extract(epoch FROM now() - min(c.created_at))::double precision
  FROM candidates.candidates c
  WHERE c.status IN ('new', 'scored', 'in_review')
  GROUP BY c.project_id, c.status
$$;

DROP VIEW IF EXISTS monitoring.review_backlog;
CREATE VIEW monitoring.review_backlog WITH (security_invoker = true) AS
SELECT * FROM monitoring.review_backlog_stats();
