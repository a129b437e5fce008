-- Priority by plan, visible (issue 18). A job's priority is its organization's plan's
-- job_priority when it is queued (jobs.plan_priority, sql/600_jobs.sql) and jobs.claim
-- leases the highest priority first, FIFO within one (run_after, then job_id); this view
-- shows the queue per plan for operators (`secinf jobs list --summary`) and metrics.

-- ======================================================================= queue per plan
-- Queued, due and running jobs per plan, with the wait of each plan's oldest due job.
-- priority: the plan's job_priority now (a job keeps the one it was queued with).
CREATE OR REPLACE VIEW jobs.queue_by_plan WITH (security_invoker = true) AS
SELECT pl.plan_id, pl.job_priority AS priority,
       count(j.job_id) FILTER (WHERE j.state = 'queued') AS queued,
       count(j.job_id) FILTER (WHERE j.state = 'queued' AND j.run_after <= now()) AS due,
       count(j.job_id) FILTER (WHERE j.state = 'running') AS running,
       count(DISTINCT j.project_id) FILTER (WHERE j.state IN ('queued', 'running'))
         AS projects,
       min(j.run_after) FILTER (WHERE j.state = 'queued' AND j.run_after <= now())
         AS oldest_due_at,
       extract(epoch FROM now() - min(j.run_after)
                 FILTER (WHERE j.state = 'queued' AND j.run_after <= now()))::float8
         AS oldest_wait_s
FROM core.plans pl
LEFT JOIN core.organizations o ON o.plan_id = pl.plan_id
LEFT JOIN core.projects p ON p.org_id = o.org_id
LEFT JOIN jobs.jobs j ON j.project_id = p.project_id AND j.state IN ('queued', 'running')
GROUP BY pl.plan_id, pl.job_priority;
COMMENT ON VIEW jobs.queue_by_plan IS
  'The work queue per plan: queued, due (run_after passed) and running jobs, projects with '
  'live jobs, and the oldest due job''s wait; claims take the highest priority first.';
