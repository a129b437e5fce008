-- 0006 · jobs: the work queue (leases, attempts, fencing, results, dead letters).
-- depends: 0003_ingest
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA jobs;

-- ======================================================================= jobs
-- One unit of work. `attempt` is the fencing token: every claim increments it, and every
-- write-back names (job_id, attempt). `failures` counts failed and expired attempts (a
-- graceful release is not a failure) and drives backoff and dead-lettering.
CREATE TABLE jobs.jobs (
  job_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id   uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
  payload      jsonb NOT NULL DEFAULT '{}',
  priority     bigint NOT NULL DEFAULT 0,           -- higher runs first
  state        text NOT NULL DEFAULT 'queued'
               CHECK (state IN ('queued',           -- waiting for run_after
                                'running',          -- leased by `worker` until lease_until
                                'succeeded',        -- one row in jobs.results
                                'dead',             -- dead letter: last_error says why
                                'cancelled')),      -- by an operator
  attempt      bigint NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  failures     bigint NOT NULL DEFAULT 0 CHECK (failures >= 0),
  max_attempts bigint NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
  retry_delay  interval NOT NULL DEFAULT '2 seconds' CHECK (retry_delay >= interval '0'),
  run_after    timestamptz NOT NULL DEFAULT now(),
  lease_until  timestamptz,
  worker       text,
  progress     jsonb,                               -- last fenced progress write-back
  last_error   text,
  dedupe_key   text,                                -- at most one live job per key
  created_by   text NOT NULL DEFAULT session_user,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  CHECK ((state = 'running') = (lease_until IS NOT NULL))
);
CREATE INDEX jobs_ready_idx ON jobs.jobs (priority DESC, run_after, job_id) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs.jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_project_idx ON jobs.jobs (project_id, created_at);
CREATE UNIQUE INDEX jobs_live_dedupe_key ON jobs.jobs (project_id, kind, dedupe_key)
  WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');

-- ======================================================================= attempts
-- Every claim, and how it ended. NULL outcome: still running.
CREATE TABLE jobs.attempts (
  job_id      bigint NOT NULL REFERENCES jobs.jobs ON DELETE CASCADE,
  attempt     bigint NOT NULL,
  project_id  uuid NOT NULL,
  worker      text NOT NULL,
  claimed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  outcome     text CHECK (outcome IN ('succeeded',       -- completed with the result
                                      'failed',          -- handler error (retried or dead)
                                      'expired',         -- lease ran out (worker lost)
                                      'released',        -- handed back (shutdown, cancel)
                                      'stale_refused')), -- expired, then refused a write-back
  error       text,
  PRIMARY KEY (job_id, attempt)
);
CREATE INDEX attempts_project_idx ON jobs.attempts (project_id, claimed_at);

-- ======================================================================= results
-- At most one committed result per job: the primary key says so, not the worker's luck.
CREATE TABLE jobs.results (
  job_id     bigint PRIMARY KEY REFERENCES jobs.jobs ON DELETE CASCADE,
  project_id uuid NOT NULL,
  attempt    bigint NOT NULL,
  result     jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX results_project_idx ON jobs.results (project_id);

RESET ROLE;
