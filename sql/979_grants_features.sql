-- Grants for the features and pipeline schemas. RLS (900_policies.sql) scopes rows by project.
-- The pipeline role runs ticks (pipeline.tick is SECURITY DEFINER: it reads ingest and writes
-- features as the owner); analysts read features with their project's rows only.

-- ---------------------------------------------------------------- functions: none by default
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA features, pipeline FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE pipeline.run_scheduled(double precision) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE pipeline.run_lane(boolean, double precision, timestamptz, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE pipeline.run_source(bigint, boolean, timestamptz, timestamptz, jsonb) FROM PUBLIC;

-- ---------------------------------------------------------------- schemas
GRANT USAGE ON SCHEMA features TO pipeline, analyst;
GRANT USAGE ON SCHEMA pipeline TO pipeline;

-- ---------------------------------------------------------------- tables
GRANT SELECT ON ALL TABLES IN SCHEMA features TO pipeline;
GRANT SELECT ON features.zone_presence, features.change_points, features.watermarks TO analyst;
-- Hypertables: column privileges only for RLS-bound roles (see 020_hypertable_access.sql).
SELECT auth.grant_hypertable('features.kinematics', 'SELECT', ARRAY['analyst']);
-- features.relations is a view (pairs computed when read, security_invoker): its readers
-- need the functions it calls; the analysts' loop (971_grants_analysts.sql) grants SELECT.
GRANT SELECT ON features.relations TO pipeline, analyst;
GRANT SELECT ON pipeline.settings, pipeline.stages, pipeline.runs, pipeline.status TO pipeline;
-- Failing sources (0019): written only by the SECURITY DEFINER tick functions; lanes read
-- it to leave a source alone until its retry time. RLS (900_policies.sql) scopes it too.
GRANT SELECT ON pipeline.source_failures TO pipeline;
GRANT INSERT, UPDATE, DELETE ON pipeline.settings TO pipeline;

-- ---------------------------------------------------------------- functions
GRANT EXECUTE ON FUNCTION pipeline.tick(boolean), pipeline.watermark(bigint),
  pipeline.setting(uuid, text), pipeline.setting_float(uuid, text), pipeline.setting_int(uuid, text),
  pipeline.source_setting_float(bigint, text)
  TO pipeline;
GRANT EXECUTE ON PROCEDURE pipeline.run_scheduled(double precision) TO pipeline;
-- Parallel lanes (workers/pipeline/lanes.py) work a range step by step.
GRANT EXECUTE ON FUNCTION pipeline.tick_plan(bigint, boolean), pipeline.prepare_chunks(jsonb),
  pipeline.tick_stage(jsonb, text, boolean), pipeline.tick_finish(jsonb, jsonb),
  pipeline.claim_source(bigint), pipeline.tick_failed(bigint, text, text, text),
  pipeline.source_lock_key(bigint), pipeline.is_source_error(text),
  pipeline.retry_delay(bigint), pipeline.source_recovered(bigint) TO pipeline;
-- Retry a failing source now (secinf pipeline retry; a pipeline_run job for its source).
GRANT EXECUTE ON FUNCTION pipeline.retry_source(bigint) TO pipeline;
GRANT EXECUTE ON PROCEDURE pipeline.run_lane(boolean, double precision, timestamptz, jsonb) TO pipeline;
-- Per-source jobs (sql/620_pipeline_schedule.sql): pg_cron's call (as pipeline) queues them
-- in queue mode, a worker (as pipeline) runs each with run_source.
GRANT EXECUTE ON PROCEDURE pipeline.run_source(bigint, boolean, timestamptz, timestamptz, jsonb)
  TO pipeline;
GRANT EXECUTE ON FUNCTION pipeline.scheduled_mode(), pipeline.schedule_sources() TO pipeline;
GRANT EXECUTE ON FUNCTION features.pair_rows(bigint, timestamptz, timestamptz),
  features.pair_rows_of(bigint, timestamptz, timestamptz, text[], double precision[]),
  features.pair_in_box(double precision[], double precision, double precision,
                       double precision, double precision),
  features.pair_track_rows(bigint, text, text, timestamptz, timestamptz),
  features.relation_radius(bigint), features.wrap_deg(double precision) TO pipeline, analyst;
