-- The work queue's functions (tables in migrations/0006_jobs.sql; see docs/queue.md).
--
-- A claim leases a job to one attempt; `attempt` is the fencing token. Every write-back
-- (heartbeat, progress, complete, fail, release, and a handler's own writes through
-- jobs.fence) names (job_id, attempt) and is refused with SQLSTATE JB001 unless that
-- attempt still holds an unexpired lease. jobs.fence locks the job row until the caller's
-- transaction ends, so no reclaim can slip in between the check and the commit.
-- Functions are SECURITY INVOKER: the pipeline role works through its grants and RLS.

-- ======================================================================= helpers
-- The delay before the next try after `p_failures` failures: exponential, capped at one
-- hour, with jitter (a random 50-100% of the step) so that retries do not stampede.
CREATE OR REPLACE FUNCTION jobs.backoff(p_base interval, p_failures bigint) RETURNS interval
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT least(p_base * power(2, least(greatest(p_failures - 1, 0), 20))::double precision,
               interval '1 hour') * (0.5 + random() * 0.5)
$$;

-- The default priority of a project's jobs: its organization's plan's job_priority.
CREATE OR REPLACE FUNCTION jobs.plan_priority(p_project uuid) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((SELECT pl.job_priority
                   FROM core.projects p
                   JOIN core.organizations o ON o.org_id = p.org_id
                   JOIN core.plans pl ON pl.plan_id = o.plan_id
                   WHERE p.project_id = p_project), 0)
$$;

