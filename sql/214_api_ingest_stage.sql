-- The api schema, ingest: validation of a batch's points and staging of the valid ones.
--
-- The checks are workers/ingest/checks.py's table, which workers/ingest/validate.py runs for
-- the CLI (one batch = one chunk), read from ingest.api_checks() (sql/213, generated): per
-- item unparseable, missing, type, not_finite, negative_frame, out_of_bounds, out_of_range;
-- then duplicate_key (track, frame) in the batch, frame_time_mismatch (one t per frame),
-- time_not_increasing (t increases with frame) and implausible_speed (after the source's
-- transform). A transform that maps a point off the ground refuses the whole batch
-- (ingest.api_check_ground, sql/211_api_ingest_ground.sql).

-- ======================================================================= row checks
-- The table's row checks (ingest.api_checks, from workers/ingest/checks.py) on
-- pg_temp.api_ingest_items, their errors into pg_temp.api_ingest_errors: each test
-- evaluated as validate.py's row_hit evaluates it; messages only for the hits. NaN is only
-- not_finite: it compares above every number (in Polars too), hence the guards.
CREATE OR REPLACE FUNCTION ingest.api_row_errors(p_fps double precision, p_words jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  INSERT INTO api_ingest_errors (row_no, col, code, message, seq)
  SELECT i.row_no, c.col, c.code,
         ingest.api_message(c.message, p_words || jsonb_build_object(
           'column', c.col, 'value', f.v::text, 'abs', abs(f.v)::text,
           'no_fps', CASE WHEN p_fps IS NULL THEN p_words ->> 'no_fps' ELSE '' END)), c.seq
  FROM api_ingest_items i
  CROSS JOIN ingest.api_checks() c
  CROSS JOIN LATERAL (SELECT CASE c.col WHEN 'frame' THEN i.frame WHEN 't' THEN i.t
                                        WHEN 'x' THEN i.x WHEN 'y' THEN i.y
                                        WHEN 'confidence' THEN i.confidence END AS v,
                             CASE c.col WHEN 'frame' THEN i.has_frame WHEN 't' THEN i.has_t
                                        WHEN 'x' THEN i.has_x WHEN 'y' THEN i.has_y
                                        WHEN 'confidence' THEN i.has_confidence END AS has) f
  WHERE c.kind = 'row' AND CASE c.test
    WHEN 'not_object' THEN NOT i.is_obj
    WHEN 'blank' THEN i.is_obj AND coalesce(i.track_id, '') ~ '^\s*$'
    WHEN 'not_number' THEN f.has AND f.v IS NULL
    WHEN 'absent' THEN i.is_obj AND NOT f.has AND f.v IS NULL
    WHEN 'not_finite' THEN f.v IN ('NaN', 'Infinity', '-Infinity')
    WHEN 'not_integer' THEN f.v NOT IN ('NaN', 'Infinity', '-Infinity') AND f.v <> floor(f.v)
    WHEN 'below' THEN f.v < c.bound
    WHEN 'at_least' THEN f.v >= c.bound AND f.v <> 'NaN'
    WHEN 'abs_at_least' THEN abs(f.v) >= c.bound AND f.v <> 'NaN'
    WHEN 'finite_abs_at_least' THEN abs(f.v) >= c.bound AND abs(f.v) < 'Infinity'
    WHEN 'outside_unit' THEN f.v <> 'NaN' AND (f.v < 0 OR f.v > 1)
  END;
END
$$;

-- ======================================================================= frame checks
-- The batch checks before the transform on the rows that passed the row checks
-- (validate.py's check and _frame_times): duplicate_key, frame_time_mismatch and
-- time_not_increasing, p_batch holding their {code: {seq, col, message}}.
CREATE OR REPLACE FUNCTION ingest.api_frame_errors(p_words jsonb, p_batch jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- The first row of a (track, frame) key wins; later ones are duplicate_key.
  INSERT INTO api_ingest_errors (row_no, col, code, message, seq)
  SELECT d.row_no, p_batch #>> '{duplicate_key,col}', 'duplicate_key',
         ingest.api_message(p_batch #>> '{duplicate_key,message}',
                            jsonb_build_object('track_id', d.track_id, 'frame', d.frame::text)),
         (p_batch #>> '{duplicate_key,seq}')::integer
  FROM (SELECT i.row_no, i.track_id, i.frame::bigint AS frame,
               row_number() OVER (PARTITION BY i.track_id, i.frame::bigint
                                  ORDER BY i.row_no) AS k
        FROM api_ingest_items i
        WHERE NOT EXISTS (SELECT FROM api_ingest_errors e WHERE e.row_no = i.row_no)) d
  WHERE d.k > 1;

  -- One t per frame: the frame's first row sets it; t increases with frame (a frame whose
  -- t is not above every lower frame's t breaks the order).
  WITH good AS (
    SELECT i.row_no, i.frame::bigint AS frame, i.t,
           first_value(i.t) OVER (PARTITION BY i.frame::bigint ORDER BY i.row_no) AS t_ref
    FROM api_ingest_items i
    WHERE NOT EXISTS (SELECT FROM api_ingest_errors e WHERE e.row_no = i.row_no)
  ), frames AS (
    SELECT DISTINCT g.frame, g.t_ref FROM good g
  ), ordered AS (
    SELECT f.frame, f.t_ref <= max(f.t_ref) OVER (ORDER BY f.frame ROWS BETWEEN UNBOUNDED
                                                  PRECEDING AND 1 PRECEDING) AS back
    FROM frames f
  )
  INSERT INTO api_ingest_errors (row_no, col, code, message, seq)
  SELECT g.row_no, p_batch #>> '{frame_time_mismatch,col}', 'frame_time_mismatch',
         ingest.api_message(p_batch #>> '{frame_time_mismatch,message}',
                            jsonb_build_object('frame', g.frame::text, 't', g.t::text,
                                               't_ref', g.t_ref::text)),
         (p_batch #>> '{frame_time_mismatch,seq}')::integer
  FROM good g WHERE abs(g.t - g.t_ref) > (p_words ->> 'time_tolerance')::float8
  UNION ALL
  SELECT g.row_no, p_batch #>> '{time_not_increasing,col}', 'time_not_increasing',
         ingest.api_message(p_batch #>> '{time_not_increasing,message}',
                            jsonb_build_object('frame', g.frame::text, 't', g.t::text)),
         (p_batch #>> '{time_not_increasing,seq}')::integer
  FROM good g JOIN ordered o ON o.frame = g.frame AND o.back
  WHERE abs(g.t - g.t_ref) <= (p_words ->> 'time_tolerance')::float8;
END
$$;

-- ======================================================================= staging
-- Validate a JSON array of points for a source and stage the valid ones (transformed, ts
-- absolute) in pg_temp.api_ingest_stage, the column layout ingest.merge_staged reads.
-- Returns {rows_total, invalid, errors: first 100 {row, column, code, message} by row,
-- error_counts: {code: n}}; rows are 1-based positions in the array.
CREATE OR REPLACE FUNCTION ingest.api_stage_points(p_points jsonb, p_source ingest.sources)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_fps double precision := p_source.fps;
  v_words jsonb := ingest.api_check_words();
  v_limit double precision := (v_words ->> CASE p_source.units WHEN 'm' THEN 'max_speed_m'
                                                                ELSE 'max_speed_px' END)::float8;
  v_batch jsonb := (SELECT jsonb_object_agg(c.code, jsonb_build_object(
                             'seq', c.seq, 'col', c.col, 'message', c.message))
                    FROM ingest.api_checks() c WHERE c.kind = 'batch');
  v_unit text := CASE p_source.units WHEN 'm' THEN 'm/s' ELSE 'px/s' END;
  v_tr jsonb := p_source.transform;
  v_total bigint := jsonb_array_length(p_points);
  v_out jsonb;
BEGIN
  DROP TABLE IF EXISTS pg_temp.api_ingest_items, pg_temp.api_ingest_errors,
                       pg_temp.api_ingest_stage, pg_temp.api_ingest_ground;
  CREATE TEMP TABLE api_ingest_errors (row_no bigint, col text, code text, message text,
                                       seq integer) ON COMMIT DROP;
  CREATE TEMP TABLE api_ingest_stage (
    row_no bigint, track_id text, frame bigint, ts timestamptz, x double precision,
    y double precision, raw_x double precision, raw_y double precision, class text,
    confidence real
  ) ON COMMIT DROP;

  -- Typed values; t from frame / fps where t is absent and the source has an fps.
  CREATE TEMP TABLE api_ingest_items ON COMMIT DROP AS
  SELECT a.n AS row_no, jsonb_typeof(a.item) = 'object' AS is_obj,
         ingest.api_text(a.item -> 'track_id') AS track_id,
         ingest.api_text(a.item -> 'class') AS class,
         coalesce(jsonb_typeof(a.item -> 'frame'), 'null') <> 'null' AS has_frame,
         coalesce(jsonb_typeof(a.item -> 't'), 'null') <> 'null' AS has_t,
         coalesce(jsonb_typeof(a.item -> 'x'), 'null') <> 'null' AS has_x,
         coalesce(jsonb_typeof(a.item -> 'y'), 'null') <> 'null' AS has_y,
         coalesce(jsonb_typeof(a.item -> 'confidence'), 'null') <> 'null' AS has_confidence,
         v.frame,
         CASE WHEN coalesce(jsonb_typeof(a.item -> 't'), 'null') = 'null' THEN v.frame / v_fps
              ELSE v.t END AS t,
         v.x, v.y, v.confidence
  FROM jsonb_array_elements(p_points) WITH ORDINALITY AS a(item, n)
  CROSS JOIN LATERAL (SELECT ingest.api_number(a.item -> 'frame') AS frame,
                             ingest.api_number(a.item -> 't') AS t,
                             ingest.api_number(a.item -> 'x') AS x,
                             ingest.api_number(a.item -> 'y') AS y,
                             ingest.api_number(a.item -> 'confidence') AS confidence) v;

  PERFORM ingest.api_row_errors(v_fps, v_words);
  PERFORM ingest.api_frame_errors(v_words, v_batch);

  -- The source's transform (raw values kept), checked before anything reads it
  -- (ingest.api_check_ground refuses the batch), then speeds between a track's
  -- consecutive points; a point faster than the limit is implausible_speed. Double
  -- precision raises on overflow: then the same values in numeric, for the check to name.
  BEGIN
    CREATE TEMP TABLE api_ingest_ground ON COMMIT DROP AS
    SELECT i.row_no, i.track_id, i.frame::bigint AS frame, i.t, i.x AS raw_x, i.y AS raw_y,
           i.class, i.confidence,
           ingest.api_ground(v_tr, 0, i.x, i.y) AS x,
           ingest.api_ground(v_tr, 1, i.x, i.y) AS y,
           ingest.api_ground_w(v_tr, i.x, i.y) AS w
    FROM api_ingest_items i
    WHERE NOT EXISTS (SELECT FROM api_ingest_errors e WHERE e.row_no = i.row_no);
  EXCEPTION WHEN numeric_value_out_of_range OR division_by_zero THEN
    CREATE TEMP TABLE api_ingest_ground ON COMMIT DROP AS
    SELECT i.row_no, i.track_id, i.frame::bigint AS frame, i.t, i.x AS raw_x, i.y AS raw_y,
           i.class, i.confidence,
           ingest.api_ground_exact(v_tr, 0, i.x, i.y) AS x,
           ingest.api_ground_exact(v_tr, 1, i.x, i.y) AS y,
           ingest.api_ground_exact(v_tr, 2, i.x, i.y) AS w
    FROM api_ingest_items i
    WHERE NOT EXISTS (SELECT FROM api_ingest_errors e WHERE e.row_no = i.row_no);
  END;
  IF v_tr IS NOT NULL THEN
    PERFORM ingest.api_check_ground(p_source);
  END IF;
  WITH good AS (
    SELECT g.row_no, g.track_id, g.frame, g.t, g.raw_x, g.raw_y, g.class, g.confidence, g.x,
           g.y
    FROM api_ingest_ground g
  ), speeds AS (
    SELECT g.*,
           sqrt((g.x - lag(g.x) OVER w) ^ 2 + (g.y - lag(g.y) OVER w) ^ 2)
             / (g.t - lag(g.t) OVER w) AS speed
    FROM good g
    WINDOW w AS (PARTITION BY g.track_id ORDER BY g.frame)
  ), flagged AS (
    INSERT INTO api_ingest_errors (row_no, col, code, message, seq)
    SELECT s.row_no, v_batch #>> '{implausible_speed,col}', 'implausible_speed',
           ingest.api_message(v_batch #>> '{implausible_speed,message}',
                              jsonb_build_object('track_id', s.track_id,
                                                 'speed', round(s.speed::numeric, 1)::text,
                                                 'unit', v_unit, 'limit', v_limit::text)),
           (v_batch #>> '{implausible_speed,seq}')::integer
    FROM speeds s WHERE s.speed > v_limit
    RETURNING row_no
  )
  INSERT INTO api_ingest_stage (row_no, track_id, frame, ts, x, y, raw_x, raw_y, class,
                                confidence)
  SELECT s.row_no, s.track_id, s.frame,
         p_source.time_origin + round(s.t * 1e6)::bigint * interval '1 microsecond',
         s.x, s.y, s.raw_x, s.raw_y, s.class, s.confidence::real
  FROM speeds s
  WHERE s.row_no NOT IN (SELECT f.row_no FROM flagged f);

  SELECT jsonb_build_object(
           'rows_total', v_total,
           'invalid', (SELECT count(DISTINCT e.row_no) FROM api_ingest_errors e),
           'errors', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                        'row', k.row_no, 'column', k.col, 'code', k.code,
                                        'message', k.message) ORDER BY k.row_no, k.seq)
                               FROM (SELECT * FROM api_ingest_errors e
                                     ORDER BY e.row_no, e.seq LIMIT 100) k), '[]'),
           'error_counts', coalesce((SELECT jsonb_object_agg(c.code, c.n)
                                     FROM (SELECT e.code, count(*) AS n FROM api_ingest_errors e
                                           GROUP BY e.code) c), '{}'))
  INTO v_out;
  RETURN v_out;
END
$$;
