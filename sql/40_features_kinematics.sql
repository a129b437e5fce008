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
-- One INSERT … SELECT with two sorts and four window passes: (1) step to the previous point
-- (hence dt) and (2) the running gap count (segment) by track and frame; (3) the centred
-- moving average (a RANGE frame over frame numbers) by track segment; (4) the lags of the
-- smoothed position and of dt up to three rows back, from which velocity, speed, acceleration,
-- jerk, heading and turn rate are all computed inline (backward differences of differences, the
-- same arithmetic as chained lags, without a window pass per derivative).
CREATE OR REPLACE FUNCTION features.compute_kinematics(p_source bigint, p_from timestamptz,
                                                       p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
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
  WITH pts AS MATERIALIZED (
    SELECT p.track_id, p.frame, p.ts, p.x, p.y
    FROM ingest.track_points p
    WHERE p.source_id = p_source AND p.ts >= v_read_from AND p.ts <= p_to
  ),
  -- The last stored point of each track before the read window seeds its segment count
  -- (one index probe per track, not per point).
  prev AS MATERIALIZED (
    SELECT t.track_id, k.segment AS prev_segment, k.ts AS prev_ts
    FROM (SELECT DISTINCT pts.track_id FROM pts) t
    CROSS JOIN LATERAL (
      SELECT k.segment, k.ts FROM features.kinematics k
      WHERE k.source_id = p_source AND k.track_id = t.track_id AND k.ts < v_read_from
      ORDER BY k.ts DESC LIMIT 1
    ) k
  ),
  gaps AS (
    SELECT p.track_id, p.frame, p.ts, p.x, p.y, pr.prev_segment,
           date_part('epoch', p.ts - coalesce(lag(p.ts) OVER w, pr.prev_ts)) AS step,
           date_part('epoch', p.ts - lag(p.ts) OVER w) AS since_prev
    FROM pts p LEFT JOIN prev pr ON pr.track_id = p.track_id
    WINDOW w AS (PARTITION BY p.track_id ORDER BY p.frame)
  ),
  seg AS (
    SELECT g.track_id, g.frame, g.ts, g.x, g.y,
           -- dt: the step to the previous row of the same segment (NULL at a segment start:
           -- a step over the gap limit, or no earlier row in the read window).
           CASE WHEN g.step > v_gap THEN NULL ELSE nullif(g.since_prev, 0) END AS dt,
           coalesce(g.prev_segment, 0)
             + sum(CASE WHEN g.step > v_gap THEN 1 ELSE 0 END)
                 OVER (PARTITION BY g.track_id ORDER BY g.frame ROWS UNBOUNDED PRECEDING) AS segment
    FROM gaps g
  ),
  smooth AS (
    SELECT s.track_id, s.frame, s.ts, s.segment, s.dt,
           avg(s.x) OVER w AS x, avg(s.y) OVER w AS y
    FROM seg s
    WINDOW k AS (PARTITION BY s.track_id, s.segment ORDER BY s.frame),
           w AS (k RANGE BETWEEN v_half PRECEDING AND v_half FOLLOWING)
  ),
  -- Lags 1..3 of the smoothed position and 1..2 of dt (NULL across a segment start).
  lags AS (
    SELECT m.track_id, m.frame, m.ts, m.segment, m.dt, m.x, m.y,
           lag(m.x, 1) OVER k AS x1, lag(m.y, 1) OVER k AS y1,
           lag(m.x, 2) OVER k AS x2, lag(m.y, 2) OVER k AS y2,
           lag(m.x, 3) OVER k AS x3, lag(m.y, 3) OVER k AS y3,
           lag(m.dt, 1) OVER k AS dt1, lag(m.dt, 2) OVER k AS dt2
    FROM smooth m
    WINDOW k AS (PARTITION BY m.track_id, m.segment ORDER BY m.frame)
  ),
  -- Each step below is fenced (OFFSET 0): without it the planner flattens the chain and
  -- re-evaluates every referenced expression (sqrt, atan2d, divisions) at each use.
  -- Velocity now (v0) and one and two rows back (v1, v2).
  vel AS (
    SELECT l.track_id, l.frame, l.ts, l.segment, l.dt, l.dt1, l.x, l.y,
           (l.x - l.x1) / l.dt AS vx0, (l.y - l.y1) / l.dt AS vy0,
           (l.x1 - l.x2) / l.dt1 AS vx1, (l.y1 - l.y2) / l.dt1 AS vy1,
           (l.x2 - l.x3) / l.dt2 AS vx2, (l.y2 - l.y3) / l.dt2 AS vy2
    FROM lags l
    WHERE l.ts >= p_from
    OFFSET 0
  ),
  spd AS (
    SELECT v.track_id, v.frame, v.ts, v.segment, v.dt, v.dt1, v.x, v.y, v.vx0, v.vy0,
           v.vx1, v.vy1, sqrt(v.vx0 * v.vx0 + v.vy0 * v.vy0) AS s0,
           sqrt(v.vx1 * v.vx1 + v.vy1 * v.vy1) AS s1, sqrt(v.vx2 * v.vx2 + v.vy2 * v.vy2) AS s2
    FROM vel v
    OFFSET 0
  ),
  -- Heading is undefined at rest; atan2d's -180 is reported as 180.
  ang AS (
    SELECT s.*, CASE WHEN s.s0 > 1e-6 THEN atan2d(s.vy0, s.vx0) END AS t0,
           CASE WHEN s.s1 > 1e-6 THEN atan2d(s.vy1, s.vx1) END AS t1
    FROM spd s
    OFFSET 0
  ),
  hdg AS (
    SELECT a.track_id, a.frame, a.ts, a.segment, a.dt, a.x, a.y, a.vx0, a.vy0, a.s0,
           (a.s0 - a.s1) / a.dt AS a0, (a.s1 - a.s2) / a.dt1 AS a1,
           CASE WHEN a.t0 = -180.0 THEN 180.0 ELSE a.t0 END AS h0,
           CASE WHEN a.t0 = -180.0 THEN 180.0 ELSE a.t0 END
             - CASE WHEN a.t1 = -180.0 THEN 180.0 ELSE a.t1 END AS dh
    FROM ang a
    OFFSET 0
  ),
  -- Turn rate: the heading difference wrapped into [-180, 180), per second.
  turn AS (
    SELECT h.*, (h.dh - 360.0::float8 * floor((h.dh + 180.0::float8) / 360.0::float8)) / h.dt
                  AS turn_rate
    FROM hdg h
    OFFSET 0
  )
  SELECT v_project, p_source, t.track_id, t.frame, t.ts, t.segment, t.dt, t.x, t.y,
         t.vx0, t.vy0, t.s0, t.a0, (t.a0 - t.a1) / t.dt, t.h0, t.turn_rate,
         CASE WHEN t.s0 > 1e-6 THEN radians(t.turn_rate) / t.s0 END
  FROM turn t;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
