-- Metering and quotas (issue 18, migration 0024): the counters of billing.usage, the
-- quota of a project per metric, and the refusals and warnings where work enters.
-- See docs/billing.md.
--
-- A count is written in the transaction of the work it counts (billing.count), keyed by
-- the unit of work, so a replayed ingest batch, a retried job or a repeated flush adds 0
-- and a rolled-back attempt adds nothing. A quota is per project and period (UTC day or
-- month, billing.metrics.period): the plan's (billing.plan_quotas) unless an operator set
-- the project's own (billing.quota_overrides, `secinf quotas set`).

-- ======================================================================= time
-- The UTC hour of a time (a usage row's key).
CREATE OR REPLACE FUNCTION billing.hour_of(p_at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT to_timestamp(floor(extract(epoch FROM p_at) / 3600) * 3600) $$;

-- The UTC period ('day' | 'month') that holds p_at: [period_start, resets_at).
CREATE OR REPLACE FUNCTION billing.period_bounds(p_period text, p_at timestamptz,
                                                 OUT period_start timestamptz,
                                                 OUT resets_at timestamptz)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT date_trunc(p_period, p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
         (date_trunc(p_period, p_at AT TIME ZONE 'UTC') + ('1 ' || p_period)::interval)
           AT TIME ZONE 'UTC'
$$;

-- ======================================================================= quotas
-- A project's quota of a metric per period: the operator's override if one is set (NULL
-- there: unlimited), else its organization's plan's (no row or NULL: unlimited).
-- source: 'override' | 'plan' | 'none'.
CREATE OR REPLACE FUNCTION billing.quota(p_project uuid, p_metric text,
                                         OUT quota bigint, OUT source text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN o.project_id IS NOT NULL THEN o.quota ELSE q.quota END,
         CASE WHEN o.project_id IS NOT NULL THEN 'override'
              WHEN q.plan_id IS NOT NULL THEN 'plan' ELSE 'none' END
  FROM core.projects p
  JOIN core.organizations org ON org.org_id = p.org_id
  LEFT JOIN billing.plan_quotas q ON q.plan_id = org.plan_id AND q.metric = p_metric
  LEFT JOIN billing.quota_overrides o ON o.project_id = p.project_id AND o.metric = p_metric
  WHERE p.project_id = p_project
$$;

-- What a project used of a metric in the period that holds p_at.
CREATE OR REPLACE FUNCTION billing.used(p_project uuid, p_metric text,
                                        p_at timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(sum(u.amount), 0)::bigint
  FROM billing.metrics m
  CROSS JOIN LATERAL billing.period_bounds(m.period, p_at) b
  JOIN billing.usage u ON u.project_id = p_project AND u.metric = m.metric
                      AND u.hour >= b.period_start AND u.hour < b.resets_at
  WHERE m.metric = p_metric
$$;

-- Every metric of a project in the period that holds p_at: use against quota.
CREATE OR REPLACE FUNCTION billing.quota_status(p_project uuid, p_at timestamptz DEFAULT now())
RETURNS TABLE (metric text, unit text, period text, period_start timestamptz,
               resets_at timestamptz, used bigint, quota bigint, quota_source text,
               used_fraction double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.metric, m.unit, m.period, b.period_start, b.resets_at, u.used, q.quota, q.source,
         CASE WHEN q.quota IS NULL THEN NULL
              WHEN q.quota = 0 THEN CASE WHEN u.used > 0 THEN 'Infinity'::float8 ELSE 1 END
              ELSE u.used::float8 / q.quota END
  FROM billing.metrics m
  CROSS JOIN LATERAL billing.period_bounds(m.period, p_at) b
  CROSS JOIN LATERAL billing.quota(p_project, m.metric) q
  CROSS JOIN LATERAL (SELECT billing.used(p_project, m.metric, p_at) AS used) u
  ORDER BY m.metric
$$;

-- ======================================================================= response headers
-- Append one header to PostgREST's response.headers (a JSON array of one-key objects) for
-- this transaction; a header of the same name set before is replaced.
CREATE OR REPLACE FUNCTION billing.add_response_header(p_name text, p_value text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_now jsonb;
BEGIN
  BEGIN
    v_now := nullif(current_setting('response.headers', true), '')::jsonb;
  EXCEPTION WHEN invalid_text_representation THEN
    v_now := NULL;
  END;
  IF jsonb_typeof(v_now) IS DISTINCT FROM 'array' THEN
    v_now := '[]';
  END IF;
  v_now := coalesce((SELECT jsonb_agg(h) FROM jsonb_array_elements(v_now) h
                     WHERE NOT h ? p_name), '[]')
           || jsonb_build_array(jsonb_build_object(p_name, p_value));
  PERFORM set_config('response.headers', v_now::text, true);
END
$$;

-- ======================================================================= checks
-- Refuse work that would take a project's use of a metric past its quota in the current
-- period: SQLSTATE PT402 (HTTP 402 through PostgREST), naming the quota, its use and when
-- it resets; raised before anything is stored, or inside the transaction that would store
-- it (which then stores nothing). Past 80 % of the quota (counting p_adding) it passes
-- with a warning: a NOTICE-level WARNING for SQL and CLI callers and the response header
-- X-Quota-Warning for API callers. Returns {metric, used, adding, quota, resets_at}.
CREATE OR REPLACE FUNCTION billing.check_quota(p_project uuid, p_metric text, p_adding bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_quota record := billing.quota(p_project, p_metric);
  v_metric billing.metrics;
  v_used bigint;
  v_bounds record;
  v_text text;
BEGIN
  SELECT * INTO v_metric FROM billing.metrics m WHERE m.metric = p_metric;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown metric %', p_metric USING ERRCODE = '22023';
  END IF;
  v_bounds := billing.period_bounds(v_metric.period, now());
  IF v_quota.quota IS NULL THEN
    RETURN jsonb_build_object('metric', p_metric, 'adding', p_adding, 'quota', NULL,
                              'resets_at', v_bounds.resets_at);
  END IF;
  v_used := billing.used(p_project, p_metric);
  IF v_used + greatest(p_adding, 0) > v_quota.quota THEN
    RAISE EXCEPTION 'quota exceeded: % would be % of this project''s % of % % per %, '
                    'which resets at % UTC',
                    p_metric, v_used + greatest(p_adding, 0), CASE v_quota.source
                      WHEN 'override' THEN 'quota' ELSE 'plan''s quota' END,
                    v_quota.quota, v_metric.unit, v_metric.period,
                    to_char(v_bounds.resets_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
      USING ERRCODE = 'PT402',
            DETAIL = jsonb_build_object('metric', p_metric, 'used', v_used,
                                        'adding', p_adding, 'quota', v_quota.quota,
                                        'unit', v_metric.unit, 'period', v_metric.period,
                                        'resets_at', v_bounds.resets_at)::text,
            HINT = format('Used so far this %s: %s %s; nothing of this request was stored. '
                          'Wait for the reset, upgrade the plan, or ask an operator: '
                          'secinf quotas set -p ORG/PROJECT %s N --reason "…".',
                          v_metric.period, v_used, v_metric.unit, p_metric);
  END IF;
  IF v_used + greatest(p_adding, 0) >= 0.8 * v_quota.quota THEN
    v_text := format('%s at %s%% of its quota (%s of %s %s per %s, resets %s UTC)',
                     p_metric,
                     floor(100.0 * (v_used + greatest(p_adding, 0)) / greatest(v_quota.quota, 1)),
                     v_used + greatest(p_adding, 0), v_quota.quota, v_metric.unit,
                     v_metric.period,
                     to_char(v_bounds.resets_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'));
    RAISE WARNING 'quota warning: %', v_text;
    PERFORM billing.add_response_header('X-Quota-Warning', v_text);
  END IF;
  RETURN jsonb_build_object('metric', p_metric, 'used', v_used, 'adding', p_adding,
                            'quota', v_quota.quota, 'resets_at', v_bounds.resets_at);
END
$$;

-- ======================================================================= counting
-- Add p_amount to a project's usage of a metric in the hour p_hour, the one write of
-- billing.usage (billing.count here; the API request flush, 251_billing_rate_limits_api.sql).
-- The row stays locked until the caller's transaction ends.
CREATE OR REPLACE FUNCTION billing.add_usage(p_project uuid, p_metric text, p_hour timestamptz,
                                             p_amount bigint)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO billing.usage AS u (project_id, metric, hour, amount)
  VALUES (p_project, p_metric, p_hour, p_amount)
  ON CONFLICT (project_id, metric, hour)
    DO UPDATE SET amount = u.amount + excluded.amount, updated_at = now()
$$;

-- Count p_amount of p_metric for project p_project, once per unit of work p_work_key
-- ('batch:42', 'range:7:…', 'score:job:…'): a key counted before adds 0 and returns false.
-- Call it in the transaction of the work, so a rolled-back attempt leaves no count and the
-- next attempt counts. The usage row of the hour is locked until that transaction ends.
CREATE OR REPLACE FUNCTION billing.count(p_project uuid, p_metric text, p_amount bigint,
                                         p_work_key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_hour timestamptz := billing.hour_of(now());
BEGIN
  IF p_project IS NULL OR coalesce(p_amount, 0) <= 0 THEN
    RETURN false;
  END IF;
  INSERT INTO billing.counted (project_id, work_key, metric, amount, hour)
  VALUES (p_project, p_work_key, p_metric, p_amount, v_hour)
  ON CONFLICT (project_id, work_key, metric) DO NOTHING;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM billing.add_usage(p_project, p_metric, v_hour, p_amount);
  RETURN true;
END
$$;

-- ======================================================================= operators
-- Set (p_quota NULL: unlimited) or, with p_clear, remove a project's own quota of a
-- metric; administrators only, audited with who and why.
CREATE OR REPLACE FUNCTION billing.set_quota(p_project uuid, p_metric text, p_quota bigint,
                                             p_reason text, p_clear boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_before record := billing.quota(p_project, p_metric);
BEGIN
  PERFORM auth.require_admin('set a quota');
  IF NOT EXISTS (SELECT FROM billing.metrics m WHERE m.metric = p_metric) THEN
    RAISE EXCEPTION 'unknown metric "%"', p_metric USING ERRCODE = '22023',
      HINT = 'Metrics: ' || (SELECT string_agg(metric, ', ' ORDER BY metric)
                             FROM billing.metrics) || '.';
  END IF;
  IF p_quota < 0 THEN
    RAISE EXCEPTION 'a quota cannot be negative (got %)', p_quota USING ERRCODE = '22023';
  END IF;
  IF p_reason IS NULL OR length(btrim(p_reason)) < 3 THEN
    RAISE EXCEPTION 'say why the quota changes (--reason, at least 3 characters)'
      USING ERRCODE = '22023';
  END IF;
  IF p_clear THEN
    DELETE FROM billing.quota_overrides o WHERE o.project_id = p_project AND o.metric = p_metric;
  ELSE
    INSERT INTO billing.quota_overrides AS o (project_id, metric, quota, set_by, reason)
    VALUES (p_project, p_metric, p_quota, coalesce(auth.subject(), session_user::text),
            btrim(p_reason))
    ON CONFLICT (project_id, metric) DO UPDATE
      SET quota = excluded.quota, set_by = excluded.set_by, reason = excluded.reason,
          set_at = now();
  END IF;
  PERFORM audit.record(p_project, CASE WHEN p_clear THEN 'quota.clear' ELSE 'quota.set' END,
                       p_metric,
                       jsonb_build_object('before', v_before.quota,
                                          'before_source', v_before.source,
                                          'quota', CASE WHEN p_clear THEN NULL ELSE p_quota END,
                                          'reason', btrim(p_reason)));
  RETURN to_jsonb(billing.quota(p_project, p_metric));
END
$$;
