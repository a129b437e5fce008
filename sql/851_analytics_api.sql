-- Analytics through the API: api.metrics_* and api.project_metrics read the analytics
-- materialized views (850_analytics.sql) as their owner — the views carry no RLS and no
-- API role may read them — and keep only the rows of the caller's projects
-- (auth.project_ids(); every project for admins). PostgREST serves them as
-- /rpc/metrics_* and /rpc/project_metrics; analysts call them from SQL the same way.
--
-- Filters, the same in every function: p_source_ids (NULL: every source the caller sees)
-- and a time range [p_from, p_to) on the start of the events, widened to whole grains of
-- the view: hours (the follow rate: UTC days). Histograms bin in seconds; a bin width must
-- be a multiple of 0.01 s (the views keep durations and latencies in centiseconds), and
-- one histogram holds at most 10,000 bins per zone or trigger. Until the views are first
-- refreshed every function answers no rows.

-- ======================================================================= helpers
-- The projects whose analytics the caller may read: every project for admins.
CREATE OR REPLACE FUNCTION analytics.caller_projects() RETURNS uuid[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN auth.is_admin() THEN ARRAY(SELECT p.project_id FROM core.projects p)
              ELSE auth.project_ids() END
$$;

-- Refuse an empty or inverted time range.
CREATE OR REPLACE FUNCTION analytics.check_range(p_from timestamptz, p_to timestamptz)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_from >= p_to THEN
    RAISE EXCEPTION 'p_from (%) must be before p_to (%)', p_from, p_to
      USING ERRCODE = '22023', HINT = 'Give a range [p_from, p_to) with p_from < p_to.';
  END IF;
END
$$;

-- A histogram bin width in seconds as whole centiseconds; refuses anything else.
CREATE OR REPLACE FUNCTION analytics.bin_cs(p_bin_s double precision) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v numeric := p_bin_s::numeric * 100;
BEGIN
  IF v IS NULL OR v < 1 OR v <> trunc(v) THEN
    RAISE EXCEPTION 'p_bin_s = % is not a bin width the analytics views can serve', p_bin_s
      USING ERRCODE = '22023',
            HINT = 'Use a positive multiple of 0.01 seconds, e.g. 0.25 or 5.';
  END IF;
  RETURN v;
END
$$;

-- Bin numbers lo..hi for a dense histogram, refusing more than 10,000 of them.
CREATE OR REPLACE FUNCTION analytics.bin_series(p_lo bigint, p_hi bigint, p_bin_s double precision)
RETURNS SETOF bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_hi - p_lo + 1 > 10000 THEN
    RAISE EXCEPTION 'p_bin_s = % gives % bins, more than 10000', p_bin_s, p_hi - p_lo + 1
      USING ERRCODE = '22023', HINT = 'Use a wider bin.';
  END IF;
  RETURN QUERY SELECT generate_series(p_lo, p_hi);
END
$$;

-- Whether a view has been refreshed at least once (reading it before would fail).
CREATE OR REPLACE FUNCTION analytics.is_populated(p_view regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT c.relispopulated FROM pg_catalog.pg_class c WHERE c.oid = p_view $$;

-- When the views were last refreshed; NULL while any of them awaits its first refresh
-- (after a fresh install, or a deploy that rebuilt one).
CREATE OR REPLACE FUNCTION analytics.refreshed_at() RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'analytics'::regnamespace AND c.relkind = 'm'
               AND NOT c.relispopulated) THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT max(r.refreshed_at) FROM analytics.refreshed r);
END
$$;

-- A dense histogram of analytics.<p_view>'s centisecond column p_value per p_key, for the
-- api.metrics_* histograms (their callers run it as the owner; no API role may call it).
CREATE OR REPLACE FUNCTION analytics.dense_histogram(
  p_view text, p_key text, p_value text,
  p_from timestamptz, p_to timestamptz, p_source_ids bigint[], p_bin_s double precision)
