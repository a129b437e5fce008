-- Grants for the API's events, ingest, jobs and sources endpoints (sql/201_api_events.sql,
-- 210-215_api_ingest_*.sql, 220_api_jobs.sql). Capability only; which project's rows a role sees is
-- RLS (900_policies.sql). Views are security_invoker: a role reading one needs SELECT on
-- what it reads. Writes go through SECURITY DEFINER functions that check the caller
-- (auth.target_project), so no API role writes a table directly.

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA events FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
  api.query_events(text[], timestamptz, timestamptz, bigint[], text[], double precision,
                   text[], text, integer),
  api.ingest_batch(jsonb),
  api.create_job(text, jsonb),
  api.job(bigint),
  auth.target_project(uuid, text[]),
  auth.target_project(jsonb, text[])
  FROM PUBLIC;

-- ---------------------------------------------------------------- events (readers)
GRANT USAGE ON SCHEMA events TO customer, reviewer, analyst, project_admin;
GRANT SELECT ON events.events TO customer, reviewer, analyst, project_admin;
GRANT SELECT ON api.events TO customer, reviewer, analyst, project_admin;
GRANT EXECUTE ON FUNCTION
  events.encode_cursor(timestamptz, bigint),
  events.decode_cursor(text),
  events.page_cap(),
  api.query_events(text[], timestamptz, timestamptz, bigint[], text[], double precision,
                   text[], text, integer)
  TO customer, reviewer, analyst, project_admin;

-- ---------------------------------------------------------------- sources (readers)
GRANT EXECUTE ON FUNCTION ingest.source_status(bigint)
  TO customer, reviewer, analyst, project_admin;
GRANT SELECT ON api.sources TO customer, reviewer, analyst, project_admin;

-- ---------------------------------------------------------------- ingest (writers)
GRANT EXECUTE ON FUNCTION api.ingest_batch(jsonb) TO customer, project_admin;

-- ---------------------------------------------------------------- jobs
-- Customers and project admins create and poll jobs; the view reads the queue's tables as
-- them (RLS: their projects' rows), never the worker's lease or dedupe internals.
GRANT USAGE ON SCHEMA jobs TO customer;
GRANT SELECT (job_id, project_id, kind, payload, state, attempt, failures, max_attempts,
              run_after, progress, last_error, created_by, created_at, updated_at,
              finished_at, priority)
  ON jobs.jobs TO customer;
GRANT SELECT ON jobs.results TO customer;
GRANT SELECT ON api.jobs TO customer, project_admin;
GRANT EXECUTE ON FUNCTION api.create_job(text, jsonb), api.job(bigint)
  TO customer, project_admin;

-- ---------------------------------------------------------------- jobs (the worker)
-- The rules_backfill job runs the compiled rules as `pipeline` (workers/rules/jobs.py →
-- workers.rules.store.backfill), outside pipeline.tick's owner rights; the generated SQL
-- calls these helpers (workers/rules/compile.py, temporal.py).
GRANT EXECUTE ON FUNCTION features.wrap_deg(double precision),
  features.sampling_period_s(bigint, timestamptz) TO pipeline;
