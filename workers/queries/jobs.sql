-- Work-queue queries (workers/queue/client.py and `secinf jobs`). Every state change goes
-- through a function of sql/600_jobs.sql, so fencing is enforced in one place.

-- name: enqueue :one
-- Queue one job (or find its duplicate by dedupe key); its id.
SELECT jobs.enqueue(%(project_id)s, %(kind)s, %(payload)s, %(priority)s, %(run_after)s,
                    %(max_attempts)s, %(retry_delay)s, %(dedupe_key)s) AS job_id;

-- name: enqueue_many :many
-- Queue one job per payload; their ids.
SELECT job_id FROM jobs.enqueue_many(%(project_id)s, %(kind)s, %(payloads)s::jsonb[],
                                     %(priority)s, %(max_attempts)s, %(retry_delay)s) AS job_id;

-- name: claim :many
-- waited_s: since the job fell due (its run_after, which a claim leaves as it was), for the
-- worker's queue-wait histogram (workers/metrics.py).
SELECT c.job_id, c.attempt, c.project_id, c.kind, c.payload, c.priority, c.failures,
       c.max_attempts, c.lease_until,
       extract(epoch FROM clock_timestamp() - (SELECT j.run_after FROM jobs.jobs j
                                               WHERE j.job_id = c.job_id))::float8 AS waited_s
FROM jobs.claim(%(worker)s, %(kinds)s, %(limit)s, %(lease)s, %(exclude)s) c;

-- name: next_due :one
-- How long until the next job of these kinds is due.
SELECT jobs.next_due(%(kinds)s, %(exclude)s) - clock_timestamp() AS wait;

-- name: fence :one
-- Check the attempt still holds the job's lease; the lease's end.
SELECT jobs.fence(%(job_id)s, %(attempt)s) AS lease_until;

-- name: heartbeat :one
-- Extend the attempt's lease; the lease's new end.
SELECT jobs.heartbeat(%(job_id)s, %(attempt)s, %(lease)s) AS lease_until;

-- name: progress :one
-- Record the attempt's progress.
SELECT jobs.progress(%(job_id)s, %(attempt)s, %(progress)s);

-- name: complete :one
-- Complete the job with its result, if the attempt still holds it.
SELECT jobs.complete(%(job_id)s, %(attempt)s, %(result)s) AS committed;

-- name: fail :one
-- Fail the attempt (retried unless permanent or out of attempts); the job's state.
SELECT jobs.fail(%(job_id)s, %(attempt)s, %(error)s, %(permanent)s) AS state;

-- name: release :one
-- Hand a live attempt's job back to the queue at once (graceful shutdown); not a failure.
SELECT jobs.release(%(job_id)s, %(attempt)s, %(reason)s);

-- name: note_stale :one
-- Note that a stale attempt tried to write back and was refused.
SELECT jobs.note_stale(%(job_id)s, %(attempt)s, %(what)s);

-- name: retry :one
-- Put a dead or cancelled job back in the queue with a fresh set of attempts; its state.
SELECT jobs.retry(%(job_id)s) AS state;

-- name: cancel :one
-- Cancel a queued or running job; its state.
SELECT jobs.cancel(%(job_id)s) AS state;

-- name: list_jobs :many
-- priority: the job's own, which jobs.claim orders by (its plan's job_priority when it was
-- queued, unless the enqueuer gave one); plan_priority: the plan's now.
SELECT j.job_id, o.slug || '/' || p.slug AS project, o.plan_id AS plan, j.kind, j.state,
       j.priority, pl.job_priority AS plan_priority, j.attempt, j.failures, j.max_attempts,
       j.run_after, j.worker, j.last_error, j.created_at, j.finished_at
FROM jobs.jobs j
JOIN core.projects p ON p.project_id = j.project_id
JOIN core.organizations o ON o.org_id = p.org_id
JOIN core.plans pl ON pl.plan_id = o.plan_id
WHERE (%(state)s::text IS NULL OR j.state = %(state)s)
  AND (%(kind)s::text IS NULL OR j.kind = %(kind)s)
  AND (%(project_id)s::uuid IS NULL OR j.project_id = %(project_id)s)
ORDER BY j.job_id DESC
LIMIT %(limit)s;

-- name: show_job :one
-- One job with its project label and result.
SELECT j.*, o.slug || '/' || p.slug AS project, r.result, r.attempt AS result_attempt
FROM jobs.jobs j
JOIN core.projects p ON p.project_id = j.project_id
JOIN core.organizations o ON o.org_id = p.org_id
LEFT JOIN jobs.results r ON r.job_id = j.job_id
WHERE j.job_id = %(job_id)s;

-- name: job_attempts :many
-- A job's attempts in order.
SELECT attempt, worker, claimed_at, finished_at, outcome, error
FROM jobs.attempts WHERE job_id = %(job_id)s ORDER BY attempt;

-- name: queue_by_plan :many
-- The queue per plan, highest priority (claimed first) first (sql/610_jobs_plans.sql).
SELECT plan_id AS plan, priority, queued, due, running, projects, oldest_due_at,
       oldest_wait_s
FROM jobs.queue_by_plan
ORDER BY priority DESC, plan_id;

-- name: replay :many
-- Dead letters (or cancelled jobs) re-queued in bulk through jobs.retry, oldest first, with a
-- fresh set of attempts. Jobs another session holds (an operator's retry or cancel) are
-- skipped, not waited for; the state is checked again after the lock.
WITH picked AS (
  SELECT j.job_id, j.kind, j.finished_at, j.last_error
  FROM jobs.jobs j
  WHERE j.state = %(state)s
    AND (%(kind)s::text IS NULL OR j.kind = %(kind)s)
    AND (%(project_id)s::uuid IS NULL OR j.project_id = %(project_id)s)
    AND (%(since)s::timestamptz IS NULL OR j.finished_at >= %(since)s)
  ORDER BY j.job_id
  LIMIT %(limit)s
  FOR UPDATE SKIP LOCKED
)
SELECT p.job_id, p.kind, p.finished_at, p.last_error, jobs.retry(p.job_id) AS state
FROM picked p
ORDER BY p.job_id;