RETURNS TABLE(key text, bin_start_s double precision, bin_end_s double precision, events bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_projects uuid[] := analytics.caller_projects();
  v_from timestamptz := coalesce(date_trunc('hour', p_from, 'UTC'), '-infinity');
  v_to timestamptz := coalesce(p_to, 'infinity');
  v_bin numeric := analytics.bin_cs(p_bin_s);
BEGIN
  PERFORM analytics.check_range(p_from, p_to);
  IF NOT analytics.is_populated(format('analytics.%I', p_view)::regclass) THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE format($q$
    WITH d AS (
      SELECT h.%1$I AS key, floor(h.%2$I / $4)::bigint AS bin, sum(h.events)::bigint AS n
      FROM analytics.%3$I h
      WHERE h.project_id = ANY ($1)
        AND h.bucket >= $2 AND h.bucket < $3
        AND ($5::bigint[] IS NULL OR h.source_id = ANY ($5))
      GROUP BY 1, 2
    ), k AS (
      SELECT d.key, least(min(d.bin), 0) AS lo, max(d.bin) AS hi FROM d GROUP BY 1
    )
    SELECT k.key, (g.bin * $4 / 100)::float8, ((g.bin + 1) * $4 / 100)::float8,
           coalesce(d.n, 0)
    FROM k
    CROSS JOIN LATERAL analytics.bin_series(k.lo, k.hi, $6) g(bin)
    LEFT JOIN d ON d.key IS NOT DISTINCT FROM k.key AND d.bin = g.bin
    ORDER BY k.key NULLS LAST, g.bin
    $q$, p_key, p_value, p_view)
    USING v_projects, v_from, v_to, v_bin, p_source_ids, p_bin_s;
END
$$;

-- ======================================================================= metrics
-- Events over time: count per bucket (hour, day, week starting Monday, month; UTC), type
-- and verification.
CREATE OR REPLACE FUNCTION api.metrics_events_over_time(
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL, p_bucket text DEFAULT 'hour')
RETURNS TABLE(bucket timestamptz, type text, verification text, events bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_projects uuid[] := analytics.caller_projects();
  v_from timestamptz := coalesce(date_trunc('hour', p_from, 'UTC'), '-infinity');
  v_to timestamptz := coalesce(p_to, 'infinity');
BEGIN
  PERFORM analytics.check_range(p_from, p_to);
  IF p_bucket IS NULL OR p_bucket NOT IN ('hour', 'day', 'week', 'month') THEN
    RAISE EXCEPTION 'p_bucket = % is not a bucket', coalesce(p_bucket, 'NULL')
      USING ERRCODE = '22023', HINT = 'Use hour, day, week or month.';
  END IF;
  IF NOT analytics.is_populated('analytics.events_hourly') THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT date_trunc(p_bucket, h.bucket, 'UTC'), h.type, h.verification, sum(h.events)::bigint
    FROM analytics.events_hourly h
    WHERE h.project_id = ANY (v_projects)
      AND h.bucket >= v_from AND h.bucket < v_to
      AND (p_source_ids IS NULL OR h.source_id = ANY (p_source_ids))
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
END
$$;
COMMENT ON FUNCTION api.metrics_events_over_time(timestamptz, timestamptz, bigint[], text) IS
  'Verified events per time bucket (p_bucket: hour, day, week or month, UTC), type and verification (rule, model, human), in [p_from, p_to) widened to whole hours, for the given sources (NULL: all). Empty buckets are left out.';

-- Dwell time distribution per zone: a dense histogram from 0 s to the longest dwell.
CREATE OR REPLACE FUNCTION api.metrics_dwell_histogram(
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL, p_bin_s double precision DEFAULT 5)
RETURNS TABLE(zone text, bin_start_s double precision, bin_end_s double precision, events bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM analytics.dense_histogram('dwell_durations', 'zone', 'duration_cs',
                                          p_from, p_to, p_source_ids, p_bin_s)
$$;
COMMENT ON FUNCTION api.metrics_dwell_histogram(timestamptz, timestamptz, bigint[], double precision) IS
  'Dwell durations per zone as a histogram: bins of p_bin_s seconds (a multiple of 0.01) from 0 to the longest dwell, [bin_start_s, bin_end_s), empty bins included; dwells starting in [p_from, p_to) widened to whole hours, for the given sources (NULL: all).';

-- Follow rate: follow events per tracked actor, per source and UTC day.
CREATE OR REPLACE FUNCTION api.metrics_follow_rate(
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL)
RETURNS TABLE(source_id bigint, source_name text, day date, follows bigint, actors bigint,
              rate double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_projects uuid[] := analytics.caller_projects();
  v_from timestamptz := coalesce(date_trunc('day', p_from, 'UTC'), '-infinity');
  v_to timestamptz := coalesce(p_to, 'infinity');
BEGIN
  PERFORM analytics.check_range(p_from, p_to);
  IF NOT analytics.is_populated('analytics.follow_daily') THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT f.source_id, s.name, (f.day AT TIME ZONE 'UTC')::date, f.follows, f.actors,
           f.follows::float8 / nullif(f.actors, 0)
    FROM analytics.follow_daily f
    JOIN ingest.sources s ON s.source_id = f.source_id
    WHERE f.project_id = ANY (v_projects)
      AND f.day >= v_from AND f.day < v_to
      AND (p_source_ids IS NULL OR f.source_id = ANY (p_source_ids))
    ORDER BY f.source_id, f.day;
END
$$;
COMMENT ON FUNCTION api.metrics_follow_rate(timestamptz, timestamptz, bigint[]) IS
  'Follow events per tracked actor, per source and UTC day: follows (follow events starting that day), actors (distinct track ids seen that day), rate = follows / actors (null without actors); days overlapping [p_from, p_to), for the given sources (NULL: all).';

-- Route choice shares: how often each route was taken after each branch zone.
CREATE OR REPLACE FUNCTION api.metrics_route_shares(
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL)
RETURNS TABLE(zone text, route text, choices bigint, share double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_projects uuid[] := analytics.caller_projects();
  v_from timestamptz := coalesce(date_trunc('hour', p_from, 'UTC'), '-infinity');
  v_to timestamptz := coalesce(p_to, 'infinity');
BEGIN
  PERFORM analytics.check_range(p_from, p_to);
  IF NOT analytics.is_populated('analytics.route_choices') THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT r.zone, r.route, sum(r.events)::bigint,
           (sum(r.events) / sum(sum(r.events)) OVER (PARTITION BY r.zone))::float8
    FROM analytics.route_choices r
    WHERE r.project_id = ANY (v_projects)
      AND r.bucket >= v_from AND r.bucket < v_to
      AND (p_source_ids IS NULL OR r.source_id = ANY (p_source_ids))
    GROUP BY r.zone, r.route
    ORDER BY r.zone NULLS LAST, 3 DESC, r.route NULLS LAST;
END
$$;
COMMENT ON FUNCTION api.metrics_route_shares(timestamptz, timestamptz, bigint[]) IS
  'choose_route events per branch zone and route, with each route''s share of its zone''s choices (shares of a zone sum to 1); events starting in [p_from, p_to) widened to whole hours, for the given sources (NULL: all).';

-- Reaction latency per trigger: a dense histogram of startle latencies.
CREATE OR REPLACE FUNCTION api.metrics_reaction_latency(
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL, p_bin_s double precision DEFAULT 0.25)
RETURNS TABLE(trigger text, bin_start_s double precision, bin_end_s double precision,
              events bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM analytics.dense_histogram('reaction_latencies', 'trigger', 'latency_cs',
                                          p_from, p_to, p_source_ids, p_bin_s)
$$;
COMMENT ON FUNCTION api.metrics_reaction_latency(timestamptz, timestamptz, bigint[], double precision) IS
  'Startle latencies (onset minus trigger time) per trigger as a histogram: bins of p_bin_s seconds (a multiple of 0.01) from 0 (or the earliest latency, if negative) to the longest, empty bins included; events starting in [p_from, p_to) widened to whole hours, for the given sources (NULL: all).';

-- Class balance: verified events per type and verification, and candidates per status.
CREATE OR REPLACE FUNCTION api.metrics_class_balance(
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL)
RETURNS TABLE(type text, events bigint, events_rule bigint, events_model bigint,
              events_human bigint, share double precision, candidates bigint,
              candidates_new bigint, candidates_scored bigint, candidates_in_review bigint,
              candidates_accepted bigint, candidates_rejected bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_projects uuid[] := analytics.caller_projects();
  v_from timestamptz := coalesce(date_trunc('hour', p_from, 'UTC'), '-infinity');
  v_to timestamptz := coalesce(p_to, 'infinity');
BEGIN
  PERFORM analytics.check_range(p_from, p_to);
  IF NOT (analytics.is_populated('analytics.events_hourly')
          AND analytics.is_populated('analytics.candidates_hourly')) THEN
    RETURN;
  END IF;
  RETURN QUERY
    WITH e AS (
      SELECT h.type, sum(h.events) AS n,
             coalesce(sum(h.events) FILTER (WHERE h.verification = 'rule'), 0) AS n_rule,
             coalesce(sum(h.events) FILTER (WHERE h.verification = 'model'), 0) AS n_model,
             coalesce(sum(h.events) FILTER (WHERE h.verification = 'human'), 0) AS n_human
      FROM analytics.events_hourly h
      WHERE h.project_id = ANY (v_projects)
        AND h.bucket >= v_from AND h.bucket < v_to
        AND (p_source_ids IS NULL OR h.source_id = ANY (p_source_ids))
      GROUP BY 1
    ), c AS (
      SELECT h.type, sum(h.candidates) AS n,
             coalesce(sum(h.candidates) FILTER (WHERE h.status = 'new'), 0) AS n_new,
             coalesce(sum(h.candidates) FILTER (WHERE h.status = 'scored'), 0) AS n_scored,
             coalesce(sum(h.candidates) FILTER (WHERE h.status = 'in_review'), 0) AS n_review,
             coalesce(sum(h.candidates) FILTER (WHERE h.status = 'accepted'), 0) AS n_accepted,
             coalesce(sum(h.candidates) FILTER (WHERE h.status = 'rejected'), 0) AS n_rejected
      FROM analytics.candidates_hourly h
      WHERE h.project_id = ANY (v_projects)
        AND h.bucket >= v_from AND h.bucket < v_to
        AND (p_source_ids IS NULL OR h.source_id = ANY (p_source_ids))
      GROUP BY 1
    )
    SELECT coalesce(e.type, c.type),
           coalesce(e.n, 0)::bigint, coalesce(e.n_rule, 0)::bigint,
           coalesce(e.n_model, 0)::bigint, coalesce(e.n_human, 0)::bigint,
           (coalesce(e.n, 0) / nullif(sum(e.n) OVER (), 0))::float8,
           coalesce(c.n, 0)::bigint, coalesce(c.n_new, 0)::bigint,
           coalesce(c.n_scored, 0)::bigint, coalesce(c.n_review, 0)::bigint,
           coalesce(c.n_accepted, 0)::bigint, coalesce(c.n_rejected, 0)::bigint
    FROM e FULL JOIN c ON c.type = e.type
    ORDER BY 1;
END
$$;
COMMENT ON FUNCTION api.metrics_class_balance(timestamptz, timestamptz, bigint[]) IS
  'Per event type: verified events (total, by rule, model and human verification, share of all events) and candidates (total and per status: new, scored, in_review, accepted, rejected); starting in [p_from, p_to) widened to whole hours, for the given sources (NULL: all).';

-- ======================================================================= all in one
-- Every metric in one document; the events-over-time bucket follows the span asked for
-- (or, open-ended, the span of the data): up to 3 days hourly, up to 92 days daily, else weekly.
CREATE OR REPLACE FUNCTION api.project_metrics(
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_projects uuid[] := analytics.caller_projects();
  v_lo timestamptz := p_from;
  v_hi timestamptz := p_to;
  v_bucket text;
BEGIN
  PERFORM analytics.check_range(p_from, p_to);
  IF (v_lo IS NULL OR v_hi IS NULL) AND analytics.is_populated('analytics.events_hourly') THEN
    SELECT coalesce(v_lo, min(h.bucket)), coalesce(v_hi, max(h.bucket) + interval '1 hour')
      INTO v_lo, v_hi
    FROM analytics.events_hourly h
    WHERE h.project_id = ANY (v_projects)
      AND h.bucket >= coalesce(date_trunc('hour', p_from, 'UTC'), '-infinity')
      AND h.bucket < coalesce(p_to, 'infinity')
      AND (p_source_ids IS NULL OR h.source_id = ANY (p_source_ids));
  END IF;
  v_bucket := CASE WHEN v_hi - v_lo > interval '92 days' THEN 'week'
                   WHEN v_hi - v_lo > interval '3 days' THEN 'day'
                   ELSE 'hour' END;
  RETURN jsonb_build_object(
    'from', p_from, 'to', p_to, 'source_ids', to_jsonb(p_source_ids), 'bucket', v_bucket,
    'refreshed_at', analytics.refreshed_at(),
    'events_over_time', (
      SELECT coalesce(jsonb_agg(to_jsonb(m) - 'n' ORDER BY m.n), '[]')
      FROM api.metrics_events_over_time(p_from, p_to, p_source_ids, v_bucket)
           WITH ORDINALITY m(bucket, type, verification, events, n)),
    'dwell_histogram', (
      SELECT coalesce(jsonb_agg(to_jsonb(m) - 'n' ORDER BY m.n), '[]')
      FROM api.metrics_dwell_histogram(p_from, p_to, p_source_ids)
           WITH ORDINALITY m(zone, bin_start_s, bin_end_s, events, n)),
    'follow_rate', (
      SELECT coalesce(jsonb_agg(to_jsonb(m) - 'n' ORDER BY m.n), '[]')
      FROM api.metrics_follow_rate(p_from, p_to, p_source_ids)
           WITH ORDINALITY m(source_id, source_name, day, follows, actors, rate, n)),
    'route_shares', (
      SELECT coalesce(jsonb_agg(to_jsonb(m) - 'n' ORDER BY m.n), '[]')
      FROM api.metrics_route_shares(p_from, p_to, p_source_ids)
           WITH ORDINALITY m(zone, route, choices, share, n)),
    'reaction_latency', (
      SELECT coalesce(jsonb_agg(to_jsonb(m) - 'n' ORDER BY m.n), '[]')
      FROM api.metrics_reaction_latency(p_from, p_to, p_source_ids)
           WITH ORDINALITY m(trigger, bin_start_s, bin_end_s, events, n)),
    'class_balance', (
      SELECT coalesce(jsonb_agg(to_jsonb(m) - 'n' ORDER BY m.n), '[]')
      FROM api.metrics_class_balance(p_from, p_to, p_source_ids)
           WITH ORDINALITY m(type, events, events_rule, events_model, events_human, share,
                             candidates, candidates_new, candidates_scored,
                             candidates_in_review, candidates_accepted, candidates_rejected,
                             n)));
END
$$;
COMMENT ON FUNCTION api.project_metrics(timestamptz, timestamptz, bigint[]) IS
  'Every analytics metric of the caller''s projects in one document: {from, to, source_ids, bucket, refreshed_at, events_over_time, dwell_histogram (5 s bins), follow_rate, route_shares, reaction_latency (0.25 s bins), class_balance}, each a list of the rows the matching metrics_* function returns. bucket is hour up to 3 days of range, day up to 92 days, else week. refreshed_at is null until the views are first computed.';
