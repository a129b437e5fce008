-- secinf: run-as superuser
-- pg_cron schedules of the audit log (sql/050_audit.sql). Like 800_cron.sql: only where
-- pg_cron lives (cron.database_name), named jobs updated in place, run as role `pipeline`.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    -- Every minute: seal the rows whose transactions have all ended into the hash chain.
    PERFORM cron.schedule_in_database('secinf-audit-seal', '* * * * *',
                                      'SELECT audit.seal()',
                                      pg_catalog.current_database(), 'pipeline', true);
    -- Daily: the monthly partitions of the next three months.
    PERFORM cron.schedule_in_database('secinf-audit-partitions', '17 3 * * *',
                                      'SELECT audit.ensure_partitions()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
