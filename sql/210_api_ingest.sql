-- The api schema, ingest: small batches of track points as JSON (POST /rpc/ingest_batch),
-- with the CLI's validation codes, per-item errors, idempotency key and duplicate
-- semantics, merged by the CLI's own ingest.merge_staged (sql/300_ingest.sql). See
-- docs/api.md ("Ingest") and docs/ingest.md.
--
-- The checks mirror workers/ingest/validate.py (one batch = one chunk): per item
-- unparseable, missing, type, not_finite, negative_frame, out_of_bounds, out_of_range; then
-- duplicate_key (track, frame) in the batch, frame_time_mismatch (one t per frame),
-- time_not_increasing (t increases with frame) and implausible_speed (after the source's
-- transform). A transform that maps a point off the ground (outside the world bounds the
-- row checks hold metric points to, onto or behind a homography's horizon) refuses the
-- whole batch (ingest.api_check_ground). Helpers live in `ingest` (nothing there is
-- exposed by PostgREST).

-- ======================================================================= caller
-- The project a write lands in: the one named (it must be the caller's), else the caller's
-- only project. Raises 42501 unless the caller holds one of p_roles there.
CREATE OR REPLACE FUNCTION auth.target_project(p_requested uuid, p_roles text[]) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids uuid[] := auth.project_ids();
  v_project uuid := p_requested;
BEGIN
  IF v_project IS NULL THEN
    IF cardinality(v_ids) > 1 THEN
      RAISE EXCEPTION 'you belong to % projects: say which one with "project_id"',
        cardinality(v_ids) USING ERRCODE = '22023', HINT = 'GET /projects lists them.';
    END IF;
    v_project := v_ids[1];
  END IF;
  PERFORM auth.require(v_project, p_roles);
  RETURN v_project;
END
$$;

-- The project an api call with an optional p_project_id is about (the usage, billing and
-- records functions): the one named (callers of several projects), else the caller's one;
-- the caller needs one of p_roles in it (admins: any, but named), and it must exist.
CREATE OR REPLACE FUNCTION auth.caller_project(p_project uuid, p_roles text[]) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v uuid := auth.target_project(p_project, p_roles);
BEGIN
  IF v IS NULL THEN
    RAISE EXCEPTION 'no project: name one with p_project_id' USING ERRCODE = '22023',
      HINT = 'GET /projects lists the projects you may read.';
  END IF;
  IF NOT EXISTS (SELECT FROM core.projects p WHERE p.project_id = v) THEN
    RAISE EXCEPTION 'project % does not exist', v USING ERRCODE = 'P0002',
      HINT = 'GET /projects lists the projects you may read.';
  END IF;
  RETURN v;
END
$$;

-- The same for a request document (a batch, a job's parameters): its optional "project_id"
-- names the project; one that is not a uuid is a 22023 naming it.
CREATE OR REPLACE FUNCTION auth.target_project(p_request jsonb, p_roles text[]) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_requested uuid;
BEGIN
  IF p_request ? 'project_id' THEN
    BEGIN
      v_requested := (p_request ->> 'project_id')::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE EXCEPTION 'project_id "%" is not a project id', p_request ->> 'project_id'
        USING ERRCODE = '22023';
    END;
  END IF;
  RETURN auth.target_project(v_requested, p_roles);
END
$$;

-- ======================================================================= values
-- Per-point helpers run 9 times per point: the SQL ones carry no SET clause so that the
-- planner inlines them into the calling statement (a SET clause forbids inlining and costs
-- a settings save/restore per call); they name nothing outside pg_catalog, and their
-- callers (below) pin search_path.

-- A numeric string as a number, as `secinf ingest` casts a CSV cell: NULL when it is none;
-- out-of-range values become ±Infinity (or 0 when tiny).
CREATE OR REPLACE FUNCTION ingest.api_number_text(p_text text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_text text := regexp_replace(p_text, '^\s+|\s+$', '', 'g');
  v_num numeric;
BEGIN
  IF v_text ~* '^[+-]?(nan|inf|infinity)$' THEN
    RETURN v_text::double precision;
  ELSIF v_text !~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
    RETURN NULL;
  END IF;
  BEGIN
    v_num := v_text::numeric;
  EXCEPTION WHEN numeric_value_out_of_range THEN
    RETURN CASE WHEN v_text ~ '[eE]-' THEN 0
                WHEN v_text ~ '^-' THEN '-Infinity' ELSE 'Infinity' END::double precision;
  END;
  RETURN CASE WHEN abs(v_num) > 1.7976931348623157e308 THEN sign(v_num) * 'Infinity'::float8
              WHEN abs(v_num) < 2.2250738585072014e-308 THEN 0
              ELSE v_num::double precision END;
END
$$;

-- A JSON value as a number: JSON numbers, and strings holding one; NULL for anything else.
CREATE OR REPLACE FUNCTION ingest.api_number(p_value jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE pg_catalog.jsonb_typeof(p_value)
           WHEN 'number' THEN
             CASE WHEN pg_catalog.abs(p_value::numeric) > 1.7976931348623157e308
                  THEN pg_catalog.sign(p_value::numeric)::float8 * 'Infinity'::float8
                  WHEN pg_catalog.abs(p_value::numeric) < 2.2250738585072014e-308 THEN 0::float8
                  ELSE p_value::numeric::float8 END
           WHEN 'string' THEN ingest.api_number_text(p_value #>> '{}')
         END
$$;

-- A JSON value as text (track_id, class), as a JSONL line gives it to the CLI: strings as
-- they are, anything else as its JSON text; NULL when absent or JSON null.
CREATE OR REPLACE FUNCTION ingest.api_text(p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE pg_catalog.jsonb_typeof(p_value)
           WHEN 'string' THEN p_value #>> '{}'
           WHEN 'null' THEN NULL
           ELSE p_value::text
         END
$$;

-- One ground-plane coordinate (p_axis 0: x, 1: y) of an input point under the source's
-- transform: a 3×3 image-to-ground homography, or a scale (metres per unit); the value as
-- given without one (workers/ingest/transform.py does the same for the CLI).
CREATE OR REPLACE FUNCTION ingest.api_ground(p_tr jsonb, p_axis integer, p_x double precision,
                                             p_y double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE WHEN p_tr ? 'homography' THEN
                ((p_tr -> 'homography' -> p_axis ->> 0)::float8 * p_x
                 + (p_tr -> 'homography' -> p_axis ->> 1)::float8 * p_y
                 + (p_tr -> 'homography' -> p_axis ->> 2)::float8)
                / ((p_tr #>> '{homography,2,0}')::float8 * p_x
                   + (p_tr #>> '{homography,2,1}')::float8 * p_y
                   + (p_tr #>> '{homography,2,2}')::float8)
              WHEN p_tr ? 'scale' THEN
                (CASE p_axis WHEN 0 THEN p_x ELSE p_y END) * (p_tr ->> 'scale')::float8
              ELSE CASE p_axis WHEN 0 THEN p_x ELSE p_y END
         END
$$;

-- The denominator of the source's homography at an input point (1 without one): the
-- third homogeneous coordinate, 0 on the image's horizon line and of one sign on each side
-- of it (the ground is on one side only).
CREATE OR REPLACE FUNCTION ingest.api_ground_w(p_tr jsonb, p_x double precision,
                                               p_y double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE WHEN p_tr ? 'homography' THEN
                (p_tr #>> '{homography,2,0}')::float8 * p_x
                + (p_tr #>> '{homography,2,1}')::float8 * p_y
                + (p_tr #>> '{homography,2,2}')::float8
              ELSE 1::float8 END
$$;

-- ingest.api_ground and ingest.api_ground_w in numeric, which cannot overflow: for a
-- batch whose transform overflows (or underflows) double precision, so that the check
-- below can name the point. The result is a double again: ±Infinity beyond 1e308, 0
-- under 1e-307, NaN for a point on the horizon (p_axis 2: the denominator).
CREATE OR REPLACE FUNCTION ingest.api_ground_exact(p_tr jsonb, p_axis integer,
                                                   p_x double precision, p_y double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE WHEN v IS NULL THEN 'NaN'::float8
              WHEN pg_catalog.abs(v) >= 1e308 THEN
                CASE WHEN v > 0 THEN 'Infinity'::float8 ELSE '-Infinity'::float8 END
              WHEN pg_catalog.abs(v) < 1e-307 THEN 0::float8
              ELSE v::float8 END
  FROM (SELECT CASE WHEN p_axis = 2 THEN w WHEN w <> 0 THEN n / w END AS v
        FROM (SELECT CASE WHEN p_tr ? 'homography' THEN
                            (p_tr #>> ARRAY['homography', p_axis::text, '0'])::numeric * p_x::numeric
                            + (p_tr #>> ARRAY['homography', p_axis::text, '1'])::numeric * p_y::numeric
                            + (p_tr #>> ARRAY['homography', p_axis::text, '2'])::numeric
                          WHEN p_tr ? 'scale' THEN
                            (CASE p_axis WHEN 0 THEN p_x ELSE p_y END)::numeric
                            * (p_tr ->> 'scale')::numeric
                          ELSE (CASE p_axis WHEN 0 THEN p_x ELSE p_y END)::numeric END AS n,
                     CASE WHEN p_tr ? 'homography' THEN
                            (p_tr #>> '{homography,2,0}')::numeric * p_x::numeric
                            + (p_tr #>> '{homography,2,1}')::numeric * p_y::numeric
                            + (p_tr #>> '{homography,2,2}')::numeric
                          ELSE 1::numeric END AS w) t) u
$$;

-- Refuse a batch that the source's transform does not map onto the ground, naming the
-- first row (in batch order) of pg_temp.api_ingest_ground (row_no, raw_x, raw_y, x, y, w)
-- that is off it: on the horizon line of a homography (w = 0), on the other side of it
-- from the batch's first row (w of the other sign: behind the camera), or mapped outside
-- the world bounds that metric points are held to (|x|, |y| < 1e6 m, as the row checks;
-- workers/ingest/schema.py MAX_ABS_COORD), or to no finite number. The transform is at
-- fault, not the point, so the whole batch is refused (22023) and nothing is stored.
-- workers/ingest/transform.py check_ground makes the same checks for `secinf ingest`.
CREATE OR REPLACE FUNCTION ingest.api_check_ground(p_source ingest.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tr jsonb := p_source.transform;
  v_what text := CASE WHEN v_tr ? 'homography' THEN 'homography'
                      WHEN v_tr ? 'input_units' THEN 'units ' || (v_tr ->> 'input_units')
                      ELSE format('scale %s', v_tr ->> 'scale') END;
  v_hint text := 'Check the source''s ' || CASE WHEN v_tr ? 'homography'
                   THEN 'homography: it maps image pixels to metres on the ground'
                   ELSE 'scale: metres per pixel' END
                 || '. A source keeps the transform of its first stored batch.';
  g record;
BEGIN
  SELECT b.*, f.row_no AS ref_row, f.w AS ref_w INTO g
  FROM pg_temp.api_ingest_ground b
  CROSS JOIN (SELECT a.row_no, a.w FROM pg_temp.api_ingest_ground a
              ORDER BY a.row_no LIMIT 1) f
  WHERE b.w = 0 OR b.w = 'NaN' OR sign(b.w) <> sign(f.w)
     OR NOT (abs(b.x) < 1e6 AND abs(b.y) < 1e6)
  ORDER BY b.row_no LIMIT 1;
  IF NOT FOUND THEN
    RETURN;
  ELSIF g.w = 0 OR g.w = 'NaN' THEN
    RAISE EXCEPTION 'source "%": row % (x = %, y = %) lies on the horizon of the source''s '
                    'homography (h20·x + h21·y + h22 = 0): it maps to no ground point; '
                    'nothing was stored', p_source.name, g.row_no, g.raw_x, g.raw_y
      USING ERRCODE = '22023', HINT = v_hint || ' Or leave out points on or above the horizon.';
  ELSIF sign(g.w) <> sign(g.ref_w) THEN
    RAISE EXCEPTION 'source "%": rows % and % lie on opposite sides of the horizon of the '
                    'source''s homography (h20·x + h21·y + h22 = % and %): one of them maps '
                    'behind the camera; nothing was stored', p_source.name, g.ref_row,
                    g.row_no, g.ref_w, g.w
      USING ERRCODE = '22023', HINT = v_hint || ' Or leave out points above the horizon.';
  END IF;
  RAISE EXCEPTION 'source "%": row % (x = %, y = %) maps to x = %, y = % under the '
                  'source''s %, outside the world bounds (|x| and |y| below 1e6 m); '
                  'nothing was stored', p_source.name, g.row_no, g.raw_x, g.raw_y, g.x, g.y,
                  v_what
    USING ERRCODE = '22023', HINT = v_hint;
END
$$;

-- ======================================================================= source
-- The source a batch names, created on its first batch with the batch's settings (fps,
-- units px|m|cm|mm, scale or homography, time_origin); later batches inherit them and fail
-- when they ask for different ones — workers/ingest/transform.resolve_source's rules.
CREATE OR REPLACE FUNCTION ingest.api_resolve_source(p_project uuid, p_batch jsonb)
RETURNS ingest.sources
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_batch ->> 'source';
  v_fps double precision;
  v_units text := p_batch ->> 'units';
  v_scale double precision;
  v_h jsonb := p_batch -> 'homography';
  v_origin timestamptz;
  v_bad text;             -- the first homography entry that is not a finite double
  v_asked jsonb;          -- the transform this batch asks for (NULL: none)
  v_transform jsonb;      -- the transform the batch is ingested with
  v_stored ingest.sources;
  v_in_units text;
  v_final text;
  v_row ingest.sources;
BEGIN
  IF jsonb_typeof(p_batch -> 'source') IS DISTINCT FROM 'string'
     OR v_name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' THEN
    RAISE EXCEPTION 'source must be a source name (letters, digits, ".", "_", "-"; up to 128)'
      USING ERRCODE = '22023', HINT = 'e.g. {"source": "cam-1", "points": [...]}';
  END IF;
  IF p_batch ? 'fps' THEN
    v_fps := ingest.api_number(p_batch -> 'fps');
    IF v_fps IS NULL OR NOT (v_fps > 0 AND v_fps < 1e6) THEN
      RAISE EXCEPTION 'fps %: frames per second must be a positive number', p_batch -> 'fps'
        USING ERRCODE = '22023';
    END IF;
  END IF;
  IF v_units IS NOT NULL AND v_units NOT IN ('px', 'm', 'cm', 'mm') THEN
    RAISE EXCEPTION 'units "%": use px, m, cm or mm', v_units USING ERRCODE = '22023';
  END IF;
  IF p_batch ? 'time_origin' THEN
    BEGIN
      v_origin := (p_batch ->> 'time_origin')::timestamptz;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
      RAISE EXCEPTION 'time_origin "%" is not a timestamp', p_batch ->> 'time_origin'
        USING ERRCODE = '22023', HINT = 'e.g. "2026-01-01T00:00:00Z"';
    END;
  END IF;
  IF p_batch ? 'scale' AND p_batch ? 'homography' THEN
    RAISE EXCEPTION 'give scale or homography, not both' USING ERRCODE = '22023';
  END IF;
  IF p_batch ? 'scale' THEN
    v_scale := ingest.api_number(p_batch -> 'scale');
    IF v_scale IS NULL OR NOT (v_scale > 0 AND v_scale < 1e6) THEN
      RAISE EXCEPTION 'scale %: metres per pixel must be a positive number', p_batch -> 'scale'
        USING ERRCODE = '22023';
    END IF;
    IF coalesce(v_units, 'px') <> 'px' THEN
      RAISE EXCEPTION 'scale converts pixels; drop it or use units px (got units %)', v_units
        USING ERRCODE = '22023';
    END IF;
    v_asked := jsonb_build_object('scale', v_scale);
  ELSIF p_batch ? 'homography' THEN
    IF jsonb_typeof(v_h) IS DISTINCT FROM 'array' OR jsonb_array_length(v_h) <> 3
       OR EXISTS (SELECT FROM jsonb_array_elements(v_h) r
                  WHERE jsonb_typeof(r) <> 'array' OR jsonb_array_length(r) <> 3
                     OR EXISTS (SELECT FROM jsonb_array_elements(r) c
                                WHERE jsonb_typeof(c) <> 'number')) THEN
      RAISE EXCEPTION 'homography: a 3x3 list of finite numbers, e.g. [[1,0,0],[0,1,0],[0,0,1]]'
        USING ERRCODE = '22023';
    END IF;
    -- A JSON number may be beyond double precision (1e400): name the first such entry.
    SELECT format('homography[%s][%s] is not a finite double-precision number '
                  '(|value| above 1.8e308)', r.i - 1, c.j - 1) INTO v_bad
    FROM jsonb_array_elements(v_h) WITH ORDINALITY AS r(v, i)
    CROSS JOIN LATERAL jsonb_array_elements(r.v) WITH ORDINALITY AS c(v, j)
    WHERE NOT abs(ingest.api_number(c.v)) < 'Infinity'::float8
    ORDER BY r.i, c.j LIMIT 1;
    IF v_bad IS NOT NULL THEN
      RAISE EXCEPTION '%', v_bad USING ERRCODE = '22023',
        HINT = 'A homography is defined up to scale: divide every entry by the largest one.';
    END IF;
    -- The determinant in numeric, which cannot overflow (entries of 1e200 would in double).
    IF abs((v_h #>> '{0,0}')::numeric * ((v_h #>> '{1,1}')::numeric * (v_h #>> '{2,2}')::numeric
                                         - (v_h #>> '{1,2}')::numeric * (v_h #>> '{2,1}')::numeric)
           - (v_h #>> '{0,1}')::numeric * ((v_h #>> '{1,0}')::numeric * (v_h #>> '{2,2}')::numeric
                                           - (v_h #>> '{1,2}')::numeric * (v_h #>> '{2,0}')::numeric)
           + (v_h #>> '{0,2}')::numeric * ((v_h #>> '{1,0}')::numeric * (v_h #>> '{2,1}')::numeric
                                           - (v_h #>> '{1,1}')::numeric * (v_h #>> '{2,0}')::numeric))
       < 1e-12 THEN
      RAISE EXCEPTION 'homography: the matrix is singular (determinant 0); check the calibration'
        USING ERRCODE = '22023';
    END IF;
    IF coalesce(v_units, 'px') <> 'px' THEN
      RAISE EXCEPTION 'homography maps image pixels; use units px (got units %)', v_units
        USING ERRCODE = '22023';
    END IF;
    v_asked := jsonb_build_object('homography', v_h);
  ELSIF v_units IN ('cm', 'mm') THEN
    v_asked := jsonb_build_object('scale', CASE v_units WHEN 'cm' THEN 0.01 ELSE 0.001 END,
                                  'input_units', v_units);
  END IF;

  SELECT * INTO v_stored FROM ingest.sources s
  WHERE s.project_id = p_project AND s.name = v_name;
  IF FOUND THEN
    IF v_fps IS NOT NULL AND v_stored.fps IS NOT NULL AND abs(v_stored.fps - v_fps) > 1e-9 THEN
      RAISE EXCEPTION 'source "%" has fps %; this batch says %', v_name, v_stored.fps, v_fps
        USING ERRCODE = '22023', HINT = 'Use the source''s fps or a new source name.';
    END IF;
    IF v_asked IS NOT NULL AND v_asked IS DISTINCT FROM v_stored.transform THEN
      RAISE EXCEPTION 'source "%" has transform %; this batch asks for %', v_name,
        coalesce(v_stored.transform::text, 'none'), v_asked
        USING ERRCODE = '22023', HINT = 'Send the same units/scale/homography or a new source.';
    END IF;
    IF v_origin IS NOT NULL AND v_origin <> v_stored.time_origin THEN
      RAISE EXCEPTION 'source "%" has time origin %; this batch says %', v_name,
        v_stored.time_origin, v_origin USING ERRCODE = '22023', HINT = 'Use a new source name.';
    END IF;
    v_transform := coalesce(v_asked, v_stored.transform);
    v_in_units := coalesce(v_units, v_transform ->> 'input_units',
                           CASE WHEN v_stored.units = 'px' OR v_transform IS NOT NULL
                                THEN 'px' ELSE 'm' END);
  ELSE
    v_transform := v_asked;
    v_in_units := coalesce(v_units, v_transform ->> 'input_units',
                           CASE WHEN v_transform IS NOT NULL THEN 'px' ELSE 'm' END);
  END IF;
  v_final := CASE WHEN v_transform IS NOT NULL OR v_in_units IN ('m', 'cm', 'mm')
                  THEN 'm' ELSE 'px' END;
  IF v_stored.source_id IS NOT NULL AND v_final <> v_stored.units THEN
    RAISE EXCEPTION 'source "%" stores %; this batch would be %', v_name, v_stored.units, v_final
      USING ERRCODE = '22023', HINT = 'Send the same units/scale/homography as before.';
  END IF;

  v_row := ingest.ensure_source(p_project, v_name, v_final, v_transform, v_fps,
                                coalesce(v_origin, v_stored.time_origin,
                                         '2026-01-01 00:00:00+00'::timestamptz));
  -- Created concurrently by another batch with other settings?
  IF v_row.units <> v_final OR v_row.transform IS DISTINCT FROM v_transform
     OR (v_origin IS NOT NULL AND v_row.time_origin <> v_origin) THEN
    RAISE EXCEPTION 'source "%" was just created with other settings (units %, transform %)',
      v_name, v_row.units, coalesce(v_row.transform::text, 'none') USING ERRCODE = '22023',
      HINT = 'Submit again to use them, or pick a new source name.';
  END IF;
  RETURN v_row;
END
$$;

-- ======================================================================= validation
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

-- ======================================================================= endpoint
DROP FUNCTION IF EXISTS api.ingest_batch(jsonb);
-- Validate and merge one small batch of points into the caller's project.
CREATE FUNCTION api.ingest_batch(p_batch jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c_max_points constant integer := 10000;
  c_fields constant text[] := ARRAY['project_id', 'source', 'points', 'idempotency_key',
                                    'strict', 'fps', 'units', 'scale', 'homography',
                                    'time_origin'];
  v_started timestamptz := clock_timestamp();
  v_unknown text[];
  v_project uuid;
  v_points jsonb := p_batch -> 'points';
  v_count integer;
  v_key text;
  v_dup record;
  v_source ingest.sources;
  v_checked jsonb;
  v_merged record;
  v_lock_timeout text;
  v_bytes bigint;
  v_out jsonb;
BEGIN
  IF jsonb_typeof(p_batch) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'the batch must be a JSON object' USING ERRCODE = '22023',
      HINT = 'e.g. {"p_batch": {"source": "cam-1", "points": [{"track_id": "7", "frame": 0, '
             '"t": 0.0, "x": 1.5, "y": 2.0}]}}';
  END IF;
  v_unknown := ARRAY(SELECT k FROM jsonb_object_keys(p_batch) k WHERE k <> ALL (c_fields)
                     ORDER BY k);
  IF cardinality(v_unknown) > 0 THEN
    RAISE EXCEPTION 'unknown field(s) in the batch: %', array_to_string(v_unknown, ', ')
      USING ERRCODE = '22023', HINT = 'Fields: ' || array_to_string(c_fields, ', ') || '.';
  END IF;
  v_project := auth.target_project(p_batch, ARRAY['customer', 'project_admin']);

  IF jsonb_typeof(v_points) IS DISTINCT FROM 'array' OR jsonb_array_length(v_points) = 0 THEN
    RAISE EXCEPTION 'points must be a non-empty array of points' USING ERRCODE = '22023',
      HINT = 'Each point: {"track_id", "frame", "t" (s since the source''s time origin; '
             'optional with an fps), "x", "y", optional "class", "confidence"}.';
  END IF;
  v_count := jsonb_array_length(v_points);
  IF v_count > c_max_points THEN
    RAISE EXCEPTION 'a batch of % points is over the limit of % points', v_count, c_max_points
      USING ERRCODE = 'PT413',
      HINT = format('Split it into batches of at most %s points, or load files with '
                    '`secinf ingest`.', c_max_points);
  END IF;
  IF p_batch ? 'strict' AND jsonb_typeof(p_batch -> 'strict') <> 'boolean' THEN
    RAISE EXCEPTION 'strict must be true or false' USING ERRCODE = '22023';
  END IF;
  IF p_batch ? 'idempotency_key' AND (jsonb_typeof(p_batch -> 'idempotency_key') <> 'string'
       OR length(p_batch ->> 'idempotency_key') NOT BETWEEN 1 AND 200) THEN
    RAISE EXCEPTION 'idempotency_key must be a string of 1 to 200 characters'
      USING ERRCODE = '22023';
  END IF;
  -- Default key: the source name and the points (jsonb text is canonical), so sending the
  -- same body twice is a duplicate.
  v_key := coalesce(p_batch ->> 'idempotency_key',
                    'sha256:' || encode(sha256(convert_to(
                      jsonb_build_array(p_batch -> 'source', v_points)::text, 'UTF8')), 'hex'));

  -- Submissions of one key serialise on the CLI's advisory lock (workers/queries/ingest.sql
  -- lock_key); a known key returns the stored batch's summary and stores nothing.
  PERFORM pg_advisory_xact_lock(hashtextextended(v_project::text || ':' || v_key, 0));
  SELECT b.batch_id, s.name AS source, b.source_id, b.rows_total, b.rows_inserted,
         b.rows_duplicate, b.rows_invalid, b.rows_ignored, b.errors, s.units
    INTO v_dup
  FROM ingest.batches b JOIN ingest.sources s ON s.source_id = b.source_id
  WHERE b.project_id = v_project AND b.idempotency_key = v_key;
  IF FOUND THEN
    RETURN jsonb_build_object(
      'batch_id', v_dup.batch_id, 'source', v_dup.source, 'source_id', v_dup.source_id,
      'rows_total', v_dup.rows_total, 'inserted', v_dup.rows_inserted,
      'duplicate', v_dup.rows_duplicate, 'invalid', v_dup.rows_invalid,
      'ignored', v_dup.rows_ignored, 'errors', v_dup.errors, 'error_counts', '{}'::jsonb,
      'duplicate_batch', true, 'units', v_dup.units, 'idempotency_key', v_key,
      'seconds', round(extract(epoch FROM clock_timestamp() - v_started), 3));
  END IF;

  -- At most points_in_flight_max points not yet processed per project (sql/230_api_caps.sql):
  -- 429, before the source is created or anything staged.
  PERFORM ingest.check_points_in_flight(v_project, v_count);
  -- The month's quota of bytes ingested (the request body): 402 before anything is staged.
  -- Points are checked, and counted, at the merge (ingest.close_batch).
  v_bytes := octet_length(p_batch::text);
  PERFORM billing.check_quota(v_project, 'bytes_ingested', v_bytes);
  v_source := ingest.api_resolve_source(v_project, p_batch);
  v_checked := ingest.api_stage_points(v_points, v_source);
  IF coalesce((p_batch ->> 'strict')::boolean, false) AND (v_checked ->> 'invalid')::bigint > 0 THEN
    RAISE EXCEPTION 'batch rejected (strict): % of % points are invalid; nothing was stored',
      v_checked ->> 'invalid', v_count USING ERRCODE = 'PT422',
      DETAIL = (v_checked || jsonb_build_object('rejected', true, 'source', v_source.name,
                                                'units', v_source.units))::text,
      HINT = 'Fix the points listed in details, or send without "strict" to load the valid ones.';
  END IF;

  -- The merge locks the source row; a running pipeline tick holds it until it commits.
  v_lock_timeout := current_setting('lock_timeout');
  PERFORM set_config('lock_timeout', '5s', true);
  BEGIN
    SELECT * INTO v_merged
    FROM ingest.merge_staged(v_project, v_source.source_id, v_key, 'api', NULL,
                             to_regclass('pg_temp.api_ingest_stage'),
                             (v_checked ->> 'rows_total')::bigint,
                             (v_checked ->> 'invalid')::bigint, 0, v_checked -> 'errors');
  EXCEPTION WHEN lock_not_available THEN
    RAISE EXCEPTION 'source "%" is being processed by the pipeline right now', v_source.name
      USING ERRCODE = 'PT503',
      HINT = 'Retry in a few seconds with the same idempotency_key; nothing was stored.';
  END;
  PERFORM set_config('lock_timeout', v_lock_timeout, true);
  UPDATE ingest.batches b SET created_by = auth.subject() WHERE b.batch_id = v_merged.batch_id;
  PERFORM billing.count(v_project, 'bytes_ingested', v_bytes, 'batch:' || v_merged.batch_id);

  v_out := jsonb_build_object(
    'batch_id', v_merged.batch_id, 'source', v_source.name, 'source_id', v_source.source_id,
    'rows_total', (v_checked ->> 'rows_total')::bigint, 'inserted', v_merged.rows_inserted,
    'duplicate', v_merged.rows_duplicate, 'invalid', (v_checked ->> 'invalid')::bigint,
    'ignored', 0, 'errors', v_checked -> 'errors', 'error_counts', v_checked -> 'error_counts',
    'duplicate_batch', v_merged.duplicate_batch, 'units', v_source.units,
    'idempotency_key', v_key,
    'seconds', round(extract(epoch FROM clock_timestamp() - v_started), 3));
  IF v_merged.late_from IS NOT NULL THEN
    v_out := v_out || jsonb_build_object('late', jsonb_build_object(
      'from_ts', v_merged.late_from, 'to_ts', v_merged.late_to));
  END IF;
  PERFORM audit.record(v_project, 'ingest.batch', v_source.name,
                       jsonb_build_object('batch_id', v_merged.batch_id, 'via', 'api',
                                          'rows_total', v_count,
                                          'inserted', v_merged.rows_inserted));
  RETURN v_out;
END
$$;
COMMENT ON FUNCTION api.ingest_batch(jsonb) IS
  'Ingest a small batch (at most 10000 points) of track points into the caller''s project '
  '(customers, project admins): {source, points: [{track_id, frame, t, x, y, class?, '
  'confidence?}], idempotency_key?, strict?, fps?, units?, scale?, homography?, '
  'time_origin?}. The CLI''s validation codes, per point; a known idempotency key returns '
  'the stored summary (duplicate_batch: true) and stores nothing; points already stored are '
  'counted as duplicate. At most points_in_flight_max (default 1000000) points not yet '
  'processed by the pipeline per project: 429 beyond.';
