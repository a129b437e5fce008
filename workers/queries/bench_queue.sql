-- Queries of `secinf bench queue` (workers/bench/queue_bench.py). They run in the bench's
-- scratch database only: the admin ones over the socket as the superuser, the workers'
-- through workers/queue/client.py as `pipeline` over loopback TCP.

-- ---------------------------------------------------------------- setup (admin)
-- name: create_login :exec
-- The workers' login for this run: a member of `pipeline` with a password, because the
-- cluster trusts its socket only and asks TCP logins for scram-sha-256. Dropped afterwards.
CREATE ROLE {role} LOGIN PASSWORD {password} IN ROLE pipeline;

-- name: drop_login :exec
-- Drop the run's login (every run, even a failed one).
DROP ROLE IF EXISTS {role};

-- name: empty_queue :exec
-- Between rounds: every round starts from an empty queue and clean indexes (scoring.queued
-- references jobs.jobs; it is empty here).
TRUNCATE jobs.results, jobs.attempts, scoring.queued, jobs.jobs;

-- name: vacuum_jobs :exec
-- Clean the queue table and its statistics before a round is timed.
VACUUM (ANALYZE) jobs.jobs;

-- ---------------------------------------------------------------- during a round (admin)
-- name: waits :many
-- What the round's sessions wait on right now (NULL wait_event: running on a CPU).
SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, count(*) AS sessions
FROM pg_stat_activity
WHERE datname = current_database() AND usename = %(login)s AND state = 'active'
GROUP BY 1;

-- ---------------------------------------------------------------- checks (admin)
-- name: verify :one
-- The round's exactly-once figures from the tables themselves.
SELECT
  (SELECT count(*) FROM jobs.jobs) AS jobs,
  (SELECT count(*) FROM jobs.jobs WHERE state = 'succeeded') AS succeeded,
  (SELECT count(*) FROM jobs.results) AS results,
  (SELECT count(*) FROM jobs.results r JOIN jobs.jobs j ON j.job_id = r.job_id
   WHERE r.attempt = j.attempt) AS results_of_last_attempt,
  (SELECT count(*) FROM jobs.attempts) AS attempts,
  (SELECT count(*) FROM jobs.attempts WHERE outcome = 'succeeded') AS attempts_succeeded,
  (SELECT count(*) FROM jobs.attempts WHERE outcome IS NULL) AS attempts_open;

-- name: attempts_per_job :many
-- How many jobs had 1, 2, … attempts.
SELECT n AS attempts, count(*) AS jobs
FROM (SELECT job_id, count(*) AS n FROM jobs.attempts GROUP BY job_id) per_job
GROUP BY n ORDER BY n;

-- name: abandoned :many
-- The jobs a dying worker abandoned: their attempts' outcomes in order, the attempt whose
-- result was committed.
SELECT j.job_id, j.attempt, r.attempt AS result_attempt,
       array_agg(a.outcome ORDER BY a.attempt) AS outcomes
FROM jobs.jobs j
LEFT JOIN jobs.results r ON r.job_id = j.job_id
JOIN jobs.attempts a ON a.job_id = j.job_id
WHERE j.job_id = ANY (%(ids)s)
GROUP BY j.job_id, j.attempt, r.attempt;
