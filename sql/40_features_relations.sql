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
CREATE OR REPLACE FUNCTION features.compute_relations(p_source bigint, p_from timestamptz,
                                                      p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Freshly written kinematics have no statistics yet; a nested loop over the grid join is then
-- catastrophic (minutes), a hash join always fine.
SET enable_nestloop = off
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
  WITH k AS (
    SELECT k.track_id, k.frame, k.ts, k.x, k.y, k.vx, k.vy, k.speed, k.heading,
           floor(k.x / v_radius)::bigint AS cx, floor(k.y / v_radius)::bigint AS cy
    FROM features.kinematics k
    WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to
  ),
  probe AS (
    SELECT k.*, k.cx + d.dx AS ncx, k.cy + d.dy AS ncy
    FROM k CROSS JOIN (VALUES (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0), (0, 1),
                              (1, -1), (1, 0), (1, 1)) AS d (dx, dy)
  ),
  pairs AS (
    SELECT a.track_id, a.frame, a.ts, a.vx, a.vy, a.speed, a.heading,
           b.track_id AS other_id, b.vx AS ovx, b.vy AS ovy, b.speed AS other_speed,
           b.heading AS other_heading, b.x - a.x AS dx, b.y - a.y AS dy,
           sqrt((b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y)) AS distance
    FROM probe a
    JOIN k b ON b.frame = a.frame AND b.cx = a.ncx AND b.cy = a.ncy AND b.track_id <> a.track_id
  ),
  framed AS (
    SELECT p.*,
           p.dx * cosd(p.heading) + p.dy * sind(p.heading) AS lon_offset,
           p.dy * cosd(p.heading) - p.dx * sind(p.heading) AS lat_offset
    FROM pairs p
    WHERE p.distance < v_radius
  )
  SELECT v_project, p_source, f.ts, f.frame, f.track_id, f.other_id, f.distance,
         CASE WHEN atan2d(f.lat_offset, f.lon_offset) = -180.0 THEN 180.0
              ELSE atan2d(f.lat_offset, f.lon_offset) END,
         f.lon_offset, f.lat_offset, f.speed, f.other_speed,
         sqrt((f.ovx - f.vx) * (f.ovx - f.vx) + (f.ovy - f.vy) * (f.ovy - f.vy)),
         CASE WHEN f.distance > 0 THEN (f.dx * (f.ovx - f.vx) + f.dy * (f.ovy - f.vy)) / f.distance END,
         abs(features.wrap_deg(f.other_heading - f.heading))
  FROM framed f;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
