-- secinf: run-as superuser
-- pg_cron schedule of usage reports to Stripe (sql/260_billing_stripe.sql; see 800_cron.sql
-- for how pg_cron is set up: only in the database named by cron.database_name, so nothing
-- here in test copies). At minute 15 of every hour (billing.queue_usage_reports' grace of
-- 15 minutes after an hour ends): the completed hours' usage of projects whose
-- organization has a Stripe customer goes into billing.usage_reports, and one report_usage
-- job per project with pending reports is queued; a worker sends them (docs/billing.md,
-- "Stripe"). Runs as `pipeline`; failures show in cron.job_run_details.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    PERFORM cron.schedule_in_database('secinf-billing-usage-reports', '15 * * * *',
                                      'SELECT billing.queue_usage_reports()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
