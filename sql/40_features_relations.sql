-- Features · relations: both orders of every pair of tracks closer than the radius at the
-- same frame, computed from features.kinematics when they are read, never stored.
--
-- Why not stored (docs/pipeline.md, "Pairs on demand"): a dense crowd has 16 close pairs
-- per point within the 9 m radius, so a stored table wrote 1.29 M rows for UCY students001 +
-- 003's 39,766 points (6.3 s of a 12.9 s tick), and every pair rule then scanned all of
-- them. The rules need a few per cent: the candidates stage now computes the pair rows of
-- its window once, keeps the rows some active pair rule can use (rules.ontologies.
-- pair_rows_sql, generated from the rule predicates) in a temporary table, and every pair
-- rule reads that. Analysts and the scoring worker read the view features.relations.

-- The pair radius of a source: metres for metric sources, pixels for pixel sources.
-- SECURITY DEFINER: the view below runs as its reader, who may not read pipeline.settings;
-- the value is one number of a source's settings.
CREATE OR REPLACE FUNCTION features.relation_radius(p_source bigint) RETURNS double precision
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (SELECT pipeline.setting_float(s.project_id,
                   CASE s.units WHEN 'px' THEN 'relation_radius_px' ELSE 'relation_radius_m' END)
          FROM ingest.sources s WHERE s.source_id = p_source);
END
$$;

-- Every pair row of one source for ts in [p_from, p_to]: both orders of every pair of
-- tracks closer than the radius at the same frame.
--
-- Candidate pairs come from a uniform grid (cell = radius): each point probes its own cell
-- and the four "forward" neighbours (half the neighbourhood: every pair is matched once and
-- emitted in both orders) through one bigint hash key (frame, cell x mod 2048, cell y mod
-- 2048), so cost grows with close pairs, not with the square of the actors in a frame, and
-- the join is a single hash condition. Cells that collide through the modulo (≥ 20 km apart
-- at 10 m) are removed by the distance check. The key holds the frame whole (the cell bits
-- are the low 22): equal keys mean the same frame, so there is no separate frame condition
-- for a planner to hash on alone.
--
-- LANGUAGE sql without SET clauses so that the planner inlines it: a caller's WHERE on the
-- output columns is pushed into both orders' scans and evaluated before their remaining
-- columns are computed (the candidates stage keeps a few per cent of the rows). Tables are
-- schema-qualified; operators and functions are pg_catalog's, which every search_path
-- searches first unless it names pg_catalog later itself. Order-free
-- quantities (distance, rel_speed, approach_speed, heading_diff) are computed once per
-- unordered pair: swapping the order negates Δp and Δv exactly, so they are the same bits
-- in both orders.
CREATE OR REPLACE FUNCTION features.pair_rows(p_source bigint, p_from timestamptz,
                                              p_to timestamptz)
RETURNS TABLE (track_id text, other_id text, frame bigint, ts timestamptz,
               distance double precision, bearing double precision,
               lon_offset double precision, lat_offset double precision,
               speed double precision, other_speed double precision,
               rel_speed double precision, approach_speed double precision,
               heading_diff double precision)
LANGUAGE sql STABLE
AS $$
  WITH rad AS MATERIALIZED (
    SELECT features.relation_radius(p_source) AS r
  ),
  k AS MATERIALIZED (
    SELECT c.*, (c.frame << 22) | ((c.cx & 2047) << 11) | (c.cy & 2047) AS cell
    FROM (SELECT k.track_id, k.frame, k.ts, k.x, k.y, k.vx, k.vy, k.speed, k.heading,
                 cosd(k.heading) AS ch, sind(k.heading) AS sh, rad.r * rad.r AS r2,
                 floor(k.x / rad.r)::bigint AS cx, floor(k.y / rad.r)::bigint AS cy
          FROM features.kinematics k, rad
          WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to) c
  ),
  -- Half the neighbourhood: the own cell and the four "forward" cells. Of two points in
  -- different neighbouring cells exactly one lies forward of the other; inside the own cell
  -- the track order ("C") picks one.
  pairs AS MATERIALIZED (
    SELECT a.frame, a.ts, a.track_id AS a_id, b.track_id AS b_id,
           a.speed AS a_speed, b.speed AS b_speed, a.ch AS a_ch, a.sh AS a_sh,
           b.ch AS b_ch, b.sh AS b_sh, b.x - a.x AS dx, b.y - a.y AS dy,
           b.vx - a.vx AS rvx, b.vy - a.vy AS rvy,
           sqrt((b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y)) AS distance,
           abs(features.wrap_deg(b.heading - a.heading)) AS heading_diff
    FROM k a
    CROSS JOIN (VALUES (0::bigint, 0::bigint), (0, 1), (1, -1), (1, 0), (1, 1)) AS d (dx, dy)
    JOIN k b ON b.cell = (a.frame << 22) | (((a.cx + d.dx) & 2047) << 11)
                         | ((a.cy + d.dy) & 2047)
    WHERE CASE WHEN d.dx = 0 AND d.dy = 0 THEN a.track_id COLLATE "C" < b.track_id COLLATE "C"
               ELSE a.track_id <> b.track_id END
      AND (b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y) < a.r2
  ),
  -- Both orders: me, the other, the offset from me to the other in my heading frame
  -- (dx, dy, rvx, rvy stay a -> b: the order-free values below are the same bits). The
  -- columns rules filter on most are computed here once per row (OFFSET 0 keeps a caller's
  -- filter from being expanded into their expressions, once per reference); the rest after
  -- the filter, for the rows it keeps.
  both_orders AS (
    SELECT o.* FROM (
      SELECT p.a_id AS track_id, p.b_id AS other_id, p.frame, p.ts, p.dx, p.dy, p.rvx, p.rvy,
             p.distance, p.dx * p.a_ch + p.dy * p.a_sh AS lon_offset,
             p.dy * p.a_ch - p.dx * p.a_sh AS lat_offset,
             p.a_speed AS speed, p.b_speed AS other_speed, p.heading_diff
      FROM pairs p
      UNION ALL
      SELECT p.b_id, p.a_id, p.frame, p.ts, p.dx, p.dy, p.rvx, p.rvy, p.distance,
             (-p.dx) * p.b_ch + (-p.dy) * p.b_sh,
             (-p.dy) * p.b_ch - (-p.dx) * p.b_sh,
             p.b_speed, p.a_speed, p.heading_diff
      FROM pairs p
      OFFSET 0) o
  )
  SELECT o.track_id, o.other_id, o.frame, o.ts, o.distance,
         CASE WHEN atan2d(o.lat_offset, o.lon_offset) = -180.0::float8 THEN 180.0::float8
              ELSE atan2d(o.lat_offset, o.lon_offset) END,
         o.lon_offset, o.lat_offset, o.speed, o.other_speed,
         sqrt(o.rvx * o.rvx + o.rvy * o.rvy),
         CASE WHEN o.dx <> 0 OR o.dy <> 0
              THEN (o.dx * o.rvx + o.dy * o.rvy) / o.distance END,
         o.heading_diff
  FROM both_orders o
