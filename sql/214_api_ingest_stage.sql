-- The api schema, ingest: validation of a batch's points and staging of the valid ones.
--
-- The checks mirror workers/ingest/validate.py (one batch = one chunk): per item
-- unparseable, missing, type, not_finite, negative_frame, out_of_bounds, out_of_range; then
-- duplicate_key (track, frame) in the batch, frame_time_mismatch (one t per frame),
-- time_not_increasing (t increases with frame) and implausible_speed (after the source's
-- transform). A transform that maps a point off the ground refuses the whole batch
-- (ingest.api_check_ground, sql/211_api_ingest_ground.sql).

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
  v_limit double precision := CASE p_source.units WHEN 'm' THEN 100.0 ELSE 20000.0 END;
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

  -- Row checks (validate.py's _row_masks), in its order; messages only for the hits.
  INSERT INTO api_ingest_errors (row_no, col, code, message, seq)
  SELECT i.row_no, c.col, c.code,
         CASE c.seq
           WHEN 1 THEN 'the item is not a JSON object'
           WHEN 2 THEN 'track_id is missing'
           WHEN 8 THEN 't is missing' || CASE WHEN v_fps IS NULL
                                              THEN ' (or give the source an fps to derive t '
                                                   'from frame)' ELSE '' END
           WHEN 19 THEN format('frame %s is not an integer', i.frame)
           WHEN 20 THEN format('frame %s is negative; frames count from 0', i.frame)
           WHEN 21 THEN format('frame %s is implausibly large', i.frame)
           WHEN 22 THEN format('|x| = %s is implausible (≥ 1e6)', abs(i.x))
           WHEN 23 THEN format('|y| = %s is implausible (≥ 1e6)', abs(i.y))
           WHEN 24 THEN format('t = %s s is implausible', i.t)
           WHEN 25 THEN format('confidence %s is outside [0, 1]', i.confidence)
           ELSE CASE c.code
                  WHEN 'type' THEN c.col || ' is not a number'
                  WHEN 'missing' THEN c.col || ' is missing'
                  WHEN 'not_finite' THEN format('%s is %s; only finite numbers are accepted',
                                                c.col, CASE c.col WHEN 'frame' THEN i.frame
                                                                  WHEN 't' THEN i.t
                                                                  WHEN 'x' THEN i.x
                                                                  WHEN 'y' THEN i.y
                                                                  ELSE i.confidence END)
                END
         END, c.seq
  FROM api_ingest_items i
  -- A point that passes this quick test passes every check below (NaN and ±Infinity fail
  -- it: NaN compares above every number); only the others are looked at in detail.
  CROSS JOIN LATERAL (SELECT i.is_obj AND i.track_id !~ '^\s*$' AND i.frame >= 0
                             AND i.frame < 2.0 ^ 53 AND i.frame = floor(i.frame)
                             AND abs(i.t) < 1e9 AND abs(i.x) < 1e6 AND abs(i.y) < 1e6
                             AND (NOT i.has_confidence OR i.confidence BETWEEN 0 AND 1)
                             AS clean) q
  CROSS JOIN LATERAL (VALUES
    (1, NULL, 'unparseable', NOT i.is_obj),
    (2, 'track_id', 'missing', i.is_obj AND coalesce(i.track_id, '') ~ '^\s*$'),
    (4, 'frame', 'type', i.has_frame AND i.frame IS NULL),
    (5, 'frame', 'missing', i.is_obj AND NOT i.has_frame),
    (6, 'frame', 'not_finite', i.frame IN ('NaN', 'Infinity', '-Infinity')),
    (7, 't', 'type', i.has_t AND i.t IS NULL),
    (8, 't', 'missing', i.is_obj AND NOT i.has_t AND i.t IS NULL),
    (9, 't', 'not_finite', i.t IN ('NaN', 'Infinity', '-Infinity')),
    (10, 'x', 'type', i.has_x AND i.x IS NULL),
    (11, 'x', 'missing', i.is_obj AND NOT i.has_x),
    (12, 'x', 'not_finite', i.x IN ('NaN', 'Infinity', '-Infinity')),
    (13, 'y', 'type', i.has_y AND i.y IS NULL),
    (14, 'y', 'missing', i.is_obj AND NOT i.has_y),
    (15, 'y', 'not_finite', i.y IN ('NaN', 'Infinity', '-Infinity')),
    (16, 'confidence', 'type', i.has_confidence AND i.confidence IS NULL),
    (17, 'confidence', 'not_finite', i.confidence IN ('NaN', 'Infinity', '-Infinity')),
    (19, 'frame', 'type',
     i.frame NOT IN ('NaN', 'Infinity', '-Infinity') AND i.frame <> floor(i.frame)),
    (20, 'frame', 'negative_frame', i.frame < 0),
    (21, 'frame', 'out_of_bounds', i.frame >= 2.0 ^ 53 AND i.frame <> 'NaN'),
    (22, 'x', 'out_of_bounds', abs(i.x) >= 1e6 AND abs(i.x) < 'Infinity'),
    (23, 'y', 'out_of_bounds', abs(i.y) >= 1e6 AND abs(i.y) < 'Infinity'),
    (24, 't', 'out_of_bounds', abs(i.t) >= 1e9 AND i.t <> 'NaN'),
    (25, 'confidence', 'out_of_range',
     i.confidence <> 'NaN' AND (i.confidence < 0 OR i.confidence > 1))
  ) AS c(seq, col, code, hit)
  WHERE NOT coalesce(q.clean, false) AND c.hit;

  -- Batch checks on the rows that passed (validate.py's check, _frame_times, _speeds).
  -- The first row of a (track, frame) key wins; later ones are duplicate_key.
  INSERT INTO api_ingest_errors (row_no, col, code, message, seq)
  SELECT d.row_no, 'frame', 'duplicate_key',
         format('track %s has frame %s twice in this batch', d.track_id, d.frame), 30
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
  SELECT g.row_no, 't', 'frame_time_mismatch',
         format('frame %s has t = %s here but t = %s elsewhere; one t per frame', g.frame, g.t,
                g.t_ref), 31
  FROM good g WHERE abs(g.t - g.t_ref) > 1e-6
  UNION ALL
  SELECT g.row_no, 't', 'time_not_increasing',
         format('frame %s at t = %s breaks the order of frames: t must increase with frame',
                g.frame, g.t), 32
  FROM good g JOIN ordered o ON o.frame = g.frame AND o.back
  WHERE abs(g.t - g.t_ref) <= 1e-6;

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
    SELECT s.row_no, 'x', 'implausible_speed',
           format('track %s moves at %s %s (limit %s)', s.track_id,
                  round(s.speed::numeric, 1), v_unit, v_limit), 33
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
