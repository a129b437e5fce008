-- Grants for the queue per plan (sql/610_jobs_plans.sql): an operator's view of every
-- tenant's queue, for the workers' role (metrics) only; no API role reads it.

GRANT SELECT ON jobs.queue_by_plan TO pipeline;
