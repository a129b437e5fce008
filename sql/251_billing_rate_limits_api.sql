-- Rate limits and API request metering in the request path (issue 18). See docs/billing.md
-- ("Rate limits").
--
-- api.pre_request (sql/200_api_core.sql) calls billing.admit_request() on every request:
--   * a project's request (claims with project_id): its daily api_requests quota (PT402),
--     then one token from the caller's bucket (the API key's, or the signed-in account's in
--     that project) and one from the project's bucket, sized per plan (billing.rate_limits);
--     an empty bucket answers 429 with Retry-After and X-RateLimit-* headers, an admitted
--     request gets the X-RateLimit-* headers of its tightest bucket and is counted;
--   * an operator's token (project_id, neither key_id nor account: minted with the signing
--     secret) is counted and held to the quota, never rate-limited;
--   * an anonymous request takes from one bucket for all of them (rate_anon_*), and
--     api.exchange_key also from a bucket per key lookup prefix (rate_exchange_*);
--   * other tokens (no project: an operator's) pass.
-- Buckets and counters live in shared memory (sql/250_billing_rate_limits.sql): GETs run in
-- READ ONLY transactions. billing.flush_request_counts (pg_cron, every minute:
-- sql/870_cron_billing_requests.sql) turns the counters into billing.usage.

-- ======================================================================= settings
-- Limits of the callers without a plan (pipeline.settings defaults, project_id NULL).
INSERT INTO pipeline.settings (project_id, key, value) VALUES
  (NULL, 'rate_anon_per_second', '20'),      -- every anonymous request, one bucket
  (NULL, 'rate_anon_burst', '100'),
  (NULL, 'rate_exchange_per_second', '0.5'), -- api.exchange_key per key lookup prefix
  (NULL, 'rate_exchange_burst', '10')
ON CONFLICT (project_id, key) DO NOTHING;

-- ======================================================================= limits
-- What the shared-memory code needs of a project (NULL: of nobody) and the day p_day: its
-- plan's buckets (NULL: none in that scope), its api_requests quota (NULL: unlimited), the
-- day's flushed usage and the part of it flushed from segment p_epoch (the difference is
-- what this segment's counters do not hold), and the limits of anonymous callers.
CREATE OR REPLACE FUNCTION billing.rate_config(
  p_project uuid, p_epoch text, p_day timestamptz,
  OUT key_per_second double precision, OUT key_burst double precision,
  OUT project_per_second double precision, OUT project_burst double precision,
  OUT quota bigint, OUT used bigint, OUT flushed bigint,
  OUT anon_per_second double precision, OUT anon_burst double precision,
  OUT exchange_per_second double precision, OUT exchange_burst double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT k.per_second, k.burst, pr.per_second, pr.burst,
         CASE WHEN p_project IS NOT NULL THEN (billing.quota(p_project, 'api_requests')).quota END,
         (SELECT coalesce(sum(u.amount), 0)::bigint FROM billing.usage u
          WHERE u.project_id = p_project AND u.metric = 'api_requests'
            AND u.hour >= p_day AND u.hour < p_day + interval '1 day'),
         (SELECT coalesce(sum(rc.n), 0)::bigint FROM billing.request_counts rc
          WHERE rc.epoch = p_epoch AND rc.project_id = p_project
            AND rc.hour >= p_day AND rc.hour < p_day + interval '1 day'),
         greatest(coalesce(st.anon_per_second, 20), 0.001), greatest(coalesce(st.anon_burst, 100), 1),
         greatest(coalesce(st.exchange_per_second, 0.5), 0.001),
         greatest(coalesce(st.exchange_burst, 10), 1)
  FROM (  -- (pipeline.setting_float is created after this file)
    SELECT max(v) FILTER (WHERE key = 'rate_anon_per_second') AS anon_per_second,
           max(v) FILTER (WHERE key = 'rate_anon_burst') AS anon_burst,
           max(v) FILTER (WHERE key = 'rate_exchange_per_second') AS exchange_per_second,
           max(v) FILTER (WHERE key = 'rate_exchange_burst') AS exchange_burst
    FROM (SELECT s.key, CASE jsonb_typeof(s.value) WHEN 'number' THEN s.value::float8 END AS v
          FROM pipeline.settings s
          WHERE s.project_id IS NULL AND s.key LIKE 'rate\_%') x) st
  LEFT JOIN core.projects p ON p.project_id = p_project
  LEFT JOIN core.organizations o ON o.org_id = p.org_id
  LEFT JOIN billing.rate_limits k ON k.plan_id = o.plan_id AND k.scope = 'key'
  LEFT JOIN billing.rate_limits pr ON pr.plan_id = o.plan_id AND pr.scope = 'project'
$$;

-- ======================================================================= answers
-- Refuse with HTTP 429 and its headers. PostgREST attaches no response.headers to an error:
-- SQLSTATE PGRST carries the body (MESSAGE) and the status and headers (DETAIL) as JSON.
CREATE OR REPLACE FUNCTION billing.raise_rate_limited(p_scope text, p_limit bigint,
                                                      p_per_second double precision,
                                                      p_reset_s bigint, p_retry_after_s bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who text := CASE p_scope
    WHEN 'key' THEN 'this API key'
    WHEN 'account' THEN 'your account in this project'
    WHEN 'project' THEN 'this project (all its keys and accounts together)'
    WHEN 'anon' THEN 'anonymous requests (sign-ins and key exchanges of everyone)'
    WHEN 'exchange' THEN 'exchanges of this API key'
    ELSE p_scope END;
BEGIN
  RAISE SQLSTATE 'PGRST' USING
    MESSAGE = jsonb_build_object(
      'code', 'PT429',
      'message', format('too many requests: %s may make %s requests at once, refilled at %s '
                        'per second; retry in %s s', v_who, p_limit,
                        round(p_per_second::numeric, 3)::float8, p_retry_after_s),
      'details', jsonb_build_object('scope', p_scope, 'limit', p_limit,
                                    'per_second', p_per_second,
                                    'retry_after_s', p_retry_after_s)::text,
      'hint', 'Wait Retry-After seconds before the next request and spread requests over '
              'time (X-RateLimit-Remaining says what is left); limits per plan are in '
              'billing.rate_limits: upgrade the plan for more.')::text,
    DETAIL = jsonb_build_object(
      'status', 429, 'status_text', 'Too Many Requests',
      'headers', jsonb_build_object('Retry-After', p_retry_after_s::text,
                                    'X-RateLimit-Limit', p_limit::text,
                                    'X-RateLimit-Remaining', '0',
                                    'X-RateLimit-Reset', p_reset_s::text))::text;
END
$$;

-- The daily api_requests quota is spent: PT402 (HTTP 402), worded as billing.check_quota.
CREATE OR REPLACE FUNCTION billing.raise_request_quota(p_project uuid, p_used bigint,
                                                       p_quota bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_bounds record := billing.period_bounds('day', now());
  v_source text := (billing.quota(p_project, 'api_requests')).source;
BEGIN
  RAISE EXCEPTION 'quota exceeded: api_requests would be % of this project''s % of % '
                  'requests per day, which resets at % UTC',
                  p_used + 1, CASE v_source WHEN 'override' THEN 'quota' ELSE 'plan''s quota' END,
                  p_quota, to_char(v_bounds.resets_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
    USING ERRCODE = 'PT402',
          DETAIL = jsonb_build_object('metric', 'api_requests', 'used', p_used, 'adding', 1,
                                      'quota', p_quota, 'unit', 'requests', 'period', 'day',
                                      'resets_at', v_bounds.resets_at)::text,
          HINT = format('Used so far this day: %s requests; this request was not run. Wait '
                        'for the reset, upgrade the plan, or ask an operator: secinf quotas '
                        'set -p ORG/PROJECT api_requests N --reason "…".', p_used);
END
$$;

-- The X-RateLimit-* headers of an admitted request (its tightest bucket). Usually nothing
-- set headers before (pre_request runs first): then one set_config, else appended.
CREATE OR REPLACE FUNCTION billing.set_rate_headers(p_limit bigint, p_remaining bigint,
                                                    p_reset_s bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF coalesce(current_setting('response.headers', true), '') = '' THEN
    PERFORM set_config('response.headers',
                       json_build_array(json_build_object('X-RateLimit-Limit', p_limit::text),
                                        json_build_object('X-RateLimit-Remaining',
                                                          p_remaining::text),
                                        json_build_object('X-RateLimit-Reset',
                                                          p_reset_s::text))::text, true);
  ELSE
    PERFORM billing.add_response_header('X-RateLimit-Limit', p_limit::text),
            billing.add_response_header('X-RateLimit-Remaining', p_remaining::text),
            billing.add_response_header('X-RateLimit-Reset', p_reset_s::text);
  END IF;
END
$$;

-- ======================================================================= the request path
-- Admit (or refuse) the current request: called by api.pre_request after its liveness
-- checks. Reads the claims itself (auth.claims: only PostgREST's sessions are trusted), so
-- no caller can spend another's tokens; on a direct SQL session nothing is limited here
-- (analysts: per-role connection and statement limits, sql/96x_analyst_*.sql).
CREATE OR REPLACE FUNCTION billing.admit_request() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  -- auth.claims(), without its superuser lookup on PostgREST's own sessions (the hot path).
  c jsonb := CASE WHEN session_user::text = 'authenticator'
                  THEN coalesce(nullif(current_setting('request.jwt.claims', true), ''),
                                '{}')::jsonb
                  ELSE auth.claims() END;
  t record;
BEGIN
  IF c ? 'project_id' THEN
    SELECT * INTO t FROM billing.rate_admit(
      (c ->> 'project_id')::uuid,
      CASE WHEN c ? 'key_id' THEN 'key:' || (c ->> 'key_id')
           WHEN c ? 'account' THEN 'account:' || (c ->> 'sub') END);
  ELSIF current_setting('role') = 'anon' AND coalesce(c ->> 'role', 'anon') = 'anon' THEN
    -- PostgREST's anonymous role (a direct SQL session can never SET ROLE anon).
    SELECT * INTO t FROM billing.rate_take('anon', 'all');
  ELSE
    RETURN;
  END IF;
  IF NOT t.ok THEN
    IF t.reason = 'quota' THEN
      PERFORM billing.raise_request_quota((c ->> 'project_id')::uuid, t.used, t.quota);
    END IF;
    PERFORM billing.raise_rate_limited(t.scope, t."limit", t.per_second, t.reset_s,
                                       t.retry_after_s);
  END IF;
  IF t.scope IS NOT NULL THEN
    PERFORM billing.set_rate_headers(t."limit", t.remaining, t.reset_s);
  END IF;
  IF t.quota IS NOT NULL AND t.used >= 0.8 * t.quota THEN
    PERFORM billing.add_response_header('X-Quota-Warning',
      format('api_requests at %s%% of its quota (%s of %s requests per day, resets %s UTC)',
             floor(100.0 * t.used / greatest(t.quota, 1)), t.used, t.quota,
             to_char((billing.period_bounds('day', now())).resets_at AT TIME ZONE 'UTC',
                     'YYYY-MM-DD HH24:MI')));
  END IF;
  IF t.dropped THEN
    RAISE WARNING 'the rate-limit segment is full: a request of project % was not counted',
                  c ->> 'project_id'
      USING HINT = 'Run billing.flush_request_counts() (pg_cron does, every minute); see '
                   'billing.rate_segment().';
  END IF;
END
$$;

-- A key exchange (api.exchange_key): one token from the bucket of the key's lookup prefix,
-- so guesses at one key's secret are slow; malformed keys share one bucket.
CREATE OR REPLACE FUNCTION billing.admit_key_exchange(p_key text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t record;
BEGIN
  SELECT * INTO t FROM billing.rate_take(
    'exchange', coalesce(substring(p_key FROM '^(sik_[0-9a-f]{12})_'), 'malformed'));
  IF NOT t.ok THEN
    PERFORM billing.raise_rate_limited('exchange', t."limit", t.per_second, t.reset_s,
                                       t.retry_after_s);
  END IF;
END
$$;

-- ======================================================================= the flush
-- Turn this database's shared-memory request counters into billing.usage (api_requests):
-- per (segment epoch, project, hour), billing.request_counts.n becomes the counter
-- (GREATEST) and the difference is added to usage, in this transaction, so a repeated or
-- concurrent flush adds 0. Then the counts committed before (never this transaction's) are
-- marked in the segment, so their slots can be reused once the hour is over. A server
-- restart keeps the segment (/dev/shm outlives it); a reboot loses what was not flushed.
-- Returns {epoch, counters, added}.
CREATE OR REPLACE FUNCTION billing.flush_request_counts() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  v_hour timestamptz;
  v_old bigint;
  v_epoch text;
  v_marks jsonb := '[]';
  v_counters integer := 0;
  v_added bigint := 0;
BEGIN
  FOR r IN SELECT * FROM billing.request_counter_snapshot() s ORDER BY s.project_id, s.hour_unix
  LOOP
    v_epoch := r.epoch;
    v_hour := to_timestamp(r.hour_unix);
    CONTINUE WHEN NOT EXISTS (SELECT FROM core.projects p WHERE p.project_id = r.project_id);
    INSERT INTO billing.request_counts (epoch, project_id, hour, n)
    VALUES (r.epoch, r.project_id, v_hour, 0)
    ON CONFLICT (epoch, project_id, hour) DO NOTHING;
    SELECT rc.n INTO v_old FROM billing.request_counts rc
    WHERE rc.epoch = r.epoch AND rc.project_id = r.project_id AND rc.hour = v_hour
    FOR UPDATE;
    v_marks := v_marks || jsonb_build_array(jsonb_build_array(r.project_id, r.hour_unix, v_old));
    CONTINUE WHEN r.n <= v_old;
    UPDATE billing.request_counts rc SET n = greatest(rc.n, r.n), flushed_at = now()
    WHERE rc.epoch = r.epoch AND rc.project_id = r.project_id AND rc.hour = v_hour;
    PERFORM billing.add_usage(r.project_id, 'api_requests', v_hour, r.n - v_old);
    v_counters := v_counters + 1;
    v_added := v_added + (r.n - v_old);
  END LOOP;
  IF v_epoch IS NOT NULL THEN
    PERFORM billing.request_counter_mark(v_epoch, v_marks);
  END IF;
  RETURN jsonb_build_object('epoch', coalesce(v_epoch, (billing.rate_segment()) ->> 'epoch'),
                            'counters', v_counters, 'added', v_added);
END
$$;

-- The cron job's body: flush, then remove the segments of dropped databases.
CREATE OR REPLACE FUNCTION billing.request_flush_job() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN billing.flush_request_counts()
         || jsonb_build_object('segments_removed', to_jsonb(billing.rate_segments_gc()));
END
$$;

-- A project's API requests today: flushed usage plus what this database's segment counted
-- beyond its last committed flush (what the quota check counts).
CREATE OR REPLACE FUNCTION billing.requests_today(p_project uuid) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT billing.used(p_project, 'api_requests')
         + coalesce(sum(s.n - coalesce(rc.n, 0)), 0)::bigint
  FROM billing.request_counter_snapshot() s
  LEFT JOIN billing.request_counts rc
    ON rc.epoch = s.epoch AND rc.project_id = s.project_id AND rc.hour = to_timestamp(s.hour_unix)
  WHERE s.project_id = p_project
    AND to_timestamp(s.hour_unix) >= (billing.period_bounds('day', now())).period_start
$$;