$$;

-- What analysts and the scoring worker read: every pair row of every source, computed when
-- read (security_invoker: the reader's RLS on kinematics and sources applies). A filter on
-- source_id and ts bounds the kinematics each source's grid join reads; filters on the
-- pair columns are applied to its output.
CREATE OR REPLACE VIEW features.relations WITH (security_invoker = true) AS
SELECT s.project_id, s.source_id, r.ts, r.frame, r.track_id, r.other_id, r.distance,
       r.bearing, r.lon_offset, r.lat_offset, r.speed, r.other_speed, r.rel_speed,
       r.approach_speed, r.heading_diff
FROM ingest.sources s
CROSS JOIN LATERAL features.pair_rows(s.source_id, '-infinity'::timestamptz,
                                      'infinity'::timestamptz) r;
COMMENT ON VIEW features.relations IS
  'Both orders of every pair closer than relation_radius_m at the same frame, computed from '
  'features.kinematics when read (docs/pipeline.md, "Relations"). For one source and a time '
  'range, features.pair_rows(source, from, to) reads only that range.';

-- The pair rows of one ordered pair (track, other) of a source for ts in [p_from, p_to]:
-- what features.pair_rows() returns for that pair, from the two tracks' kinematics alone
-- (the scoring worker reads a candidate's pair over its window; a grid over every track of
-- the window would cost the whole crowd per candidate). The same expressions in the same
-- order as above, so the values are the same bits (tests/db/test_pair_rows.py).
CREATE OR REPLACE FUNCTION features.pair_track_rows(p_source bigint, p_track text,
                                                    p_other text, p_from timestamptz,
                                                    p_to timestamptz)
RETURNS TABLE (track_id text, other_id text, frame bigint, ts timestamptz,
               distance double precision, bearing double precision,
               lon_offset double precision, lat_offset double precision,
               speed double precision, other_speed double precision,
               rel_speed double precision, approach_speed double precision,
               heading_diff double precision)
LANGUAGE sql STABLE
AS $$
  WITH o AS (
    SELECT a.track_id, b.track_id AS other_id, a.frame, a.ts,
           b.x - a.x AS dx, b.y - a.y AS dy, b.vx - a.vx AS rvx, b.vy - a.vy AS rvy,
           sqrt((b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y)) AS distance,
           (b.x - a.x) * cosd(a.heading) + (b.y - a.y) * sind(a.heading) AS lon_offset,
           (b.y - a.y) * cosd(a.heading) - (b.x - a.x) * sind(a.heading) AS lat_offset,
           a.speed, b.speed AS other_speed,
           abs(features.wrap_deg(b.heading - a.heading)) AS heading_diff
    FROM features.kinematics a
    JOIN features.kinematics b ON b.source_id = a.source_id AND b.frame = a.frame
    WHERE a.source_id = p_source AND a.track_id = p_track AND b.track_id = p_other
      AND a.ts >= p_from AND a.ts <= p_to AND b.ts >= p_from AND b.ts <= p_to
  )
  SELECT o.track_id, o.other_id, o.frame, o.ts, o.distance,
         CASE WHEN atan2d(o.lat_offset, o.lon_offset) = -180.0::float8 THEN 180.0::float8
              ELSE atan2d(o.lat_offset, o.lon_offset) END,
         o.lon_offset, o.lat_offset, o.speed, o.other_speed,
         sqrt(o.rvx * o.rvx + o.rvy * o.rvy),
         CASE WHEN o.dx <> 0 OR o.dy <> 0
              THEN (o.dx * o.rvx + o.dy * o.rvy) / o.distance END,
         o.heading_diff
  FROM o, (SELECT features.relation_radius(p_source) AS r) rad
  WHERE o.dx * o.dx + o.dy * o.dy < rad.r * rad.r
$$;
