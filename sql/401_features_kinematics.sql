-- Features stage 1 · kinematics: per-point smoothed position and velocity from a local
-- linear fit over a centred window of smoothing_s seconds, then speed, acceleration, jerk,
-- heading, turn rate and curvature by backward differences within segments. One set-based
-- statement per range; see docs/pipeline.md ("Definitions": every span is in seconds, so
-- the features mean the same at 2.5 Hz and at 30 fps).

-- Seconds of input before p_from that kinematics must read to compute rows at p_from:
-- half a smoothing window plus three chained differences (each at most one gap limit apart).
DROP FUNCTION IF EXISTS features.kinematics_context_s(integer, double precision, double precision);
CREATE OR REPLACE FUNCTION features.kinematics_context_s(p_half_s double precision,
                                                         p_gap double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT p_half_s + 3 * p_gap + 1.0 $$;

-- The sampling period of a source: the median step between a track's consecutive points over
-- its newest kinematics rows up to p_to (2.5 Hz data numbered at 25 fps steps 0.4 s, not
-- 1 / fps; a CSV with a t column may have no fps at all), else 1 / fps, else NULL. What
-- "k rows" means in seconds for zone hysteresis and rule gap tolerances.
CREATE OR REPLACE FUNCTION features.sampling_period_s(p_source bigint, p_to timestamptz)
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(
    (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY k1.dt)
     FROM (SELECT k.dt FROM features.kinematics k
           WHERE k.source_id = p_source AND k.ts <= p_to AND k.dt IS NOT NULL
           ORDER BY k.ts DESC LIMIT 2000) k1),
    (SELECT 1.0 / s.fps FROM ingest.sources s WHERE s.source_id = p_source))
$$;

-- Wrap an angle difference in degrees into [-180, 180). No SET clause on purpose: a SQL
-- function with one is never inlined, and this runs once per row (arithmetic only).
CREATE OR REPLACE FUNCTION features.wrap_deg(p_deg double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT p_deg - 360.0::float8 * pg_catalog.floor((p_deg + 180.0::float8) / 360.0::float8) $$;

-- Stage function: recompute features.kinematics for ts in [p_from, p_to] of one source.
-- One INSERT … SELECT: (1) step to the previous point (hence dt) and (2) the running gap
-- count (segment) by track and frame; (3) over a centred time window of ±smoothing_s/2 inside
-- the segment, the least-squares line through the raw points (order-1 Savitzky–Golay): its
-- value at the row is the smoothed position, its slope the velocity; a window with a single
-- point (smoothing_s = 0, or an isolated point) falls back to the backward difference of
-- positions; (4) lags of the velocity and of dt up to two rows back, from which speed,
-- acceleration, jerk, heading and turn rate are computed inline.
CREATE OR REPLACE FUNCTION features.compute_kinematics(p_source bigint, p_from timestamptz,
                                                       p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
  v_project   uuid;
  v_half      interval;
  v_gap       double precision;
  v_read_from timestamptz;
  v_rows      bigint;
  v_half_s    double precision;
  v_origin    timestamptz;
BEGIN
  SELECT s.project_id, s.time_origin INTO v_project, v_origin
  FROM ingest.sources s WHERE s.source_id = p_source;
  v_half_s := greatest(0.0, coalesce(pipeline.source_setting_float(p_source, 'smoothing_s'), 0.0)) / 2;
  v_half := make_interval(secs => v_half_s);
  v_gap := pipeline.setting_float(v_project, 'gap_limit_s');
  v_read_from := p_from - make_interval(secs => features.kinematics_context_s(v_half_s, v_gap));

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
           -- seconds since the source's time origin: small numbers for the line fit
           date_part('epoch', g.ts - v_origin) AS e,
           -- dt: the step to the previous row of the same segment (NULL at a segment start:
           -- a step over the gap limit, or no earlier row in the read window).
           CASE WHEN g.step > v_gap THEN NULL ELSE nullif(g.since_prev, 0) END AS dt,
           coalesce(g.prev_segment, 0)
             + sum(CASE WHEN g.step > v_gap THEN 1 ELSE 0 END)
                 OVER (PARTITION BY g.track_id ORDER BY g.frame ROWS UNBOUNDED PRECEDING) AS segment
    FROM gaps g
  ),
  -- The local line over ts in [ts - h, ts + h] of the same segment (RANGE by time: a dropped
  -- frame narrows the window's count, not its span).
  fit AS (
    SELECT s.track_id, s.frame, s.ts, s.segment, s.dt, s.e, s.x AS raw_x, s.y AS raw_y,
           regr_slope(s.x, s.e) OVER w AS bx, regr_intercept(s.x, s.e) OVER w AS ax,
           regr_slope(s.y, s.e) OVER w AS by, regr_intercept(s.y, s.e) OVER w AS ay
    FROM seg s
    WINDOW w AS (PARTITION BY s.track_id, s.segment ORDER BY s.ts
                 RANGE BETWEEN v_half PRECEDING AND v_half FOLLOWING)
  ),
  -- Fitted position (the line at the row's time; the raw point when the window holds only
  -- the row itself).
  pos AS (
    SELECT f.track_id, f.frame, f.ts, f.segment, f.dt, f.bx, f.by,
           coalesce(f.ax + f.bx * f.e, f.raw_x) AS x,
           coalesce(f.ay + f.by * f.e, f.raw_y) AS y
    FROM fit f
    OFFSET 0
  ),
  vel0 AS (
    SELECT p.track_id, p.frame, p.ts, p.segment, p.dt, p.x, p.y,
           coalesce(p.bx, (p.x - lag(p.x) OVER k) / p.dt) AS vx,
           coalesce(p.by, (p.y - lag(p.y) OVER k) / p.dt) AS vy
    FROM pos p
    WINDOW k AS (PARTITION BY p.track_id, p.segment ORDER BY p.frame)
  ),
  -- Velocity now (v0) and one and two rows back (v1, v2); dt one row back (dt1).
  lags AS (
    SELECT v.track_id, v.frame, v.ts, v.segment, v.dt, v.x, v.y,
           v.vx AS vx0, v.vy AS vy0,
           lag(v.vx, 1) OVER k AS vx1, lag(v.vy, 1) OVER k AS vy1,
           lag(v.vx, 2) OVER k AS vx2, lag(v.vy, 2) OVER k AS vy2,
           lag(v.dt, 1) OVER k AS dt1
    FROM vel0 v
    WINDOW k AS (PARTITION BY v.track_id, v.segment ORDER BY v.frame)
  ),
  vel AS (
    SELECT l.* FROM lags l WHERE l.ts >= p_from OFFSET 0
  ),
  -- Each step below is fenced (OFFSET 0): without it the planner flattens the chain and
  -- re-evaluates every referenced expression (sqrt, atan2d, divisions) at each use.
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
