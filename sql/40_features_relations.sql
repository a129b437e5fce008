-- Features stage 3 · relations: both orders of every pair of tracks closer than the radius
-- at the same frame. Candidate pairs come from a uniform grid (cell = radius): each point
-- probes its own and the eight neighbouring cells, so cost grows with close pairs, not with
-- the square of the actors in a frame.

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
-- Each point probes its own and the 8 neighbouring cells through one bigint hash key
-- (frame, cell x mod 2048, cell y mod 2048): a single hash condition, so even with no
-- statistics on freshly written kinematics the join is a hash join whose probes match
-- only close candidates. Cells that collide through the modulo (≥ 20 km apart at 10 m)
-- are removed by the frame and distance checks.
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
    SELECT k.track_id, k.frame, k.ts, k.x, k.y, k.vx, k.vy, k.speed, k.heading,
           floor(k.x / v_radius)::bigint AS cx, floor(k.y / v_radius)::bigint AS cy
    FROM features.kinematics k
    WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to
  ),
  cells AS MATERIALIZED (
    SELECT k.*, (k.frame << 22) | ((k.cx & 2047) << 11) | (k.cy & 2047) AS cell FROM k
  ),
  probe AS (
    SELECT k.*, (k.frame << 22) | (((k.cx + d.dx) & 2047) << 11) | ((k.cy + d.dy) & 2047) AS cell
    FROM k CROSS JOIN (VALUES (-1::bigint, -1::bigint), (-1, 0), (-1, 1), (0, -1), (0, 0),
                              (0, 1), (1, -1), (1, 0), (1, 1)) AS d (dx, dy)
  ),
  pairs AS (
    SELECT a.track_id, a.frame, a.ts, a.vx, a.vy, a.speed, a.heading,
           b.track_id AS other_id, b.vx AS ovx, b.vy AS ovy, b.speed AS other_speed,
           b.heading AS other_heading, b.x - a.x AS dx, b.y - a.y AS dy
    FROM probe a
    JOIN cells b ON b.cell = a.cell
    WHERE b.frame = a.frame AND b.track_id <> a.track_id
    OFFSET 0
  ),
  near AS (
    SELECT p.*, sqrt(p.dx * p.dx + p.dy * p.dy) AS distance, cosd(p.heading) AS ch,
           sind(p.heading) AS sh
    FROM pairs p
    OFFSET 0
  ),
  framed AS (
    SELECT n.*, n.dx * n.ch + n.dy * n.sh AS lon_offset, n.dy * n.ch - n.dx * n.sh AS lat_offset,
           n.ovx - n.vx AS rvx, n.ovy - n.vy AS rvy
    FROM near n
    WHERE n.distance < v_radius
    OFFSET 0
  ),
  bear AS (
    SELECT f.*, atan2d(f.lat_offset, f.lon_offset) AS b FROM framed f OFFSET 0
  )
  SELECT v_project, p_source, f.ts, f.frame, f.track_id, f.other_id, f.distance,
         CASE WHEN f.b = -180.0 THEN 180.0 ELSE f.b END,
         f.lon_offset, f.lat_offset, f.speed, f.other_speed,
         sqrt(f.rvx * f.rvx + f.rvy * f.rvy),
         CASE WHEN f.distance > 0 THEN (f.dx * f.rvx + f.dy * f.rvy) / f.distance END,
         abs(features.wrap_deg(f.other_heading - f.heading))
  FROM bear f;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
