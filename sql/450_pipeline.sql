-- The incremental pipeline: settings lookup, the stage registry, pipeline.tick() and the
-- status view. See docs/pipeline.md for the range arithmetic and the stage contract.

-- ======================================================================= settings
-- A setting for a project: its own row, else the default (project_id NULL).
CREATE OR REPLACE FUNCTION pipeline.setting(p_project uuid, p_key text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.value FROM pipeline.settings s
  WHERE s.key = p_key AND (s.project_id = p_project OR s.project_id IS NULL)
  ORDER BY s.project_id NULLS LAST
  LIMIT 1
$$;

-- A numeric setting as double precision (NULL when unset or JSON null).
CREATE OR REPLACE FUNCTION pipeline.setting_float(p_project uuid, p_key text)
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE jsonb_typeof(v) WHEN 'number' THEN v::double precision END
  FROM (SELECT pipeline.setting(p_project, p_key) AS v) s
$$;

-- A numeric setting rounded to an integer (NULL when unset or JSON null).
CREATE OR REPLACE FUNCTION pipeline.setting_int(p_project uuid, p_key text) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT round(pipeline.setting_float(p_project, p_key))::integer $$;

-- A source's own setting (ingest.sources.attributes -> 'settings' -> key, set with
-- `secinf pipeline settings --source`), else the project's, else the default. For what a
-- customer knows per camera: its frame rate and noise level decide the smoothing window.
CREATE OR REPLACE FUNCTION pipeline.source_setting_float(p_source bigint, p_key text)
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(CASE jsonb_typeof(s.attributes -> 'settings' -> p_key)
                    WHEN 'number' THEN (s.attributes -> 'settings' -> p_key)::double precision END,
                  pipeline.setting_float(s.project_id, p_key))
  FROM ingest.sources s WHERE s.source_id = p_source
$$;

-- Seconds before a watermark that a tick recomputes: outputs there may still change when
-- newer points arrive (the smoothing window looks smoothing_s / 2 ahead), plus one frame
-- and a second of slack.
CREATE OR REPLACE FUNCTION pipeline.overlap_s(p_source bigint) RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT greatest(0.0, coalesce(pipeline.source_setting_float(s.source_id, 'smoothing_s'), 0.0)) / 2
         + 1.0 / coalesce(s.fps, 1.0) + 1.0
  FROM ingest.sources s WHERE s.source_id = p_source
$$;

-- ======================================================================= stages
-- Register (or update) a stage; other concerns call this from their own sql/ file.
CREATE OR REPLACE FUNCTION pipeline.register_stage(p_name text, p_function regprocedure,
                                                   p_position integer, p_enabled boolean DEFAULT true)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO pipeline.stages (name, function, position, enabled)
  VALUES (p_name, p_function, p_position, p_enabled)
  ON CONFLICT (name) DO UPDATE
    SET function = excluded.function, position = excluded.position, enabled = excluded.enabled
$$;

SELECT pipeline.register_stage('kinematics',
         'features.compute_kinematics(bigint, timestamptz, timestamptz)', 10);
SELECT pipeline.register_stage('zone_presence',
         'features.compute_zone_presence(bigint, timestamptz, timestamptz)', 20);
-- No relations stage: pair rows are computed when read (sql/402_features_relations.sql).
SELECT pipeline.register_stage('change_points',
         'features.compute_change_points(bigint, timestamptz, timestamptz)', 40);

-- ======================================================================= statistics
-- A tick is one transaction, so the chunks its stages fill get planner statistics from
-- autovacuum only after it commits, if it gets there before the next reader. A later
-- stage's statements were planned on defaults (`source_id = $2` at 0.5 % of the rows, a
-- range at 0.5 % of that): UCY students03's 514k fresh relation rows were estimated at 206,
-- and the handover rule joined them in a nested loop for over 5 minutes (1.4 s planned on
-- statistics). ANALYZE may run in a transaction and samples the transaction's own rows.

-- Rows inserted or updated per table by this backend so far (pg_stat_xact_user_tables: this
-- transaction, plus earlier ones whose counts are not flushed yet), {relid: rows}: what a
-- stage wrote is the difference across its call (pipeline.tick_stage).
CREATE OR REPLACE FUNCTION pipeline.written_counts() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(jsonb_object_agg(t.relid::text, t.n_tup_ins + t.n_tup_upd), '{}')
  FROM pg_stat_xact_user_tables t WHERE t.n_tup_ins + t.n_tup_upd > 0
$$;

-- Analyze every table this backend has written that the planner would misjudge: never
-- analyzed and at least 16 pages, or grown since its last analysis by at least 256 pages
-- or a tenth of its size (at least 16 pages), or, given p_before (written_counts() before
-- a stage), written by that stage for at least a tenth of its analysed rows (at least
-- 1,000). Growth is counted in pages, so a table analyzed earlier in the same tick is
-- analyzed again only for what was written since (a second source in the same chunk, say).
-- The rows test is for parallel lanes: another lane's ANALYZE of a shared chunk counts the
-- pages this lane filled but not its rows (uncommitted), so pages alone would leave this
-- lane planning on statistics without its source (a nested loop for minutes). Target 10
-- (3,000 sampled rows) is enough for the estimates that matter here (rows per source, per
-- range) and keeps a large chunk to a few tens of ms; the commit leaves the rows counted as
-- modified, so autovacuum analyzes again at the full target afterwards. Returns the tables
-- analyzed.
DROP FUNCTION IF EXISTS pipeline.analyze_written();
CREATE OR REPLACE FUNCTION pipeline.analyze_written(p_before jsonb DEFAULT NULL)
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET default_statistics_target = 10
AS $$
DECLARE
  v_done text[] := '{}';
  r      record;
