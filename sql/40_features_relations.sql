-- Features stage 3 · relations: both orders of every pair of tracks closer than the radius
-- at the same frame. Candidate pairs come from a uniform grid (cell = radius): each point
-- probes its own cell and the four "forward" neighbours (half the neighbourhood: every pair
-- is matched once and written in both orders), so cost grows with close pairs, not with the
-- square of the actors in a frame.

-- The pair radius of a source: metres for metric sources, pixels for pixel sources.
CREATE OR REPLACE FUNCTION features.relation_radius(p_source bigint) RETURNS double precision
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (SELECT pipeline.setting_float(s.project_id,
                   CASE s.units WHEN 'px' THEN 'relation_radius_px' ELSE 'relation_radius_m' END)
          FROM ingest.sources s WHERE s.source_id = p_source);
END
$$;

-- Stage function: recompute features.relations for ts in [p_from, p_to] of one source.
-- Each point probes its own and 4 of the 8 neighbouring cells through one bigint hash key
-- (frame, cell x mod 2048, cell y mod 2048): a single hash condition, so even with no
-- statistics on freshly written kinematics the join is a hash join whose probes match
-- only close candidates. Cells that collide through the modulo (≥ 20 km apart at 10 m)
-- are removed by the distance check. The key holds the frame whole (the cell bits are the
-- low 22), so equal keys mean the same frame and the join has no separate frame condition:
-- with statistics on the kinematics (the tick analyzes them, pipeline.analyze_written) the
-- planner otherwise hashed on the frame alone and crossed every same-frame pair with the 5
-- offsets (343k rows instead of 8.6k on the plaza scene, 2x the stage's time).
CREATE OR REPLACE FUNCTION features.compute_relations(p_source bigint, p_from timestamptz,
                                                      p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
-- Freshly written kinematics have no statistics yet (estimates of one row): a nested loop
-- over the probe join is then catastrophic and a merge join sorts every probe; the hash
-- join is right at every size. Local to this function only.
SET enable_nestloop = off
SET enable_mergejoin = off
AS $$
DECLARE
  v_project uuid;
  v_radius  double precision;
  v_rows    bigint;
BEGIN
  SELECT s.project_id INTO v_project FROM ingest.sources s WHERE s.source_id = p_source;
  v_radius := features.relation_radius(p_source);

  DELETE FROM features.relations r
  WHERE r.source_id = p_source AND r.ts >= p_from AND r.ts <= p_to;

  INSERT INTO features.relations (project_id, source_id, ts, frame, track_id, other_id, distance,
                                  bearing, lon_offset, lat_offset, speed, other_speed, rel_speed,
                                  approach_speed, heading_diff)
  WITH k AS MATERIALIZED (
    SELECT c.*, (c.frame << 22) | ((c.cx & 2047) << 11) | (c.cy & 2047) AS cell
    FROM (SELECT k.track_id, k.frame, k.ts, k.x, k.y, k.vx, k.vy, k.speed, k.heading,
                 cosd(k.heading) AS ch, sind(k.heading) AS sh,
                 floor(k.x / v_radius)::bigint AS cx, floor(k.y / v_radius)::bigint AS cy
          FROM features.kinematics k
          WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to
          OFFSET 0) c
  ),
  -- Half the neighbourhood: the own cell and the four "forward" cells. Of two points in
  -- different neighbouring cells exactly one lies forward of the other; inside the own cell
  -- the track order picks one. Each unordered pair is matched once and emitted in both orders.
  probe AS (
    SELECT k.track_id, k.frame, k.ts, k.x, k.y, k.vx, k.vy, k.speed, k.heading, k.ch, k.sh,
           d.dx = 0 AND d.dy = 0 AS own,
           (k.frame << 22) | (((k.cx + d.dx) & 2047) << 11) | ((k.cy + d.dy) & 2047) AS cell
    FROM k CROSS JOIN (VALUES (0::bigint, 0::bigint), (0, 1), (1, -1), (1, 0), (1, 1))
                      AS d (dx, dy)
  ),
  -- Order-free quantities once per pair (a → b); swapping the order negates dx, dy and the
  -- relative velocity exactly, so distance, rel_speed and approach_speed are the same.
  pairs AS (
    SELECT a.frame, a.ts, a.track_id AS a_id, b.track_id AS b_id, a.speed AS a_speed,
           b.speed AS b_speed, a.heading AS a_heading, b.heading AS b_heading,
           a.ch AS a_ch, a.sh AS a_sh, b.ch AS b_ch, b.sh AS b_sh,
           b.x - a.x AS dx, b.y - a.y AS dy, b.vx - a.vx AS rvx, b.vy - a.vy AS rvy
    FROM probe a
    JOIN k b ON b.cell = a.cell
    WHERE CASE WHEN a.own THEN a.track_id COLLATE "C" < b.track_id COLLATE "C"
               ELSE a.track_id <> b.track_id END
    OFFSET 0
  ),
  near AS (
    SELECT p.*, sqrt(p.dx * p.dx + p.dy * p.dy) AS distance FROM pairs p OFFSET 0
  ),
  close AS (
    SELECT n.*, sqrt(n.rvx * n.rvx + n.rvy * n.rvy) AS rel_speed,
           CASE WHEN n.distance > 0 THEN (n.dx * n.rvx + n.dy * n.rvy) / n.distance END
             AS approach_speed
    FROM near n
    WHERE n.distance < v_radius
    OFFSET 0
  ),
  -- Both orders: me, other, my heading frame and the offset from me to the other.
  both_orders AS (
    SELECT c.frame, c.ts, c.distance, c.rel_speed, c.approach_speed, o.*
    FROM close c
    CROSS JOIN LATERAL (VALUES
      (c.a_id, c.b_id, c.a_speed, c.b_speed, c.a_heading, c.b_heading, c.a_ch, c.a_sh,
       c.dx, c.dy),
      (c.b_id, c.a_id, c.b_speed, c.a_speed, c.b_heading, c.a_heading, c.b_ch, c.b_sh,
       -c.dx, -c.dy)) AS o (track_id, other_id, speed, other_speed, heading, other_heading,
                            ch, sh, odx, ody)
    OFFSET 0
  ),
  framed AS (
    SELECT f.*, f.odx * f.ch + f.ody * f.sh AS lon_offset, f.ody * f.ch - f.odx * f.sh AS lat_offset
    FROM both_orders f
    OFFSET 0
  ),
  bear AS (
    SELECT f.*, atan2d(f.lat_offset, f.lon_offset) AS b FROM framed f OFFSET 0
  )
  SELECT v_project, p_source, f.ts, f.frame, f.track_id, f.other_id, f.distance,
         CASE WHEN f.b = -180.0 THEN 180.0 ELSE f.b END,
         f.lon_offset, f.lat_offset, f.speed, f.other_speed, f.rel_speed, f.approach_speed,
         abs(features.wrap_deg(f.other_heading - f.heading))
  FROM bear f;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
