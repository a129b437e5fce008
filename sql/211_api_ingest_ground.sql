-- The api schema, ingest: a source's transform (scale or image-to-ground homography) at a
-- point, and the check that refuses a batch the transform maps off the ground
-- (workers/ingest/transform.py is the CLI's twin).

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