BEGIN
  FOR r IN
    SELECT t.schemaname, t.relname
    FROM pg_stat_xact_user_tables t
    JOIN pg_class c ON c.oid = t.relid
    CROSS JOIN LATERAL (SELECT pg_relation_size(t.relid)
                                 / current_setting('block_size')::bigint AS pages) n
    WHERE t.n_tup_ins + t.n_tup_upd > 0
      AND pg_has_role(c.relowner, 'USAGE')        -- ANALYZE skips what we do not own
      AND c.relpersistence <> 't'   -- a stage's temporary tables are its own affair
      AND (n.pages - CASE WHEN c.reltuples < 0 THEN 0 ELSE c.relpages END
             >= greatest(16, least(256, c.relpages / 10))
           OR (p_before IS NOT NULL
               AND t.n_tup_ins + t.n_tup_upd - coalesce((p_before ->> t.relid::text)::bigint, 0)
                   >= greatest(1000, c.reltuples / 10)))
    ORDER BY t.relid
  LOOP
    EXECUTE format('ANALYZE %I.%I', r.schemaname, r.relname);
    v_done := v_done || format('%I.%I', r.schemaname, r.relname);
  END LOOP;
  RETURN v_done;
END
$$;

-- ======================================================================= tick
-- The current watermark of a source: the oldest over its enabled stages (NULL: never run).
-- Ingest compares late data with this to write ingest.dirty_ranges.
CREATE OR REPLACE FUNCTION pipeline.watermark(p_source bigint) RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN count(w.watermark) = count(*) THEN min(w.watermark) END
  FROM pipeline.stages st
  LEFT JOIN features.watermarks w ON w.stage = st.name AND w.source_id = p_source
  WHERE st.enabled
$$;

-- A source's range is worked in three steps, each a function: tick_plan (what to do),
-- tick_stage (one stage over the planned range; its outputs and its watermark), tick_finish
-- (consume the dirty ranges the plan saw, log the run). pipeline.tick_source runs all three
-- in one transaction; parallel lanes (workers/pipeline/lanes.py) commit after each step, so
-- that two sources sharing a chunk never wait for each other's whole range (docs/pipeline.md,
-- "Parallel lanes"). Every stage keeps its own watermark, so a range stopped between stages
-- resumes at the next stage on the next tick.

