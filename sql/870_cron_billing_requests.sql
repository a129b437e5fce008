-- secinf: run-as superuser
-- pg_cron schedule of the API request flush (billing.request_flush_job,
-- sql/251_billing_rate_limits_api.sql): every minute the shared-memory request counters of
-- this database become billing.request_counts and billing.usage (api_requests), and the
-- segments of dropped databases are removed. A repeated or overlapping run adds 0. Like
-- 800_cron.sql: only where pg_cron lives (cron.database_name), a named job updated in place,
-- run as role `pipeline` in a background worker. Counts not flushed when the machine
-- reboots (/dev/shm is memory) are lost: at most a minute of requests.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    PERFORM cron.schedule_in_database('secinf-billing-request-flush', '* * * * *',
                                      'SELECT billing.request_flush_job()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
