-- Features stage 2 · zone presence: intervals inside each zone of the source, from
-- point-in-polygon on the (smoothed) kinematics positions with hysteresis. Presence is a
-- state over a track's whole history, so every track the range touches is recomputed whole.

-- Stage function: recompute features.zone_presence for the tracks with points in [p_from, p_to].
CREATE OR REPLACE FUNCTION features.compute_zone_presence(p_source bigint, p_from timestamptz,
                                                          p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
  v_project uuid;
  v_fps     double precision;
  v_k       integer;
  v_tracks  text[];
  v_rows    bigint;
BEGIN
  SELECT s.project_id, coalesce(s.fps, 1.0) INTO v_project, v_fps
  FROM ingest.sources s WHERE s.source_id = p_source;
  -- k rows of the source's own sampling period (not of its frame numbering): 1 s is 10 rows
  -- at 10 fps, 3 rows at 2.5 Hz, 30 rows at 30 fps.
  v_k := greatest(1, coalesce(pipeline.setting_int(v_project, 'hysteresis_frames'),
                              ceil(pipeline.setting_float(v_project, 'hysteresis_s')
                                   / coalesce(features.sampling_period_s(p_source, p_to),
                                              1.0 / v_fps) - 1e-9)::integer));

  SELECT array_agg(t.track_id) INTO v_tracks
  FROM (SELECT DISTINCT k.track_id FROM features.kinematics k
        WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to) t;
  IF v_tracks IS NULL THEN
    RETURN 0;
  END IF;

  DELETE FROM features.zone_presence z
  WHERE z.source_id = p_source AND z.track_id = ANY (v_tracks);

  INSERT INTO features.zone_presence (project_id, source_id, track_id, zone_id, zone_name,
                                      entered_at, left_at, entered_frame, left_frame)
  WITH zones AS (
    SELECT z.zone_id, z.name, z.polygon, box(z.polygon) AS bbox
    FROM ingest.zones z WHERE z.source_id = p_source
  ),
  pts AS (
    SELECT k.track_id, k.frame, k.ts, point(k.x, k.y) AS pt
    FROM features.kinematics k
    WHERE k.source_id = p_source AND k.track_id = ANY (v_tracks)
  ),
  -- Only (track, zone) pairs that ever reach the zone's bounding box can have an interval.
  near AS (
    SELECT DISTINCT p.track_id, z.zone_id
    FROM pts p JOIN zones z ON p.pt <@ z.bbox
  ),
  side AS (
    SELECT p.track_id, z.zone_id, p.frame, p.ts, (z.polygon @> p.pt) AS inside
    FROM near n
    JOIN zones z USING (zone_id)
    JOIN pts p USING (track_id)
  ),
  -- Runs of consecutive frames on one side (gaps and islands).
  runs AS (
    SELECT s.*, row_number() OVER (PARTITION BY s.track_id, s.zone_id ORDER BY s.frame)
              - row_number() OVER (PARTITION BY s.track_id, s.zone_id, s.inside ORDER BY s.frame)
                AS grp
    FROM side s
  ),
  confirmed AS (
    SELECT r.track_id, r.zone_id, r.inside, min(r.frame) AS first_frame, min(r.ts) AS first_ts
    FROM runs r
    GROUP BY r.track_id, r.zone_id, r.inside, r.grp
    HAVING count(*) >= v_k
  ),
  -- A confirmed run flips the state when its side differs from the previous confirmed run's
  -- (the state starts outside).
  flips AS (
    SELECT c.* FROM (
      SELECT c.*, lag(c.inside) OVER (PARTITION BY c.track_id, c.zone_id ORDER BY c.first_frame)
                  AS prev_inside
      FROM confirmed c
    ) c
    WHERE c.inside IS DISTINCT FROM coalesce(c.prev_inside, false)
  ),
  intervals AS (
    SELECT f.*, lead(f.first_ts) OVER w AS left_ts, lead(f.first_frame) OVER w AS left_frame
    FROM flips f
    WINDOW w AS (PARTITION BY f.track_id, f.zone_id ORDER BY f.first_frame)
  )
  SELECT v_project, p_source, i.track_id, i.zone_id, z.name, i.first_ts, i.left_ts,
         i.first_frame, i.left_frame
  FROM intervals i JOIN zones z USING (zone_id)
  WHERE i.inside;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