-- The plan of one source's range: NULL when there is nothing to do, else {source_id,
-- started, to, target, low_wm, dirty (range ids), dirty_lo}. Writes nothing. The steps
-- after it take the project from the source.
CREATE OR REPLACE FUNCTION pipeline.tick_plan(p_source bigint, p_until_idle boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project  uuid;
  v_newest   timestamptz;
  v_oldest   timestamptz;
  v_low_wm   timestamptz;   -- oldest stage watermark (NULL: some stage never ran)
  v_high_wm  timestamptz;
  v_target   timestamptz;
  v_to       timestamptz;
  v_dirty    bigint[];
  v_dirty_lo timestamptz;
  v_ended    timestamptz;
BEGIN
  SELECT s.project_id, s.ended_at INTO v_project, v_ended
  FROM ingest.sources s WHERE s.source_id = p_source;
  SELECT max(p.ts), min(p.ts) INTO v_newest, v_oldest
  FROM ingest.track_points p WHERE p.source_id = p_source;
  SELECT array_agg(d.range_id ORDER BY d.range_id), min(d.from_ts) INTO v_dirty, v_dirty_lo
  FROM ingest.dirty_ranges d WHERE d.source_id = p_source;
  IF v_newest IS NULL AND v_dirty IS NULL THEN
    RETURN NULL;
  END IF;

  v_low_wm := pipeline.watermark(p_source);
  SELECT max(w.watermark) INTO v_high_wm
  FROM features.watermarks w JOIN pipeline.stages sg ON sg.name = w.stage AND sg.enabled
  WHERE w.source_id = p_source;

  -- An ended recording (ingest.sources.ended_at, nothing after it) waits for nothing more:
  -- its last settle_s seconds are processed by the scheduled ticks too.
  v_target := CASE WHEN p_until_idle OR v_newest <= v_ended THEN v_newest
                   ELSE v_newest - make_interval(secs => pipeline.setting_float(v_project, 'settle_s'))
              END;
  v_to := least(v_target, coalesce(v_low_wm, v_oldest)
                          + make_interval(secs => pipeline.setting_float(v_project, 'tick_max_span_s')));
  -- Never move a watermark back; dirty ranges are re-computed up to the newest watermark.
  v_to := greatest(v_to, v_high_wm);
  IF v_to IS NULL OR (v_dirty IS NULL AND v_low_wm IS NOT NULL AND v_to <= v_low_wm) THEN
    RETURN NULL;
  END IF;
  RETURN jsonb_build_object('source_id', p_source, 'started', clock_timestamp(), 'to', v_to, 'target', v_target,
                            'low_wm', v_low_wm, 'dirty', coalesce(to_jsonb(v_dirty), '[]'),
                            'dirty_lo', v_dirty_lo);
END
$$;

-- The kinematics chunks a planned range will write, created before the stages run
-- (pipeline.run_source calls it in its plan step, which commits right after it).
-- TimescaleDB serialises chunk creation: the transaction that creates a chunk holds the
-- hypertable's lock until it commits, so a kinematics stage that created its day's chunk
-- would make every other lane writing that day wait for its whole stage (at each new day
-- of live data, and throughout a backfill of new days). Here the wait is this short transaction. A chunk is made only for
-- a day (chunk interval) in which the source has points in the range: an empty row is
-- inserted and deleted again, never visible to anyone, and leaves an empty chunk behind.
-- Returns the chunks created. pipeline.tick (one transaction) does not need it.
CREATE OR REPLACE FUNCTION pipeline.prepare_chunks(p_plan jsonb) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_source   bigint := (p_plan ->> 'source_id')::bigint;
  v_to       timestamptz := (p_plan ->> 'to')::timestamptz;
  v_low_wm   timestamptz := (p_plan ->> 'low_wm')::timestamptz;
  v_dirty_lo timestamptz := (p_plan ->> 'dirty_lo')::timestamptz;
  v_from     timestamptz;
  v_step_s   double precision;
  v_day      timestamptz;
  v_chunk    regclass;
  v_row      tid;
  v_made     integer := 0;
BEGIN
  -- the lowest point any stage may read (tick_stage's own start, from the oldest stage
  -- watermark: a stage that never ran starts at -infinity)
  v_from := least(coalesce(v_low_wm, '-infinity'), v_dirty_lo)
            - make_interval(secs => pipeline.overlap_s(v_source));
  SELECT extract(epoch FROM d.time_interval) INTO v_step_s
  FROM timescaledb_information.dimensions d
  WHERE d.hypertable_schema = 'features' AND d.hypertable_name = 'kinematics'
    AND d.column_name = 'ts';
  -- the days of the points' own chunks that overlap the range (chunk ranges are multiples
  -- of the interval counted from the Unix epoch), less those with a kinematics chunk, and
  -- those without a point of this source in the range
  FOR v_day IN
    SELECT d.day
    FROM (SELECT DISTINCT day
          FROM timescaledb_information.chunks c
          CROSS JOIN LATERAL generate_series(
            to_timestamp(floor(extract(epoch FROM greatest(c.range_start, v_from)) / v_step_s) * v_step_s),
            least(c.range_end, v_to), make_interval(secs => v_step_s)) AS day
          WHERE c.hypertable_schema = 'ingest' AND c.hypertable_name = 'track_points'
            AND c.range_end > v_from AND c.range_start <= v_to) d
    WHERE NOT EXISTS (
            SELECT FROM timescaledb_information.chunks k
            WHERE k.hypertable_schema = 'features' AND k.hypertable_name = 'kinematics'
              AND k.range_start <= d.day AND k.range_end > d.day)
      AND EXISTS (
            SELECT FROM ingest.track_points p
            WHERE p.source_id = v_source
              AND p.ts >= greatest(d.day, v_from) AND p.ts <= v_to
              AND p.ts < d.day + make_interval(secs => v_step_s))
    ORDER BY d.day
  LOOP
    INSERT INTO features.kinematics AS k (project_id, source_id, track_id, frame, ts, segment, x, y)
    SELECT s.project_id, v_source, '', 0, v_day, 0, 0, 0
    FROM ingest.sources s WHERE s.source_id = v_source
    RETURNING k.tableoid::regclass, k.ctid INTO v_chunk, v_row;
    EXECUTE format('DELETE FROM %s WHERE ctid = $1', v_chunk) USING v_row;
    v_made := v_made + 1;
  END LOOP;
  RETURN v_made;
END
$$;

