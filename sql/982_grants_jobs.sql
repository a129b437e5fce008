-- Grants for the work queue. Workers run as `pipeline` (every project, through RLS);
-- project admins read their own project's jobs, attempts and results.

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA jobs FROM PUBLIC;

GRANT USAGE ON SCHEMA jobs TO pipeline, project_admin;

GRANT SELECT, INSERT, UPDATE ON jobs.jobs, jobs.attempts TO pipeline;
GRANT SELECT, INSERT ON jobs.results TO pipeline;
GRANT SELECT ON jobs.jobs, jobs.attempts, jobs.results TO project_admin;

GRANT EXECUTE ON FUNCTION
  jobs.backoff(interval, bigint),
  jobs.close_attempt(bigint, bigint, text, text),
  jobs.plan_priority(uuid),
  jobs.enqueue(uuid, text, jsonb, bigint, timestamptz, bigint, interval, text),
  jobs.enqueue_many(uuid, text, jsonb[], bigint, bigint, interval),
  jobs.reap_expired(),
  jobs.claim(text, text[], integer, interval, text[]),
  jobs.next_due(text[], text[]),
  jobs.fence(bigint, bigint),
  jobs.heartbeat(bigint, bigint, interval),
  jobs.progress(bigint, bigint, jsonb),
  jobs.complete(bigint, bigint, jsonb),
  jobs.fail(bigint, bigint, text, boolean),
  jobs.release(bigint, bigint, text),
  jobs.note_stale(bigint, bigint, text),
  jobs.retry(bigint),
  jobs.cancel(bigint)
  TO pipeline;
