-- Analytics: materialized views over verified events (events.events), candidates and
-- tracks, pre-aggregated per project, source and hour (per day for the follow rate), and
-- the function that refreshes them. docs/analytics.md describes every view and metric.
--
-- Nobody reads these views directly: a materialized view cannot carry RLS, so no
-- RLS-bound role is granted them (tests/db/test_security_catalog.py). The api.metrics_*
-- functions (851_analytics_api.sql) read them as the owner and filter on the caller's
-- projects. analytics.refresh() recomputes them CONCURRENTLY; pg_cron runs it
-- (860_cron_analytics.sql).
--
-- Deploys. This file is re-applied after every migration run, in the one transaction that
-- applies all of sql/. A view is left alone when its definition is unchanged (the
-- fingerprint at the end of its COMMENT), and (re)built only when missing or changed —
-- dropping and re-creating it on every deploy would throw its rows away and leave it
-- unreadable until the next refresh, every time. A (re)built view is created WITH NO DATA:
-- populating it here would run the whole aggregation inside the deploy transaction while
-- it holds the locks that earlier sql/ files took (CREATE OR REPLACE VIEW takes ACCESS
-- EXCLUSIVE on api views), stalling readers for as long as it runs. analytics.refresh()
-- fills an unpopulated view with a plain refresh; the cron job does so within minutes, and
-- the metric functions answer empty (project_metrics: refreshed_at null) until then.