-- One stage of a planned range: run it over [its watermark (or the oldest dirty range) less
-- the overlap, the plan's to], advance its watermark, then analyze what this transaction
-- wrote when a later stage will read it (p_analyze: pipeline.analyze_written; every stage
-- is planned on statistics that include what the earlier ones wrote). Returns {stage,
-- rows, ms, from, analyzed, analyze_ms}, or {stage, skipped: true} when the stage is
-- already past the range.
CREATE OR REPLACE FUNCTION pipeline.tick_stage(p_plan jsonb, p_stage text, p_analyze boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '256MB'
-- The stage statements are costed far above jit_above_cost (no statistics yet, disabled
-- join methods); compiling them costs more than running them.
SET jit = off
AS $$
DECLARE
  v_source   bigint := (p_plan ->> 'source_id')::bigint;
  v_to       timestamptz := (p_plan ->> 'to')::timestamptz;
  v_dirty_lo timestamptz := (p_plan ->> 'dirty_lo')::timestamptz;
  v_function regprocedure;
  v_from     timestamptz;
  v_rows     bigint;
  v_t0       timestamptz;
  v_ms       numeric;
  v_analyzed text[] := '{}';
  v_before   jsonb;
BEGIN
  SELECT s.function INTO v_function FROM pipeline.stages s WHERE s.name = p_stage AND s.enabled;
  IF v_function IS NULL THEN
    RAISE EXCEPTION 'pipeline stage % is not registered or not enabled', p_stage;
  END IF;
  SELECT w.watermark INTO v_from
  FROM features.watermarks w WHERE w.source_id = v_source AND w.stage = p_stage;
  IF v_from IS NOT NULL AND v_from >= v_to AND v_dirty_lo IS NULL THEN
    RETURN jsonb_build_object('stage', p_stage, 'skipped', true);
  END IF;
  v_from := least(coalesce(v_from, '-infinity'), v_dirty_lo)
            - make_interval(secs => pipeline.overlap_s(v_source));
  v_before := pipeline.written_counts();
  v_t0 := clock_timestamp();
  EXECUTE format('SELECT %s($1, $2, $3)', v_function::regproc) INTO v_rows
    USING v_source, v_from, v_to;
  v_ms := round((extract(epoch FROM clock_timestamp() - v_t0) * 1000)::numeric, 1);
  INSERT INTO features.watermarks AS w (project_id, source_id, stage, watermark, updated_at)
  SELECT s.project_id, v_source, p_stage, v_to, clock_timestamp()
  FROM ingest.sources s WHERE s.source_id = v_source
  ON CONFLICT (source_id, stage)
    DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at;
  v_t0 := clock_timestamp();
  IF p_analyze THEN
    v_analyzed := pipeline.analyze_written(v_before);
  END IF;
  RETURN jsonb_build_object(
    'stage', p_stage, 'rows', v_rows, 'ms', v_ms, 'from', v_from,
    'analyzed', to_jsonb(v_analyzed),
    'analyze_ms', round((extract(epoch FROM clock_timestamp() - v_t0) * 1000)::numeric, 1));
END
$$;

-- The end of a planned range: the dirty ranges the plan saw are consumed (ranges that
-- arrived since wait for the next tick), the run is logged. p_stages: tick_stage's results
-- in order. Returns what pipeline.tick reports per source.
CREATE OR REPLACE FUNCTION pipeline.tick_finish(p_plan jsonb, p_stages jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_source   bigint := (p_plan ->> 'source_id')::bigint;
  v_to       timestamptz := (p_plan ->> 'to')::timestamptz;
  v_low_wm   timestamptz := (p_plan ->> 'low_wm')::timestamptz;
  v_dirty    bigint[] := ARRAY(SELECT e::bigint FROM jsonb_array_elements_text(
                           CASE jsonb_typeof(p_plan -> 'dirty') WHEN 'array'
                                THEN p_plan -> 'dirty' ELSE '[]' END) e);
  v_stats    jsonb := '{}';
  v_ms       jsonb := '{}';
  v_analyzed text[] := '{}';
  v_min_from timestamptz;
  v_anal_ms  numeric := 0;
  v_points   bigint;
  v_project  uuid;
  v_seconds  double precision;
  st         jsonb;
BEGIN
  FOR st IN SELECT e FROM jsonb_array_elements(coalesce(p_stages, '[]')) e LOOP
    CONTINUE WHEN (st ->> 'skipped')::boolean IS TRUE;
    v_stats := v_stats || jsonb_build_object(st ->> 'stage', (st ->> 'rows')::bigint);
    v_ms := v_ms || jsonb_build_object(st ->> 'stage', (st ->> 'ms')::numeric);
    v_analyzed := v_analyzed || ARRAY(SELECT jsonb_array_elements_text(st -> 'analyzed'));
    v_anal_ms := v_anal_ms + coalesce((st ->> 'analyze_ms')::numeric, 0);
    v_min_from := least(v_min_from, (st ->> 'from')::timestamptz);
  END LOOP;
  IF v_ms <> '{}' THEN
    -- Not a stage: the tick's own ANALYZE of what the stages wrote (pipeline.analyze_written).
    v_ms := v_ms || jsonb_build_object('analyze', round(v_anal_ms, 1));
  END IF;
  DELETE FROM ingest.dirty_ranges d WHERE d.range_id = ANY (v_dirty);
  PERFORM pipeline.source_recovered(v_source);
  SELECT count(*) INTO v_points FROM ingest.track_points p
  WHERE p.source_id = v_source AND p.ts > coalesce(v_low_wm, '-infinity') AND p.ts <= v_to;
  -- Metering (sql/240_billing_usage.sql): the source time this range processed for the first
  -- time, past the end of every earlier range of the source (reprocessing old time, a
  -- re-run range or a newly added stage adds 0), once per range end.
  SELECT s.project_id, extract(epoch FROM v_to - coalesce(
           -- watermarks never move back: the latest range ended furthest (runs_source_idx)
           (SELECT r.to_ts FROM pipeline.runs r
            WHERE r.source_id = v_source AND r.status = 'ok'
            ORDER BY r.started_at DESC LIMIT 1),
           (SELECT min(p.ts) FROM ingest.track_points p WHERE p.source_id = v_source)))
    INTO v_project, v_seconds
  FROM ingest.sources s WHERE s.source_id = v_source;
  IF v_seconds > 0 THEN
    PERFORM billing.count(v_project, 'source_seconds', ceil(v_seconds)::bigint,
                          'range:' || v_source || ':'
                          || (extract(epoch FROM v_to) * 1e6)::bigint);
  END IF;
  INSERT INTO pipeline.runs (project_id, source_id, started_at, from_ts, to_ts, points, dirty,
                             status, stats)
  SELECT s.project_id, v_source, (p_plan ->> 'started')::timestamptz,
         v_min_from, v_to, v_points, cardinality(v_dirty), 'ok',
         v_stats || jsonb_build_object('ms', v_ms, 'analyzed', to_jsonb(v_analyzed))
  FROM ingest.sources s WHERE s.source_id = v_source;
  RETURN jsonb_build_object('source_id', v_source, 'status', 'ok', 'from', v_min_from,
                            'to', v_to, 'points', v_points,
                            'dirty', cardinality(v_dirty), 'rows', v_stats,
                            'ms', v_ms, 'analyzed', to_jsonb(v_analyzed),
                            'more', v_to < (p_plan ->> 'target')::timestamptz);
END
$$;

-- The advisory lock of one source's range (class 388128: secinf's pipeline, one key per
-- source). pipeline.tick takes it for its transaction; a lane holds it for its session
-- across the steps of a range, so one backend at a time works a source.
CREATE OR REPLACE FUNCTION pipeline.source_lock_key(p_source bigint) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (p_source % 2147483647)::integer $$;

-- A lane's claim on a source for one step's transaction: the source row FOR UPDATE, which
-- conflicts with the KEY SHARE lock an open ingest batch holds (as pipeline.tick's loop
-- does), so a step never sees half a batch. False: a batch is open, try later.
CREATE OR REPLACE FUNCTION pipeline.claim_source(p_source bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- a tick is redoable work (see pipeline.tick): this transaction only
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM 1 FROM ingest.sources s WHERE s.source_id = p_source FOR UPDATE SKIP LOCKED;
  RETURN FOUND;
END
$$;

-- ======================================================================= failing sources
-- A source whose range fails is rolled back (pipeline.tick's savepoint, a lane's step),
-- logged in pipeline.runs and recorded in pipeline.source_failures (stage, SQLSTATE,
-- message, failures in a row, first and last failure); pipeline.tick() and the lanes leave
-- it alone until its retry_at, and its next success deletes the record. Every other
-- source goes on in the same run (docs/pipeline.md, "Failing sources").

-- Whether an error belongs to the source being worked (recorded, the source backed off)
-- rather than to the whole run, which raises on: insufficient resources (53: out of
-- memory, disk full), operator intervention (57: shutdown, cancel; a statement timeout,
-- 57014, is not even caught by WHEN OTHERS) and system errors (58: I/O).
CREATE OR REPLACE FUNCTION pipeline.is_source_error(p_sqlstate text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(left(p_sqlstate, 2) NOT IN ('53', '57', '58'), true) $$;

-- How long a source that has failed p_failures times in a row waits before a tick tries it
-- again: 1 minute after the first failure, doubling with each further one (2, 4, 8, 16,
-- 32 min), at most 1 hour from the seventh on.
CREATE OR REPLACE FUNCTION pipeline.retry_delay(p_failures bigint) RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT make_interval(secs => least(3600, 60 * power(2, least(greatest(p_failures, 1) - 1, 6))))
$$;

-- A failed source: logged in pipeline.runs after its work was rolled back, its failure
-- recorded (or counted once more) with its next retry time. p_stage: plan, a stage's name
-- or finish (NULL: unknown). Returns what pipeline.tick reports for it.
DROP FUNCTION IF EXISTS pipeline.tick_failed(bigint, text);
CREATE OR REPLACE FUNCTION pipeline.tick_failed(p_source bigint, p_error text,
                                                p_sqlstate text, p_stage text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_now  timestamptz := clock_timestamp();
  v_fail pipeline.source_failures;
BEGIN
  INSERT INTO pipeline.runs (project_id, source_id, started_at, status, error)
  SELECT s.project_id, s.source_id, v_now, 'error', p_error
  FROM ingest.sources s WHERE s.source_id = p_source;
  INSERT INTO pipeline.source_failures AS f (source_id, project_id, stage, sqlstate, error,
                                             failures, first_failed_at, last_failed_at,
                                             retry_at)
  SELECT s.source_id, s.project_id, p_stage, coalesce(p_sqlstate, 'XX000'),
         coalesce(p_error, ''), 1, v_now, v_now, v_now + pipeline.retry_delay(1)
  FROM ingest.sources s WHERE s.source_id = p_source
  ON CONFLICT (source_id) DO UPDATE
    SET stage = excluded.stage, sqlstate = excluded.sqlstate, error = excluded.error,
        failures = f.failures + 1, last_failed_at = excluded.last_failed_at,
        retry_at = excluded.last_failed_at + pipeline.retry_delay(f.failures + 1)
  RETURNING * INTO v_fail;
  RETURN jsonb_build_object('source_id', p_source, 'status', 'error', 'error', p_error,
                            'stage', p_stage, 'sqlstate', p_sqlstate,
                            'failures', v_fail.failures, 'retry_at', v_fail.retry_at,
                            'more', false);
END
$$;

-- A source that worked (or has nothing left to do) is no longer failing: its record goes.
CREATE OR REPLACE FUNCTION pipeline.source_recovered(p_source bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ DELETE FROM pipeline.source_failures f WHERE f.source_id = p_source $$;

-- Make failing sources due now: the next tick (scheduled or not) tries them instead of
-- waiting for their retry time (`secinf pipeline retry`; a customer's pipeline_run job for
-- its source). p_source NULL: every failing source. Returns the sources made due.
CREATE OR REPLACE FUNCTION pipeline.retry_source(p_source bigint DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE pipeline.source_failures f SET retry_at = now()
  WHERE (p_source IS NULL OR f.source_id = p_source) AND f.retry_at > now()
  RETURNING f.source_id
$$;

-- One source, one savepoint: plan, every enabled stage, finish. Returns NULL when there
-- is nothing to do. A source error (pipeline.is_source_error) rolls the source's work back
-- to the savepoint and is recorded (pipeline.tick_failed, with the step that failed); any
-- other error raises.
CREATE OR REPLACE FUNCTION pipeline.tick_source(p_source bigint, p_until_idle boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_plan   jsonb;
  v_stages jsonb := '[]';
  v_last   integer;
  v_step   text := 'plan';    -- a local variable keeps its value when the block rolls back
  v_error  text;
  v_state  text;
  st       record;
BEGIN
  BEGIN
    v_plan := pipeline.tick_plan(p_source, p_until_idle);
    IF v_plan IS NULL THEN
      PERFORM pipeline.source_recovered(p_source);
      RETURN NULL;
    END IF;
    SELECT max(s.position) INTO v_last FROM pipeline.stages s WHERE s.enabled;
    FOR st IN SELECT s.name, s.position FROM pipeline.stages s WHERE s.enabled
              ORDER BY s.position LOOP
      v_step := st.name;
      v_stages := v_stages || jsonb_build_array(
        pipeline.tick_stage(v_plan, st.name, st.position < v_last));
    END LOOP;
    v_step := 'finish';
    RETURN pipeline.tick_finish(v_plan, v_stages);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
    IF NOT pipeline.is_source_error(v_state) THEN
      RAISE;
    END IF;
  END;
  RETURN pipeline.tick_failed(p_source, v_error, v_state, v_step);
END
$$;

-- Run the pipeline once over every source that is not being ingested right now and is not
-- waiting for its retry time after a failure (pipeline.retry_source makes one due). Two
-- ticks never overlap: the second returns {"busy": true} at once. A failing source is
-- rolled back to its savepoint and recorded (pipeline.tick_source), and the others go on.
CREATE OR REPLACE FUNCTION pipeline.tick(p_until_idle boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '256MB'
-- The stage statements are costed far above jit_above_cost (no statistics yet, disabled
-- join methods); compiling them costs more than running them.
SET jit = off
AS $$
DECLARE
  v_results jsonb := '[]';
  v_one     jsonb;
  s         record;
BEGIN
  -- 0x5EC1F: secinf's advisory-lock class; 1: the pipeline tick.
  IF NOT pg_try_advisory_xact_lock(388127, 1) THEN
    RETURN jsonb_build_object('busy', true, 'sources', '[]'::jsonb, 'more', false);
  END IF;
  -- A tick is redoable work: its outputs and the watermarks that cover them commit together,
  -- so a crash that loses the last commit only makes the next tick redo it. Until the end
  -- of this transaction only.
  PERFORM set_config('synchronous_commit', 'off', true);
  -- FOR UPDATE conflicts with the KEY SHARE lock an open ingest batch holds on its source
  -- row (through the batches foreign key): such a source waits for the next tick, so a
  -- batch is never half seen and ingest reads the watermark only after the tick commits.
  FOR s IN SELECT src.source_id, src.project_id FROM ingest.sources src
           WHERE NOT EXISTS (SELECT FROM pipeline.source_failures f
                             WHERE f.source_id = src.source_id AND f.retry_at > now())
           ORDER BY src.source_id FOR UPDATE OF src SKIP LOCKED LOOP
    -- a parallel lane is working this source's range: the next tick gets it
    CONTINUE WHEN NOT pg_try_advisory_xact_lock(388128, pipeline.source_lock_key(s.source_id));
    v_one := pipeline.tick_source(s.source_id, p_until_idle);
    IF v_one IS NOT NULL THEN
      v_results := v_results || jsonb_build_array(v_one);
    END IF;
  END LOOP;
  RETURN jsonb_build_object(
    'busy', false, 'sources', v_results,
    'more', coalesce((SELECT bool_or((r ->> 'more')::boolean) FROM jsonb_array_elements(v_results) r),
                     false));
END
$$;

-- One source's work, step by step with a COMMIT after every step (claim and plan, each
-- enabled stage, finish), under the source's advisory lock for this session, so that one
-- backend at a time works it (pipeline.tick and other lanes leave it alone). A failing
-- step is rolled back and recorded (pipeline.tick_failed, with the step), and only this
-- source stops; a source held by an open ingest batch waits for the next tick. An error
-- that is not the source's (pipeline.is_source_error) raises. With p_until_idle, ranges
-- follow each other until the source has no more, or until p_deadline (NULL: none) has
-- passed between two ranges. A source that has a run logged since p_since (NULL: never
-- skip) was worked by another lane of the same set and is left alone.
-- p_results: NULL when another backend holds the source or p_since skipped it, else what
-- pipeline.tick reports per source, one element per range ('[]': nothing to do). The
-- unit of work of lanes (pipeline.run_lane) and of pipeline_tick_source jobs
-- (pipeline.schedule_sources). SECURITY INVOKER and no SET clause: a procedure with either
-- cannot COMMIT; run it as `pipeline`, outside a transaction block.
CREATE OR REPLACE PROCEDURE pipeline.run_source(p_source bigint,
                                                p_until_idle boolean DEFAULT true,
                                                p_since timestamptz DEFAULT NULL,
                                                p_deadline timestamptz DEFAULT NULL,
                                                INOUT p_results jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
  v_names    text[];
  v_pos      integer[];
  v_max      integer;
  v_plan     jsonb;
  v_done     jsonb;
  v_one      jsonb;
  v_error    text;
  v_state    text;
  v_go       boolean;
  i          integer;
BEGIN
  p_results := NULL;
  IF NOT pg_catalog.pg_try_advisory_lock(388128, pipeline.source_lock_key(p_source)) THEN
    RETURN;
  END IF;
  -- another lane of the same set (started at p_since) has worked it already
  IF p_since IS NOT NULL AND EXISTS (SELECT 1 FROM pipeline.runs r
                                     WHERE r.source_id = p_source AND r.finished_at >= p_since) THEN
    PERFORM pg_catalog.pg_advisory_unlock(388128, pipeline.source_lock_key(p_source));
    COMMIT;
    RETURN;
  END IF;
  p_results := '[]';
  LOOP
    v_one := NULL;
    v_go := true;
    BEGIN
      v_plan := NULL;
      IF pipeline.claim_source(p_source) THEN
        v_plan := pipeline.tick_plan(p_source, p_until_idle);
        IF v_plan IS NULL THEN
          PERFORM pipeline.source_recovered(p_source);     -- nothing left to do
        END IF;
      END IF;
      SELECT array_agg(s.name ORDER BY s.position), array_agg(s.position ORDER BY s.position),
             max(s.position)
        INTO v_names, v_pos, v_max
      FROM pipeline.stages s WHERE s.enabled;
      -- the range's new kinematics chunks, committed with the plan before any stage
      -- writes them (pipeline.prepare_chunks: another lane on the same day need not wait
      -- for a whole stage)
      IF v_plan IS NOT NULL AND 'kinematics' = ANY (v_names) THEN
        PERFORM pipeline.prepare_chunks(v_plan);
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
      IF NOT pipeline.is_source_error(v_state) THEN
        RAISE;
      END IF;
      v_one := pipeline.tick_failed(p_source, v_error, v_state, 'plan');
    END;
    COMMIT;
    IF v_one IS NOT NULL THEN
      p_results := p_results || jsonb_build_array(v_one);
      EXIT;
    END IF;
    EXIT WHEN v_plan IS NULL;
    v_done := '[]';
    FOR i IN 1 .. coalesce(cardinality(v_names), 0) LOOP
      BEGIN
        IF pipeline.claim_source(p_source) THEN
          v_done := v_done || jsonb_build_array(
            pipeline.tick_stage(v_plan, v_names[i], v_pos[i] < v_max));
        ELSE
          v_go := false;               -- an ingest batch is open: the next tick goes on
        END IF;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
        IF NOT pipeline.is_source_error(v_state) THEN
          RAISE;
        END IF;
        v_one := pipeline.tick_failed(p_source, v_error, v_state, v_names[i]);
      END;
      COMMIT;
      EXIT WHEN v_one IS NOT NULL OR NOT v_go;
    END LOOP;
    IF v_one IS NULL AND v_go THEN
      BEGIN
        v_one := CASE WHEN pipeline.claim_source(p_source)
                      THEN pipeline.tick_finish(v_plan, v_done) END;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
        IF NOT pipeline.is_source_error(v_state) THEN
          RAISE;
        END IF;
        v_one := pipeline.tick_failed(p_source, v_error, v_state, 'finish');
      END;
      COMMIT;
    END IF;
    IF v_one IS NOT NULL THEN
      p_results := p_results || jsonb_build_array(v_one);
    END IF;
    EXIT WHEN v_one IS NULL OR v_one ->> 'status' <> 'ok' OR NOT p_until_idle
              OR NOT (v_one ->> 'more')::boolean
              OR clock_timestamp() > coalesce(p_deadline, 'infinity');
  END LOOP;
  PERFORM pg_catalog.pg_advisory_unlock(388128, pipeline.source_lock_key(p_source));
  COMMIT;
END
$$;

-- One parallel lane: every source in turn that no other backend holds, each worked by
-- pipeline.run_source. Several lanes at once share the sources out by their locks
-- (secinf tick --parallel N runs N; pg_cron may run several). A source waiting for its
-- retry time after a failure is left alone. With p_until_idle, a source is worked until it
-- has no more; p_budget_s (NULL: none) stops the lane between sources. A source that has a
-- run logged since p_since (default: the lane's start) was worked by another lane of the
-- same set and is left alone, a failing one included. p_results: what pipeline.tick
-- reports per source, one element per range. Run it as `pipeline` (no SET clause: a
-- procedure with one cannot COMMIT).
CREATE OR REPLACE PROCEDURE pipeline.run_lane(p_until_idle boolean DEFAULT false,
                                              p_budget_s double precision DEFAULT 50,
                                              p_since timestamptz DEFAULT NULL,
                                              INOUT p_results jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
  v_deadline timestamptz := clock_timestamp() + make_interval(secs => coalesce(p_budget_s, 1e9));
  v_since    timestamptz := coalesce(p_since, clock_timestamp());
  v_sources  bigint[];
  v_source   bigint;
  v_one      jsonb;
BEGIN
  p_results := '[]';
  SELECT array_agg(s.source_id ORDER BY s.source_id) INTO v_sources FROM ingest.sources s
  WHERE NOT EXISTS (SELECT FROM pipeline.source_failures f
                    WHERE f.source_id = s.source_id AND f.retry_at > now());
  COMMIT;
  FOREACH v_source IN ARRAY coalesce(v_sources, '{}') LOOP
    EXIT WHEN clock_timestamp() > v_deadline;
    v_one := NULL;
    CALL pipeline.run_source(v_source, p_until_idle, v_since, NULL, v_one);
    p_results := p_results || coalesce(v_one, '[]');
  END LOOP;
END
$$;

-- What pg_cron calls every minute. In queue mode (pipeline.scheduled_mode, sql/620) it
-- only queues a pipeline_tick_source job per source with work. Otherwise: ticks (each its own transaction) until idle or 50 s
-- have passed. A failing source is recorded and backed off by the tick (pipeline.
-- tick_source) while the others go on, so one tenant's source never fails the job: it
-- ends with a WARNING naming the failed sources (the server log). Errors that are not a
-- source's (pipeline.is_source_error) still raise. (No SET clause: a procedure with one
-- cannot COMMIT; every name is schema-qualified.)
CREATE OR REPLACE PROCEDURE pipeline.run_scheduled(p_budget_s double precision DEFAULT 50)
LANGUAGE plpgsql
AS $$
DECLARE
  v_deadline timestamptz := clock_timestamp() + make_interval(secs => p_budget_s);
  v_result   jsonb;
  v_errors   text;
  v_failed   text[] := '{}';
BEGIN
  -- In queue mode the workers tick: hand them the sources with work (sql/620).
  IF pipeline.scheduled_mode() = 'queue' THEN
    PERFORM pipeline.schedule_sources();
    RETURN;
  END IF;
  LOOP
    v_result := pipeline.tick(false);
    SELECT string_agg(format('source %s (%s, try %s again at %s): %s', r ->> 'source_id',
                             coalesce(r ->> 'stage', '?'), r ->> 'failures',
                             r ->> 'retry_at', r ->> 'error'), '; ')
      INTO v_errors
    FROM jsonb_array_elements(v_result -> 'sources') r WHERE r ->> 'status' = 'error';
    COMMIT;
    IF v_errors IS NOT NULL THEN
      v_failed := v_failed || v_errors;
    END IF;
    EXIT WHEN (v_result ->> 'busy')::boolean OR NOT (v_result ->> 'more')::boolean
              OR clock_timestamp() > v_deadline;
  END LOOP;
  IF cardinality(v_failed) > 0 THEN
    RAISE WARNING 'pipeline: failing sources were backed off: %',
      pg_catalog.array_to_string(v_failed, '; ')
      USING HINT = 'SELECT * FROM pipeline.status WHERE failures > 0 (or `secinf pipeline '
                   'status`) lists them; pipeline.retry_source(id) retries one now.';
  END IF;
END
$$;

-- ======================================================================= status
-- Per source: watermark, newest data, lag, pending dirty ranges, last run and last error,
-- and, while it is failing (pipeline.source_failures), how often in a row, since when, in
-- which step, the SQLSTATE and when a tick tries it again (failures 0: healthy).
DROP VIEW IF EXISTS pipeline.status;
CREATE VIEW pipeline.status WITH (security_invoker = true) AS
SELECT s.project_id, s.source_id, s.name AS source,
       pipeline.watermark(s.source_id) AS watermark,
       n.newest,
       n.newest - pipeline.watermark(s.source_id) AS lag,
       (SELECT count(*) FROM ingest.dirty_ranges d WHERE d.source_id = s.source_id) AS dirty_pending,
       r.finished_at AS last_run_at, r.status AS last_status, r.points AS last_points,
       e.finished_at AS last_error_at, e.error AS last_error,
       coalesce(f.failures, 0) AS failures, f.first_failed_at AS failing_since,
       f.stage AS failed_stage, f.sqlstate AS failed_sqlstate, f.retry_at
FROM ingest.sources s
LEFT JOIN LATERAL (SELECT max(p.ts) AS newest FROM ingest.track_points p
                   WHERE p.source_id = s.source_id) n ON true
LEFT JOIN LATERAL (SELECT * FROM pipeline.runs r WHERE r.source_id = s.source_id
                   ORDER BY r.run_id DESC LIMIT 1) r ON true
LEFT JOIN LATERAL (SELECT * FROM pipeline.runs r WHERE r.source_id = s.source_id
                     AND r.status = 'error' ORDER BY r.run_id DESC LIMIT 1) e ON true
LEFT JOIN pipeline.source_failures f ON f.source_id = s.source_id;
