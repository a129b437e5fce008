-- secinf: run-as superuser
-- The pg_cron side of the monitoring views (docs/operations.md, "Metrics and alerts"):
-- per job, its recent runs and failures. pg_cron's tables show each role only the runs of
-- jobs it owns (a policy username = current_user), and every secinf job runs as
-- `pipeline`, so only a superuser's function sees them all. It returns job names, counts
-- and timings, never a command or a run's message (those may quote data). A database
-- without pg_cron (a test copy, any database but cron.database_name) returns no rows.

-- ======================================================================= cron runs
-- Per cron job of this database: active, runs and failures of the last hour, the latest
-- run's status, age and duration, runs still going and the oldest of them. Reads only the
-- newest 5000 runs (a backward scan of job_run_details' primary key, runid), so its cost
-- does not grow with the history pg_cron keeps (83 runs a minute would fill the hour).
CREATE OR REPLACE FUNCTION monitoring.cron_job_runs()
RETURNS TABLE (jobname text, active boolean, runs_last_hour bigint, failed_last_hour bigint,
               last_status text, last_start_age_seconds double precision,
               last_duration_seconds double precision, running bigint,
               oldest_running_seconds double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF to_regclass('cron.job_run_details') IS NULL OR to_regclass('cron.job') IS NULL THEN
    RETURN;  -- pg_cron is not in this database
  END IF;
  RETURN QUERY
  WITH recent AS (
    SELECT d.jobid, d.status, d.start_time, d.end_time
    FROM cron.job_run_details d
    ORDER BY d.runid DESC
    LIMIT 5000
  ), last_run AS (
    SELECT DISTINCT ON (r.jobid) r.jobid, r.status, r.start_time, r.end_time
    FROM recent r WHERE r.start_time IS NOT NULL
    ORDER BY r.jobid, r.start_time DESC
  )
  SELECT j.jobname::text, j.active,
         count(r.jobid) FILTER (WHERE r.start_time > now() - interval '1 hour'),
         count(r.jobid) FILTER (WHERE r.start_time > now() - interval '1 hour'
                                  AND r.status = 'failed'),
         max(l.status),
         extract(epoch FROM now() - max(l.start_time))::double precision,
         extract(epoch FROM max(l.end_time) - max(l.start_time))::double precision,
         count(r.jobid) FILTER (WHERE r.status IN ('starting', 'running')),
         extract(epoch FROM now() - min(r.start_time)
                 FILTER (WHERE r.status IN ('starting', 'running')))::double precision
  FROM cron.job j
  LEFT JOIN recent r ON r.jobid = j.jobid
  LEFT JOIN last_run l ON l.jobid = j.jobid
  WHERE j.database = current_database()
  GROUP BY j.jobid, j.jobname, j.active;
END
$$;
REVOKE EXECUTE ON FUNCTION monitoring.cron_job_runs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION monitoring.cron_job_runs() TO secinf_owner;