-- Close an attempt with its outcome (and error, if any): the last step of every fenced
-- outcome function. The caller has fenced the attempt already.
CREATE OR REPLACE FUNCTION jobs.close_attempt(p_job bigint, p_attempt bigint, p_outcome text,
                                              p_error text DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE jobs.attempts a
  SET outcome = p_outcome, finished_at = clock_timestamp(), error = coalesce(p_error, a.error)
  WHERE a.job_id = p_job AND a.attempt = p_attempt
$$;

-- ======================================================================= enqueue
-- Queue one job; with a dedupe key, return the live job of that key instead of a second.
CREATE OR REPLACE FUNCTION jobs.enqueue(
  p_project uuid, p_kind text, p_payload jsonb DEFAULT '{}',
  p_priority bigint DEFAULT NULL, p_run_after timestamptz DEFAULT NULL,
  p_max_attempts bigint DEFAULT NULL, p_retry_delay interval DEFAULT NULL,
  p_dedupe_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO jobs.jobs (project_id, kind, payload, priority, run_after, max_attempts,
                         retry_delay, dedupe_key)
  VALUES (p_project, p_kind, coalesce(p_payload, '{}'),
          coalesce(p_priority, jobs.plan_priority(p_project)),
          coalesce(p_run_after, now()), coalesce(p_max_attempts, 5),
          coalesce(p_retry_delay, interval '2 seconds'), p_dedupe_key)
  ON CONFLICT (project_id, kind, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running')
    DO NOTHING
  RETURNING job_id INTO v_id;
  IF v_id IS NULL THEN
    SELECT j.job_id INTO v_id FROM jobs.jobs j
    WHERE j.project_id = p_project AND j.kind = p_kind AND j.dedupe_key = p_dedupe_key
      AND j.state IN ('queued', 'running');
  END IF;
  RETURN v_id;
END
$$;

-- Queue one job per payload in one statement (same kind and options); returns the ids.
CREATE OR REPLACE FUNCTION jobs.enqueue_many(
  p_project uuid, p_kind text, p_payloads jsonb[],
  p_priority bigint DEFAULT NULL, p_max_attempts bigint DEFAULT NULL,
  p_retry_delay interval DEFAULT NULL
) RETURNS SETOF bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO jobs.jobs (project_id, kind, payload, priority, max_attempts, retry_delay)
  SELECT p_project, p_kind, coalesce(x.payload, '{}'),
         coalesce(p_priority, jobs.plan_priority(p_project)),
         coalesce(p_max_attempts, 5), coalesce(p_retry_delay, interval '2 seconds')
  FROM unnest(p_payloads) WITH ORDINALITY AS x(payload, n)
  ORDER BY x.n
  RETURNING job_id
$$;

-- ======================================================================= leases
-- Return the jobs whose lease ran out to the queue (after backoff) or to the dead letters;
-- their attempts are recorded 'expired'. Rows locked by a write-back in flight are skipped.
CREATE OR REPLACE FUNCTION jobs.reap_expired() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_count bigint;
  -- the time once, as a value: a comparison with clock_timestamp() itself (volatile) cannot
  -- use the lease index, so every claim read every running job (secinf bench queue)
  v_now   timestamptz := clock_timestamp();
BEGIN
  WITH expired AS (
    SELECT j.job_id, j.attempt FROM jobs.jobs j
    WHERE j.state = 'running' AND j.lease_until < v_now
    ORDER BY j.lease_until
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
  ), marked AS (
    UPDATE jobs.attempts a
    SET outcome = 'expired', finished_at = clock_timestamp(),
        error = 'lease expired: the worker stopped heartbeating'
    FROM expired e
    WHERE a.job_id = e.job_id AND a.attempt = e.attempt AND a.outcome IS NULL
  )
  UPDATE jobs.jobs j
  SET failures    = j.failures + 1,
      state       = CASE WHEN j.failures + 1 >= j.max_attempts THEN 'dead' ELSE 'queued' END,
      run_after   = CASE WHEN j.failures + 1 >= j.max_attempts THEN j.run_after
                         ELSE clock_timestamp() + jobs.backoff(j.retry_delay, j.failures + 1) END,
      finished_at = CASE WHEN j.failures + 1 >= j.max_attempts THEN clock_timestamp() END,
      last_error  = format('attempt %s: lease expired (worker %s lost)', j.attempt, j.worker),
      lease_until = NULL,
      updated_at  = clock_timestamp()
  FROM expired e
  WHERE j.job_id = e.job_id;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;

-- Lease up to p_limit due jobs (highest priority first) to p_worker: of the kinds p_kinds
-- (NULL: any) except p_exclude. The SKIP LOCKED pick sits in a CTE with its LIMIT, so the
-- planner can never lease more than asked.
CREATE OR REPLACE FUNCTION jobs.claim(
  p_worker text, p_kinds text[] DEFAULT NULL, p_limit integer DEFAULT 1,
  p_lease interval DEFAULT interval '30 seconds', p_exclude text[] DEFAULT NULL
) RETURNS TABLE (job_id bigint, attempt bigint, project_id uuid, kind text, payload jsonb,
                 priority bigint, failures bigint, max_attempts bigint,
                 lease_until timestamptz)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  PERFORM jobs.reap_expired();
  RETURN QUERY
  WITH picked AS (
    SELECT j.job_id FROM jobs.jobs j
    WHERE j.state = 'queued' AND j.run_after <= clock_timestamp()
      AND (p_kinds IS NULL OR j.kind = ANY (p_kinds))
      AND (p_exclude IS NULL OR j.kind <> ALL (p_exclude))
    ORDER BY j.priority DESC, j.run_after, j.job_id
    LIMIT greatest(p_limit, 0)
    FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE jobs.jobs j
    SET state = 'running', attempt = j.attempt + 1, worker = p_worker,
        lease_until = clock_timestamp() + p_lease, updated_at = clock_timestamp()
    FROM picked
    WHERE j.job_id = picked.job_id
    RETURNING j.job_id, j.attempt, j.project_id, j.kind, j.payload, j.priority, j.failures,
              j.max_attempts, j.lease_until
  ), logged AS (
    INSERT INTO jobs.attempts (job_id, attempt, project_id, worker)
    SELECT c.job_id, c.attempt, c.project_id, p_worker FROM claimed c
  )
  SELECT c.job_id, c.attempt, c.project_id, c.kind, c.payload, c.priority, c.failures,
         c.max_attempts, c.lease_until
  FROM claimed c
  ORDER BY c.priority DESC, c.job_id;
END
$$;

-- When the next job of these kinds falls due or a lease runs out (NULL: nothing pending).
CREATE OR REPLACE FUNCTION jobs.next_due(p_kinds text[] DEFAULT NULL,
                                         p_exclude text[] DEFAULT NULL) RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT least(
    (SELECT min(j.run_after) FROM jobs.jobs j
     WHERE j.state = 'queued' AND (p_kinds IS NULL OR j.kind = ANY (p_kinds))
       AND (p_exclude IS NULL OR j.kind <> ALL (p_exclude))),
    (SELECT min(j.lease_until) FROM jobs.jobs j WHERE j.state = 'running'))
$$;

-- ======================================================================= fencing
-- Lock the job row and raise JB001 unless attempt p_attempt holds an unexpired lease.
-- Handlers call it first in each write-back transaction; the lock lasts until commit.
CREATE OR REPLACE FUNCTION jobs.fence(p_job bigint, p_attempt bigint) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_state text;
  v_attempt bigint;
  v_lease timestamptz;
BEGIN
  SELECT j.state, j.attempt, j.lease_until INTO v_state, v_attempt, v_lease
  FROM jobs.jobs j WHERE j.job_id = p_job
  FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'job % does not exist', p_job USING ERRCODE = 'P0002';
  END IF;
  IF v_state <> 'running' OR v_attempt <> p_attempt OR v_lease < clock_timestamp() THEN
    RAISE EXCEPTION 'stale attempt: job % attempt % no longer holds the lease', p_job, p_attempt
      USING ERRCODE = 'JB001',
            DETAIL = format('The job is %s at attempt %s.', v_state, v_attempt),
            HINT = 'Abandon this attempt: the attempt that holds the lease does the work.';
  END IF;
  RETURN v_lease;
END
$$;

-- Extend the lease of a live attempt; returns the new lease end.
CREATE OR REPLACE FUNCTION jobs.heartbeat(p_job bigint, p_attempt bigint,
                                          p_lease interval DEFAULT interval '30 seconds')
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_lease timestamptz;
BEGIN
  PERFORM jobs.fence(p_job, p_attempt);
  UPDATE jobs.jobs j SET lease_until = clock_timestamp() + p_lease, updated_at = clock_timestamp()
  WHERE j.job_id = p_job
  RETURNING j.lease_until INTO v_lease;
  RETURN v_lease;
END
$$;

-- Record a live attempt's progress (a fenced write-back into the job row itself).
CREATE OR REPLACE FUNCTION jobs.progress(p_job bigint, p_attempt bigint, p_progress jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM jobs.fence(p_job, p_attempt);
  UPDATE jobs.jobs j SET progress = p_progress, updated_at = clock_timestamp()
  WHERE j.job_id = p_job;
END
$$;

-- ======================================================================= outcomes
-- Commit the job's one result. True when committed now; false when this very attempt had
-- already committed it (a retried call after a lost reply).
CREATE OR REPLACE FUNCTION jobs.complete(p_job bigint, p_attempt bigint,
                                         p_result jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF EXISTS (SELECT FROM jobs.results r WHERE r.job_id = p_job AND r.attempt = p_attempt) THEN
    RETURN false;
  END IF;
  PERFORM jobs.fence(p_job, p_attempt);
  INSERT INTO jobs.results (job_id, project_id, attempt, result)
  SELECT j.job_id, j.project_id, p_attempt, coalesce(p_result, '{}')
  FROM jobs.jobs j WHERE j.job_id = p_job;
  UPDATE jobs.jobs j
  SET state = 'succeeded', lease_until = NULL, finished_at = clock_timestamp(),
      updated_at = clock_timestamp()
  WHERE j.job_id = p_job;
  PERFORM jobs.close_attempt(p_job, p_attempt, 'succeeded');
  RETURN true;
END
$$;

-- Record a failed attempt: retry after backoff, or dead-letter it when permanent or out of
-- attempts. Returns the job's new state ('queued' or 'dead').
CREATE OR REPLACE FUNCTION jobs.fail(p_job bigint, p_attempt bigint, p_error text,
                                     p_permanent boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_state text;
  v_dead  boolean;
BEGIN
  PERFORM jobs.fence(p_job, p_attempt);
  SELECT p_permanent OR j.failures + 1 >= j.max_attempts INTO v_dead
  FROM jobs.jobs j WHERE j.job_id = p_job;
  UPDATE jobs.jobs j
  SET failures    = j.failures + 1,
      state       = CASE WHEN v_dead THEN 'dead' ELSE 'queued' END,
      run_after   = CASE WHEN v_dead THEN j.run_after
                         ELSE clock_timestamp() + jobs.backoff(j.retry_delay, j.failures + 1) END,
      finished_at = CASE WHEN v_dead THEN clock_timestamp() END,
      last_error  = p_error,
      lease_until = NULL,
      updated_at  = clock_timestamp()
  WHERE j.job_id = p_job
  RETURNING j.state INTO v_state;
  PERFORM jobs.close_attempt(p_job, p_attempt, 'failed', p_error);
  RETURN v_state;
END
$$;

-- Hand a live attempt's job back to the queue at once (graceful shutdown); not a failure.
CREATE OR REPLACE FUNCTION jobs.release(p_job bigint, p_attempt bigint,
                                        p_reason text DEFAULT 'released by the worker')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM jobs.fence(p_job, p_attempt);
  UPDATE jobs.jobs j
  SET state = 'queued', run_after = clock_timestamp(), lease_until = NULL,
      updated_at = clock_timestamp()
  WHERE j.job_id = p_job;
  PERFORM jobs.close_attempt(p_job, p_attempt, 'released', p_reason);
END
$$;

-- Note that a stale attempt tried to write back and was refused (the refusal itself rolled
-- back with its transaction, so the worker records it here, apart).
CREATE OR REPLACE FUNCTION jobs.note_stale(p_job bigint, p_attempt bigint, p_what text)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE jobs.attempts a
  SET outcome = 'stale_refused', finished_at = coalesce(a.finished_at, clock_timestamp()),
      error = concat_ws('; ', a.error, 'refused: ' || p_what)
  WHERE a.job_id = p_job AND a.attempt = p_attempt
    AND (a.outcome IS NULL OR a.outcome = 'expired')
$$;

-- ======================================================================= operators
-- Put a dead or cancelled job back in the queue with a fresh set of attempts.
CREATE OR REPLACE FUNCTION jobs.retry(p_job bigint) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_state text;
BEGIN
  SELECT j.state INTO v_state FROM jobs.jobs j WHERE j.job_id = p_job FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'job % does not exist', p_job USING ERRCODE = 'P0002',
      HINT = 'List jobs with `secinf jobs list`.';
  END IF;
  IF v_state NOT IN ('dead', 'cancelled') THEN
    RAISE EXCEPTION 'job % is %: only dead or cancelled jobs can be retried', p_job, v_state
      USING ERRCODE = '55000';
  END IF;
  UPDATE jobs.jobs j
  SET state = 'queued', failures = 0, run_after = clock_timestamp(), finished_at = NULL,
      updated_at = clock_timestamp()
  WHERE j.job_id = p_job;
  RETURN 'queued';
END
$$;

-- Cancel a queued or running job; a running attempt is released and its write-backs refused.
CREATE OR REPLACE FUNCTION jobs.cancel(p_job bigint) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_state text;
  v_attempt bigint;
BEGIN
  SELECT j.state, j.attempt INTO v_state, v_attempt FROM jobs.jobs j
  WHERE j.job_id = p_job FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'job % does not exist', p_job USING ERRCODE = 'P0002',
      HINT = 'List jobs with `secinf jobs list`.';
  END IF;
  IF v_state NOT IN ('queued', 'running') THEN
    RAISE EXCEPTION 'job % is %: only queued or running jobs can be cancelled', p_job, v_state
      USING ERRCODE = '55000';
  END IF;
  IF v_state = 'running' THEN
    UPDATE jobs.attempts a
    SET outcome = 'released', finished_at = clock_timestamp(), error = 'cancelled'
    WHERE a.job_id = p_job AND a.attempt = v_attempt AND a.outcome IS NULL;
  END IF;
  UPDATE jobs.jobs j
  SET state = 'cancelled', lease_until = NULL, finished_at = clock_timestamp(),
      last_error = concat_ws('; ', j.last_error, 'cancelled by ' || session_user),
      updated_at = clock_timestamp()
  WHERE j.job_id = p_job;
  RETURN 'cancelled';
END
$$;

-- ======================================================================= wake-ups
-- Tell listening workers that a job of a kind is due: {"type": "job", "kind": …}. The
-- channel's name is secret (auth.channel: anyone may LISTEN on a name they know) and the
-- payload names no project and no job, so a listener learns only that some job is due.
-- SECURITY DEFINER: the inserting role (an API role's job) need not read the channel.
CREATE OR REPLACE FUNCTION jobs.notify_queued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_notify(auth.channel('jobs'),
                    json_build_object('type', 'job', 'kind', NEW.kind)::text);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS jobs_notify_queued ON jobs.jobs;
CREATE TRIGGER jobs_notify_queued
  AFTER INSERT OR UPDATE OF state ON jobs.jobs
  FOR EACH ROW
  WHEN (NEW.state = 'queued' AND NEW.run_after <= now())
  EXECUTE FUNCTION jobs.notify_queued();
