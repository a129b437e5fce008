-- Features stage 1 · kinematics: per-point velocity, speed, acceleration, jerk, heading,
-- turn rate and curvature by backward differences within segments, after an optional
-- centred moving average. One set-based statement per range; see docs/pipeline.md.

-- Seconds of input before p_from that kinematics must read to compute rows at p_from:
-- h frames of smoothing plus three chained differences (each at most one gap limit apart).
CREATE OR REPLACE FUNCTION features.kinematics_context_s(p_half integer, p_gap double precision,
                                                         p_fps double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT p_half / p_fps + 3 * p_gap + 1.0 $$;

-- Wrap an angle difference in degrees into [-180, 180). No SET clause on purpose: a SQL
-- function with one is never inlined, and this runs once per row (arithmetic only).
CREATE OR REPLACE FUNCTION features.wrap_deg(p_deg double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT p_deg - 360.0::float8 * pg_catalog.floor((p_deg + 180.0::float8) / 360.0::float8) $$;

-- Stage function: recompute features.kinematics for ts in [p_from, p_to] of one source.
CREATE OR REPLACE FUNCTION features.compute_kinematics(p_source bigint, p_from timestamptz,
                                                       p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project   uuid;
  v_fps       double precision;
  v_half      integer;
  v_gap       double precision;
  v_read_from timestamptz;
  v_rows      bigint;
BEGIN
  SELECT s.project_id, coalesce(s.fps, 1.0) INTO v_project, v_fps
  FROM ingest.sources s WHERE s.source_id = p_source;
  v_half := greatest(1, pipeline.setting_int(v_project, 'smoothing_window')) / 2;
  v_gap := pipeline.setting_float(v_project, 'gap_limit_s');
  v_read_from := p_from - make_interval(secs => features.kinematics_context_s(v_half, v_gap, v_fps));

  DELETE FROM features.kinematics k
  WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to;

  INSERT INTO features.kinematics (project_id, source_id, track_id, frame, ts, segment, dt, x, y,
                                   vx, vy, speed, accel, jerk, heading, turn_rate, curvature)
  WITH pts AS (
    SELECT p.track_id, p.frame, p.ts, p.x, p.y
    FROM ingest.track_points p
    WHERE p.source_id = p_source AND p.ts >= v_read_from AND p.ts <= p_to
  ),
  -- The last stored point of each track before the read window seeds its segment count.
  prev AS (
    SELECT t.track_id, k.segment AS prev_segment, k.ts AS prev_ts
    FROM (SELECT DISTINCT pts.track_id FROM pts) t
    LEFT JOIN LATERAL (
      SELECT k.segment, k.ts FROM features.kinematics k
      WHERE k.source_id = p_source AND k.track_id = t.track_id AND k.ts < v_read_from
      ORDER BY k.ts DESC LIMIT 1
    ) k ON true
  ),
  gaps AS (
    SELECT p.*, pr.prev_segment,
           extract(epoch FROM p.ts - coalesce(lag(p.ts) OVER w, pr.prev_ts))::float8 AS step
    FROM pts p JOIN prev pr USING (track_id)
    WINDOW w AS (PARTITION BY p.track_id ORDER BY p.frame)
  ),
  seg AS (
    SELECT g.track_id, g.frame, g.ts, g.x, g.y,
           coalesce(g.prev_segment, 0)
             + sum(CASE WHEN g.step > v_gap THEN 1 ELSE 0 END)
                 OVER (PARTITION BY g.track_id ORDER BY g.frame ROWS UNBOUNDED PRECEDING) AS segment
    FROM gaps g
  ),
  smooth AS (
    SELECT s.track_id, s.frame, s.ts, s.segment,
           avg(s.x) OVER w AS x, avg(s.y) OVER w AS y,
           nullif(extract(epoch FROM s.ts - lag(s.ts) OVER k)::float8, 0) AS dt
    FROM seg s
    WINDOW k AS (PARTITION BY s.track_id, s.segment ORDER BY s.frame),
           w AS (k RANGE BETWEEN v_half PRECEDING AND v_half FOLLOWING)
  ),
  vel AS (
    SELECT m.*, (m.x - lag(m.x) OVER w) / m.dt AS vx, (m.y - lag(m.y) OVER w) / m.dt AS vy
    FROM smooth m
    WINDOW w AS (PARTITION BY m.track_id, m.segment ORDER BY m.frame)
  ),
  spd AS (
    SELECT v.*, sqrt(v.vx * v.vx + v.vy * v.vy) AS speed FROM vel v
  ),
  hdg AS (
    SELECT s.*,
           CASE WHEN s.speed > 1e-6 THEN
             CASE WHEN atan2d(s.vy, s.vx) = -180.0 THEN 180.0 ELSE atan2d(s.vy, s.vx) END
           END AS heading
    FROM spd s
  ),
  acc AS (
    SELECT h.*, (h.speed - lag(h.speed) OVER w) / h.dt AS accel,
           features.wrap_deg(h.heading - lag(h.heading) OVER w) / h.dt AS turn_rate
    FROM hdg h
    WINDOW w AS (PARTITION BY h.track_id, h.segment ORDER BY h.frame)
  ),
  jrk AS (
    SELECT a.*, (a.accel - lag(a.accel) OVER w) / a.dt AS jerk
    FROM acc a
    WINDOW w AS (PARTITION BY a.track_id, a.segment ORDER BY a.frame)
  )
  SELECT v_project, p_source, j.track_id, j.frame, j.ts, j.segment, j.dt, j.x, j.y,
         j.vx, j.vy, j.speed, j.accel, j.jerk, j.heading, j.turn_rate,
         CASE WHEN j.speed > 1e-6 THEN radians(j.turn_rate) / j.speed END
  FROM jrk j
  WHERE j.ts >= p_from;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
