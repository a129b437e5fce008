-- Usage, quotas, invoices and the subscription through the API (issue 18): what a project
-- used of each metric against its quota (api.usage, over billing.quota_status), the hours
-- of one metric (api.usage_hourly), and its organization's Stripe mirror (api.invoices,
-- api.subscription). Grants in 975_grants_billing_api.sql; see docs/billing.md.

-- ======================================================================= periods
-- The moment whose periods api.usage reports, from a period named by the caller: NULL is
-- now; 'YYYY-MM' a month and 'YYYY-MM-DD' a day (UTC), each at its last moment so far (now
-- for the current one), so a month's daily metrics (api_requests) report its last day.
-- A malformed or future period is a 22023 naming it and the forms that work.
CREATE OR REPLACE FUNCTION billing.period_moment(p_period text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_parts text[] := regexp_match(btrim(p_period), '^(\d{4})-(\d{2})(?:-(\d{2}))?$');
  v_start timestamptz;
  v_span interval;
BEGIN
  IF p_period IS NULL THEN
    RETURN now();
  END IF;
  IF v_parts IS NULL THEN
    RAISE EXCEPTION 'period "%" is neither a month (YYYY-MM) nor a day (YYYY-MM-DD)', p_period
      USING ERRCODE = '22023',
            HINT = 'e.g. 2026-12 for December 2026 or 2026-12-07 for one UTC day; leave it '
                   'out for the current period.';
  END IF;
  BEGIN
    v_start := make_timestamptz(v_parts[1]::int, v_parts[2]::int,
                                coalesce(v_parts[3], '1')::int, 0, 0, 0, 'UTC');
  EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RAISE EXCEPTION 'period "%" is not a date of the calendar', p_period
      USING ERRCODE = '22023', HINT = 'Months run 01-12 and days as the month has them.';
  END;
  v_span := CASE WHEN v_parts[3] IS NULL THEN interval '1 month' ELSE interval '1 day' END;
  IF v_start > now() THEN
    RAISE EXCEPTION 'period "%" has not begun (it starts % UTC)', p_period,
      to_char(v_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
      USING ERRCODE = '22023', HINT = 'Name the current period or a past one.';
  END IF;
  RETURN least(now(), (v_start AT TIME ZONE 'UTC' + v_span) AT TIME ZONE 'UTC'
                      - interval '1 microsecond');
END
$$;

-- A metric's name checked against billing.metrics: a 22023 listing them otherwise.
CREATE OR REPLACE FUNCTION billing.require_metric(p_metric text) RETURNS billing.metrics
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v billing.metrics;
BEGIN
  SELECT * INTO v FROM billing.metrics m WHERE m.metric = p_metric;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown metric "%"', p_metric USING ERRCODE = '22023',
      HINT = 'Metrics: ' || (SELECT string_agg(m.metric, ', ' ORDER BY m.metric)
                             FROM billing.metrics m) || '.';
  END IF;
  RETURN v;
END
$$;

DROP FUNCTION IF EXISTS billing.caller_project(uuid, text[]);  -- now auth.caller_project

-- ======================================================================= usage
DROP FUNCTION IF EXISTS api.usage(text, uuid);
-- Use against quota of every metric for the caller's project in the current period, or the
-- period named by p_period (a month YYYY-MM or a UTC day YYYY-MM-DD).
CREATE FUNCTION api.usage(p_period text DEFAULT NULL, p_project_id uuid DEFAULT NULL)
RETURNS TABLE (metric text, unit text, period text, period_start timestamptz,
               resets_at timestamptz, used bigint, quota bigint, quota_source text,
               used_fraction double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project uuid := auth.caller_project(p_project_id,
                                           ARRAY['customer', 'analyst', 'project_admin']);
BEGIN
  RETURN QUERY
    SELECT s.metric, s.unit, s.period, s.period_start, s.resets_at, s.used, s.quota,
           s.quota_source, s.used_fraction
    FROM billing.quota_status(v_project, billing.period_moment(p_period)) s;
END
$$;
COMMENT ON FUNCTION api.usage(text, uuid) IS
  'What the caller''s project used of each metric in the current quota period (UTC month; '
  'UTC day for api_requests), or in p_period (a month YYYY-MM or a day YYYY-MM-DD: a past '
  'month''s daily metrics report its last day), against its quota: used, quota (NULL: '
  'unlimited; today''s quota, also for a past period), quota_source (plan | override | '
  'none), used_fraction, period_start and resets_at. p_project_id names the project for '
  'callers of several.';

DROP FUNCTION IF EXISTS api.usage_hourly(text, timestamptz, timestamptz, uuid);
-- One metric's use per UTC hour for the caller's project over [p_from, p_to): every hour,
-- zero where nothing was counted; at most 31 days per call.
CREATE FUNCTION api.usage_hourly(p_metric text, p_from timestamptz DEFAULT NULL,
                                 p_to timestamptz DEFAULT NULL,
                                 p_project_id uuid DEFAULT NULL)
RETURNS TABLE (hour timestamptz, amount bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_project uuid := auth.caller_project(p_project_id,
                                           ARRAY['customer', 'analyst', 'project_admin']);
  v_to timestamptz := coalesce(p_to, billing.hour_of(now()) + interval '1 hour');
  v_from timestamptz := billing.hour_of(coalesce(p_from, v_to - interval '24 hours'));
BEGIN
  PERFORM billing.require_metric(p_metric);
  IF v_from >= v_to THEN
    RAISE EXCEPTION 'p_from (%) must be before p_to (%)', p_from, v_to
      USING ERRCODE = '22023', HINT = 'Give a range [p_from, p_to) with p_from < p_to.';
  END IF;
  IF v_to - v_from > interval '31 days' THEN
    RAISE EXCEPTION 'the range % to % is longer than 31 days', v_from, v_to
      USING ERRCODE = '22023',
            HINT = 'Ask for 31 days or less per call (e.g. one month at a time); '
                   'api.usage sums whole periods.';
  END IF;
  RETURN QUERY
    SELECT h.hour, coalesce(u.amount, 0)::bigint
    FROM generate_series(v_from, v_to - interval '1 microsecond', interval '1 hour') AS h (hour)
    LEFT JOIN billing.usage u
      ON u.project_id = v_project AND u.metric = p_metric AND u.hour = h.hour
    ORDER BY h.hour;
END
$$;
COMMENT ON FUNCTION api.usage_hourly(text, timestamptz, timestamptz, uuid) IS
  'One metric''s use per UTC hour for the caller''s project over [p_from, p_to) (default: '
  'the last 24 hours; p_from rounds down to its hour): every hour, 0 where nothing was '
  'counted; at most 31 days per call. p_project_id names the project for callers of '
  'several.';

-- ======================================================================= Stripe's mirror
DROP VIEW IF EXISTS api.invoices;
CREATE VIEW api.invoices WITH (security_invoker = true) AS
SELECT i.stripe_invoice_id AS invoice_id, i.org_id, o.slug AS org, i.number, i.status,
       i.currency, i.amount_due, i.amount_paid, i.period_start, i.period_end,
       i.hosted_invoice_url, i.stripe_subscription_id AS subscription_id,
       i.stripe_updated AS updated_at
FROM billing.invoices i
JOIN core.organizations o ON o.org_id = i.org_id;
COMMENT ON VIEW api.invoices IS
  'Invoices of the caller''s organization as Stripe last reported them (customers and '
  'project admins): number, status (draft | open | paid | uncollectible | void), amounts '
  'in the currency''s smallest unit, the billed period and Stripe''s hosted page.';
COMMENT ON COLUMN api.invoices.amount_due IS 'In the currency''s smallest unit (cents).';
COMMENT ON COLUMN api.invoices.amount_paid IS 'In the currency''s smallest unit (cents).';
COMMENT ON COLUMN api.invoices.hosted_invoice_url IS 'Stripe''s page to view and pay it.';
COMMENT ON COLUMN api.invoices.updated_at IS
  'Stripe''s time of the event that set this state.';

DROP VIEW IF EXISTS api.subscription;
CREATE VIEW api.subscription WITH (security_invoker = true) AS
SELECT o.org_id, o.slug AS org, o.plan_id, s.stripe_subscription_id AS subscription_id,
       s.status, s.plan_id AS subscribed_plan_id, s.current_period_start,
       s.current_period_end, coalesce(s.cancel_at_period_end, false) AS cancel_at_period_end,
       s.stripe_updated AS updated_at
FROM core.organizations o
LEFT JOIN LATERAL (
  SELECT x.* FROM billing.subscriptions x
  WHERE x.org_id = o.org_id
  ORDER BY x.status IN ('active', 'trialing', 'past_due') DESC, x.stripe_updated DESC
  LIMIT 1) s ON true;
COMMENT ON VIEW api.subscription IS
  'The caller''s organization''s plan and its Stripe subscription (customers and project '
  'admins): one row per organization; the live subscription if there is one, else the '
  'newest; subscription columns NULL when it never subscribed.';
COMMENT ON COLUMN api.subscription.plan_id IS 'The plan the organization is on now.';
COMMENT ON COLUMN api.subscription.status IS
  'Stripe''s status: trialing | active | past_due | canceled | unpaid | incomplete | '
  'incomplete_expired | paused; NULL: no subscription.';
COMMENT ON COLUMN api.subscription.cancel_at_period_end IS
  'The subscription ends at current_period_end.';
