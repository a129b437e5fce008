-- Features · relations: both orders of every pair of tracks closer than the radius at the
-- same frame, computed from features.kinematics when they are read, never stored.
--
-- Why not stored (docs/pipeline.md, "Pairs on demand"): a dense crowd has 16 close pairs
-- per point within the 9 m radius, so a stored table wrote 1.29 M rows for UCY students001 +
-- 003's 39,766 points (6.3 s of a 12.9 s tick), and every pair rule then scanned all of
-- them. The rules need a fifth (21 % there): the candidates stage now computes the pair
-- rows of its window once, keeps the rows some active pair rule can use (rules.ontologies.
-- pair_rows_sql, generated from the rule predicates) in a temporary table, and every pair
-- rule reads that. Analysts read the view features.relations; the scoring worker reads one
-- pair at a time (features.pair_track_rows).

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

-- Whether a pair's order-free values lie in one box of features.pair_rows_of's p_boxes
-- (four values from p_box[1]: max distance, max heading_diff, min of the lesser speed, min
-- of the greater speed; ±Infinity: no bound, so a NULL value passes an unbounded test).
-- NULL for a missing box. workers/rules/pair_bounds.py makes the boxes. Inlined (LANGUAGE
-- sql, one expression): the array is a constant of the caller's statement.
CREATE OR REPLACE FUNCTION features.pair_in_box(p_box double precision[],
                                                p_distance double precision,
                                                p_heading_diff double precision,
                                                p_speed double precision,
                                                p_other_speed double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT (p_box[1] = 'Infinity'::float8 OR p_distance <= p_box[1])
     AND (p_box[2] = 'Infinity'::float8 OR p_heading_diff <= p_box[2])
     AND (p_box[3] = '-Infinity'::float8 OR least(p_speed, p_other_speed) >= p_box[3])
     AND (p_box[4] = '-Infinity'::float8 OR greatest(p_speed, p_other_speed) >= p_box[4])
$$;

-- The pair rows of one source for ts in [p_from, p_to]: both orders of every pair of
-- tracks closer than the radius at the same frame (of the tracks in p_tracks; NULL: all),
-- of the pairs inside one of p_boxes (up to four boxes of four values, features.pair_in_box;
-- NULL: every pair). The candidates stage passes the boxes of its pair rules' predicates:
-- in a dense crowd three pairs in four fail them all and are dropped here, before both
-- orders and their heading-frame offsets are made.
--
-- Candidate pairs come from a uniform grid (cell = radius): each point probes its own cell
-- and the four "forward" neighbours (half the neighbourhood: every pair is matched once and
-- emitted in both orders) through one bigint hash key (frame, cell x mod 2048, cell y mod
-- 2048), so cost grows with close pairs, not with the square of the actors in a frame, and
-- the join is a single hash condition. Cells that collide through the modulo (≥ 20 km apart
-- at 10 m) are removed by the distance check. The key holds the frame whole (the cell bits
-- are the low 22): equal keys mean the same frame, so there is no separate frame condition
-- for a planner to hash on alone. A cell number that would not fit a bigint (a coordinate
-- beyond 2^52 radii: not finite, or never validated) is NULL, and its point matches no
-- other: the key cannot overflow, whatever the kinematics hold.
--
-- LANGUAGE sql without SET clauses so that the planner inlines it: a caller's WHERE on the
-- output columns runs on the columns computed once per row in both_orders, before bearing,
-- rel_speed and approach_speed are computed for the rows it keeps (the candidates stage
-- keeps a fifth of a dense scene's rows). Tables are schema-qualified; operators and
-- functions are pg_catalog's, which every search_path searches first unless it names
-- pg_catalog later itself. Order-free quantities (distance, rel_speed, approach_speed, heading_diff) are computed once per
-- unordered pair: swapping the order negates Δp and Δv exactly, so they are the same bits
-- in both orders.
-- With p_tracks, only those tracks' kinematics are read (through their index). pair_key
-- numbers the ordered pair within this call only (tracks by dense rank): the pair rules
-- partition, sort and group by one bigint instead of two text columns (a fifth less time in
-- meet on a dense crowd); it means nothing across calls.
CREATE OR REPLACE FUNCTION features.pair_rows_of(p_source bigint, p_from timestamptz,
                                                 p_to timestamptz, p_tracks text[],
                                                 p_boxes double precision[])
RETURNS SETOF features.pair_row
LANGUAGE sql STABLE
AS $$
  WITH rad AS MATERIALIZED (
    SELECT features.relation_radius(p_source) AS r
  ),
  k AS MATERIALIZED (
    SELECT c.*, (c.frame << 22) | ((c.cx & 2047) << 11) | (c.cy & 2047) AS cell
    FROM (SELECT k.track_id, k.frame, k.ts, k.x, k.y, k.vx, k.vy, k.speed, k.heading,
                 -- the track's number in this call: pair_key = (me << 32) | other
                 dense_rank() OVER (ORDER BY k.track_id) AS track_no,
                 cosd(k.heading) AS ch, sind(k.heading) AS sh, rad.r * rad.r AS r2,
                 -- NULL beyond 2^52 cells (never for ingested points, which lie
                 -- within 1e6 m): such a point pairs with nothing instead of raising
                 CASE WHEN abs(k.x / rad.r) < 4503599627370496
                      THEN floor(k.x / rad.r)::bigint END AS cx,
                 CASE WHEN abs(k.y / rad.r) < 4503599627370496
                      THEN floor(k.y / rad.r)::bigint END AS cy
          FROM features.kinematics k, rad
          WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to
            AND (p_tracks IS NULL OR k.track_id = ANY (p_tracks))) c
  ),
  -- Half the neighbourhood: the own cell and the four "forward" cells. Of two points in
  -- different neighbouring cells exactly one lies forward of the other; inside the own cell
  -- the track number picks one (which one is a does not change a row: both orders are made
  -- and the order-free values are the same bits either way).
  pairs AS MATERIALIZED (
    SELECT q.* FROM (
    SELECT a.frame, a.ts, a.track_id AS a_id, b.track_id AS b_id,
           a.track_no AS a_no, b.track_no AS b_no, a.speed AS a_speed, b.speed AS b_speed, a.ch AS a_ch, a.sh AS a_sh,
           b.ch AS b_ch, b.sh AS b_sh, b.x - a.x AS dx, b.y - a.y AS dy,
           b.vx - a.vx AS rvx, b.vy - a.vy AS rvy,
           sqrt((b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y)) AS distance,
           abs(features.wrap_deg(b.heading - a.heading)) AS heading_diff
    FROM k a
    CROSS JOIN (VALUES (0::bigint, 0::bigint), (0, 1), (1, -1), (1, 0), (1, 1)) AS d (dx, dy)
    JOIN k b ON b.cell = (a.frame << 22) | (((a.cx + d.dx) & 2047) << 11)
                         | ((a.cy + d.dy) & 2047)
    WHERE CASE WHEN d.dx = 0 AND d.dy = 0 THEN a.track_no < b.track_no
               ELSE a.track_no <> b.track_no END
      AND (b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y) < a.r2
    OFFSET 0) q
    WHERE p_boxes IS NULL
       OR features.pair_in_box(p_boxes[1:4], q.distance, q.heading_diff, q.a_speed, q.b_speed)
       OR features.pair_in_box(p_boxes[5:8], q.distance, q.heading_diff, q.a_speed, q.b_speed)
       OR features.pair_in_box(p_boxes[9:12], q.distance, q.heading_diff, q.a_speed, q.b_speed)
       OR features.pair_in_box(p_boxes[13:16], q.distance, q.heading_diff, q.a_speed, q.b_speed)
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
             p.a_speed AS speed, p.b_speed AS other_speed, p.heading_diff,
             (p.a_no << 32) | p.b_no AS pair_key
      FROM pairs p
      UNION ALL
      SELECT p.b_id, p.a_id, p.frame, p.ts, p.dx, p.dy, p.rvx, p.rvy, p.distance,
             (-p.dx) * p.b_ch + (-p.dy) * p.b_sh,
             (-p.dy) * p.b_ch - (-p.dx) * p.b_sh,
             p.b_speed, p.a_speed, p.heading_diff, (p.b_no << 32) | p.a_no
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
         o.heading_diff, o.pair_key
  FROM both_orders o
$$;

-- Every pair row of one source for ts in [p_from, p_to] (the candidates stage, the view).
CREATE OR REPLACE FUNCTION features.pair_rows(p_source bigint, p_from timestamptz,
                                              p_to timestamptz)
RETURNS SETOF features.pair_row
LANGUAGE sql STABLE
AS $$ SELECT * FROM features.pair_rows_of(p_source, p_from, p_to, NULL, NULL) $$;

-- The rows of one ordered pair (track, other) for ts in [p_from, p_to]: the scoring worker
-- reads a candidate's pair over its window, and a grid over every track of the window
-- would cost it the whole crowd per candidate.
CREATE OR REPLACE FUNCTION features.pair_track_rows(p_source bigint, p_track text,
                                                    p_other text, p_from timestamptz,
                                                    p_to timestamptz)
RETURNS SETOF features.pair_row
LANGUAGE sql STABLE
AS $$
  SELECT r.*
  FROM features.pair_rows_of(p_source, p_from, p_to, ARRAY[p_track, p_other], NULL) r
  WHERE r.track_id = p_track AND r.other_id = p_other
$$;

-- What analysts read: every pair row of every source, computed when read (security_invoker:
-- the reader's RLS on kinematics and sources applies). A filter on source_id picks the
-- sources whose grid join runs; every other filter, ts included, applies to its output, so
-- features.pair_rows(source, from, to) is the way to read one range of a source.
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

