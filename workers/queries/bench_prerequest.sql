-- Queries of `secinf bench prerequest` (workers/bench/prerequest_bench.py). The admin ones
-- run in the bench's scratch database only; the request ones on an `authenticator`
-- connection, inside one PostgREST-style transaction each.

-- ---------------------------------------------------------------- setup (admin)
-- name: bench_plan :exec
-- A plan whose buckets never empty and whose daily quota is never reached, so every request
-- pays for the whole path (two buckets, the quota check, the count) and none is refused.
INSERT INTO core.plans (plan_id, description) VALUES ('bench', 'pre_request benchmark')
ON CONFLICT (plan_id) DO NOTHING;
INSERT INTO billing.rate_limits (plan_id, scope, per_second, burst)
VALUES ('bench', 'key', 1e9, 1000000000), ('bench', 'project', 1e9, 1000000000)
ON CONFLICT (plan_id, scope) DO NOTHING;
INSERT INTO billing.plan_quotas (plan_id, metric, quota)
VALUES ('bench', 'api_requests', 1000000000000)
ON CONFLICT (plan_id, metric) DO NOTHING;

-- name: use_bench_plan :exec
-- Put the project's organization on the benchmark plan.
UPDATE core.organizations o SET plan_id = 'bench'
FROM core.projects p WHERE p.org_id = o.org_id AND p.project_id = %(project_id)s;

-- name: baseline_function :exec
-- api.pre_request without metering and rate limits: its liveness checks only (the body it
-- had before issue 18), in the scratch database.
CREATE FUNCTION api.pre_request_baseline() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $f$
DECLARE
  c jsonb := auth.claims();
BEGIN
  IF c ? 'key_id' AND NOT core.key_is_live((c ->> 'key_id')::uuid) THEN
    RAISE EXCEPTION 'API key revoked or expired' USING ERRCODE = 'PT401';
  END IF;
  IF c ? 'account' AND NOT core.account_is_live(c ->> 'sub') THEN
    RAISE EXCEPTION 'account disabled' USING ERRCODE = 'PT401';
  END IF;
  IF c ? 'project_id' AND cardinality(auth.project_ids()) = 0 THEN
    RAISE EXCEPTION 'your access to this project has changed since you signed in'
      USING ERRCODE = 'PT401';
  END IF;
END
$f$;
GRANT EXECUTE ON FUNCTION api.pre_request_baseline() TO customer;

-- name: exchange_key :one
-- The claims an API key grants.
SELECT api.exchange_key(%(api_key)s) AS answer;

-- name: flush :one
-- Flush the buffered request counts into billing.usage.
SELECT billing.flush_request_counts() AS flushed;

-- name: counted :one
-- How many API requests billing counted for the project.
SELECT coalesce(sum(amount), 0)::bigint AS n FROM billing.usage
WHERE project_id = %(project_id)s AND metric = 'api_requests';

-- ---------------------------------------------------------------- one request (authenticator)
-- name: read_only :exec
-- Make the request's transaction read-only, as PostgREST does for GET.
SET TRANSACTION READ ONLY;

-- name: role :exec
-- Switch to the customer role for the rest of the transaction.
SET LOCAL ROLE customer;

-- name: claims :one
-- A GET /projects request's settings, as PostgREST sets them.
SELECT set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/projects', true);

-- name: with_limits :one
-- The real pre-request hook, with metering and rate limits.
SELECT api.pre_request();

-- name: without_limits :one
-- The baseline pre-request hook (liveness checks only).
SELECT api.pre_request_baseline();

-- name: main_query :many
-- GET /projects: the request's own query.
SELECT * FROM api.projects;

-- name: response_headers :one
-- The response headers the hook set (rate-limit headers).
SELECT current_setting('response.headers', true) AS headers;