-- ======================================================================= helpers
-- Create analytics.<p_name> WITH NO DATA plus the UNIQUE index on p_key that
-- REFRESH … CONCURRENTLY needs, unless it exists with the same query and key; rebuild it
-- when either changed; bring its COMMENT up to date. True when (re)built.
CREATE OR REPLACE FUNCTION analytics.ensure_matview(p_name text, p_comment text,
                                                    p_query text, p_key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_rel regclass := to_regclass(format('analytics.%I', p_name));
  -- Whitespace does not count: re-indenting this file rebuilds nothing.
  v_fingerprint text := md5(regexp_replace(p_query || '|' || p_key, '\s+', ' ', 'g'));
  v_built boolean := false;
BEGIN
  IF v_rel IS NOT NULL
     AND substring(pg_catalog.obj_description(v_rel, 'pg_class')
                   FROM '\[definition ([0-9a-f]{32})\]$') IS DISTINCT FROM v_fingerprint THEN
    EXECUTE format('DROP MATERIALIZED VIEW analytics.%I', p_name);
    v_rel := NULL;
  END IF;
  IF v_rel IS NULL THEN
    EXECUTE format('CREATE MATERIALIZED VIEW analytics.%I AS %s WITH NO DATA', p_name, p_query);
    -- NULLS NOT DISTINCT: a NULL zone, route or trigger is one group like any other.
    EXECUTE format('CREATE UNIQUE INDEX %I ON analytics.%I (%s) NULLS NOT DISTINCT',
                   p_name || '_key', p_name, p_key);
    v_built := true;
  END IF;
  -- Only when it changed: COMMENT locks the view against a running refresh.
  IF v_built OR pg_catalog.obj_description(v_rel, 'pg_class')
                  IS DISTINCT FROM p_comment || ' [definition ' || v_fingerprint || ']' THEN
    EXECUTE format('COMMENT ON MATERIALIZED VIEW analytics.%I IS %L', p_name,
                   p_comment || ' [definition ' || v_fingerprint || ']');
  END IF;
  RETURN v_built;
END
$$;

-- ======================================================================= views
-- Every time grain is UTC: time_bucket('1 hour' | '1 day', ts) cuts at whole UTC hours and
-- at UTC midnight (and costs less than date_trunc(…, 'UTC') on every track point).
-- `verification` is events.source: rule | model | human.

SELECT analytics.ensure_matview('events_hourly',
  'Verified events per project, source, UTC hour of their start, type and verification '
  '(events over time, class balance).',
  $q$
  SELECT e.project_id, e.source_id,
         public.time_bucket('1 hour', e.start_ts) AS bucket,
         e.type,
         e.source AS verification,
         count(*) AS events
  FROM events.events e
  GROUP BY 1, 2, 3, 4, 5
  $q$,
  'project_id, bucket, source_id, type, verification');

-- Durations in whole centiseconds (floored), so any bin width that is a multiple of
-- 0.01 s bins them exactly.
SELECT analytics.ensure_matview('dwell_durations',
  'Dwell events per project, source, UTC hour, zone and duration (centiseconds, floored).',
  $q$
  SELECT e.project_id, e.source_id,
         public.time_bucket('1 hour', e.start_ts) AS bucket,
         e.zone,
         floor(extract(epoch FROM e.end_ts - e.start_ts) * 100)::bigint AS duration_cs,
         count(*) AS events
  FROM events.events e
  WHERE e.type = 'dwell'
  GROUP BY 1, 2, 3, 4, 5
  $q$,
  'project_id, bucket, source_id, zone, duration_cs');

-- Actors are the distinct track ids of the source seen that UTC day: one pass over
-- ingest.track_points per refresh (hashed DISTINCT, then counted: no sort of every point);
-- follows are follow events starting that day.
SELECT analytics.ensure_matview('follow_daily',
  'Follow events and tracked actors (distinct track ids) per project, source and UTC day.',
  $q$
  WITH actors AS (
    SELECT t.source_id, t.day, count(*) AS actors
    FROM (SELECT DISTINCT tp.source_id, public.time_bucket('1 day', tp.ts) AS day, tp.track_id
          FROM ingest.track_points tp) t
    GROUP BY 1, 2
  ), follows AS (
    SELECT e.source_id, public.time_bucket('1 day', e.start_ts) AS day, count(*) AS follows
    FROM events.events e
    WHERE e.type = 'follow'
    GROUP BY 1, 2
  )
  SELECT s.project_id, s.source_id, d.day,
         coalesce(f.follows, 0) AS follows,
         coalesce(a.actors, 0) AS actors
  FROM (SELECT source_id, day FROM actors UNION SELECT source_id, day FROM follows) d
  JOIN ingest.sources s ON s.source_id = d.source_id
  LEFT JOIN actors a ON a.source_id = d.source_id AND a.day = d.day
  LEFT JOIN follows f ON f.source_id = d.source_id AND f.day = d.day
  $q$,
  'project_id, day, source_id');

SELECT analytics.ensure_matview('route_choices',
  'choose_route events per project, source, UTC hour, branch zone and route taken.',
  $q$
  SELECT e.project_id, e.source_id,
         public.time_bucket('1 hour', e.start_ts) AS bucket,
         e.zone, e.route,
         count(*) AS events
  FROM events.events e
  WHERE e.type = 'choose_route'
  GROUP BY 1, 2, 3, 4, 5
  $q$,
  'project_id, bucket, source_id, zone, route');

-- latency_s goes through numeric so 0.29 s is 29 cs, not float noise's 28.
SELECT analytics.ensure_matview('reaction_latencies',
  'Startle events per project, source, UTC hour, trigger and latency (centiseconds, floored).',
  $q$
  SELECT e.project_id, e.source_id,
         public.time_bucket('1 hour', e.start_ts) AS bucket,
         e.trigger,
         floor(e.latency_s::numeric * 100)::bigint AS latency_cs,
         count(*) AS events
  FROM events.events e
  WHERE e.type = 'startle' AND e.latency_s IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5
  $q$,
  'project_id, bucket, source_id, trigger, latency_cs');

SELECT analytics.ensure_matview('candidates_hourly',
  'Candidates per project, source, UTC hour of their start, type and status (class balance).',
  $q$
  SELECT c.project_id, c.source_id,
         public.time_bucket('1 hour', c.start_ts) AS bucket,
         c.type, c.status,
         count(*) AS candidates
  FROM candidates.candidates c
  GROUP BY 1, 2, 3, 4, 5
  $q$,
  'project_id, bucket, source_id, type, status');

-- One row: the start of the transaction that last refreshed the views (all of them are
-- refreshed in one transaction, so this dates every one).
SELECT analytics.ensure_matview('refreshed',
  'When analytics.refresh() last ran (its transaction''s start): the age of every analytics view.',
  $q$ SELECT now() AS refreshed_at $q$,
  'refreshed_at');

-- ======================================================================= refresh
-- Refresh every analytics view, CONCURRENTLY where it is populated (readers keep reading
-- the old rows meanwhile), plainly where it is not (just built by a deploy). One
-- transaction: the views stay consistent with each other. Runs as the owner (only the
-- owner may refresh a materialized view); pg_cron calls it as `pipeline`.
CREATE OR REPLACE FUNCTION analytics.refresh(p_concurrently boolean DEFAULT true)
RETURNS TABLE(matview text, concurrent boolean, ms double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v record;
  v_started timestamptz;
BEGIN
  FOR v IN
    SELECT c.oid::regclass AS rel, c.relname, c.relispopulated
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'analytics'::regnamespace AND c.relkind = 'm'
    ORDER BY c.relname = 'refreshed', c.relname  -- the stamp last; a fixed order never deadlocks
  LOOP
    v_started := clock_timestamp();
    concurrent := coalesce(p_concurrently, true) AND v.relispopulated;
    EXECUTE format('REFRESH MATERIALIZED VIEW %s%s',
                   CASE WHEN concurrent THEN 'CONCURRENTLY ' ELSE '' END, v.rel);
    matview := v.relname;
    ms := extract(epoch FROM clock_timestamp() - v_started) * 1000;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION analytics.refresh(boolean) IS
  'Refresh every analytics materialized view (CONCURRENTLY unless told otherwise or not yet populated); one row per view with its time.';
