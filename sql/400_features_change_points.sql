-- Features stage 4 · change points: two-sided CUSUM on speed and heading per track segment
-- (features.cusum, PL/Python). CUSUM state runs over a track's whole history, so every track
-- the range touches is recomputed whole, in one call for all of them.

-- Stage function: recompute features.change_points for the tracks with points in [p_from, p_to].
CREATE OR REPLACE FUNCTION features.compute_change_points(p_source bigint, p_from timestamptz,
                                                          p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
  v_project uuid;
  v_params  jsonb;
  v_tracks  text[];
  v_rows    bigint;
BEGIN
  SELECT s.project_id INTO v_project FROM ingest.sources s WHERE s.source_id = p_source;
  v_params := jsonb_build_object(
    'warmup', pipeline.setting_int(v_project, 'cusum_warmup'),
    'speed_k', pipeline.setting_float(v_project, 'cusum_speed_k'),
    'speed_h', pipeline.setting_float(v_project, 'cusum_speed_h'),
    'heading_k', pipeline.setting_float(v_project, 'cusum_heading_k'),
    'heading_h', pipeline.setting_float(v_project, 'cusum_heading_h'),
    'min_speed', pipeline.setting_float(v_project, 'cusum_min_speed'));

  SELECT array_agg(t.track_id) INTO v_tracks
  FROM (SELECT DISTINCT k.track_id FROM features.kinematics k
        WHERE k.source_id = p_source AND k.ts >= p_from AND k.ts <= p_to) t;
  IF v_tracks IS NULL THEN
    RETURN 0;
  END IF;

  DELETE FROM features.change_points c
  WHERE c.source_id = p_source AND c.track_id = ANY (v_tracks);

  INSERT INTO features.change_points (project_id, source_id, track_id, ts, frame, signal,
                                      direction, magnitude, score)
  WITH pts AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY k.track_id COLLATE "C", k.segment, k.frame)::integer AS idx,
           k.track_id, k.segment, k.frame, k.ts, k.speed, k.heading
    FROM features.kinematics k
    WHERE k.source_id = p_source AND k.track_id = ANY (v_tracks)
  ),
  -- One sort for the value arrays: aggregates over a sorted subquery keep its order (an
  -- ORDER BY inside each array_agg would sort the rows once per aggregate). Track segments
  -- cross into Python as their 0-based start indices only.
  found AS (
    SELECT c.*
    FROM (SELECT array_agg(p.speed) AS speed, array_agg(p.heading) AS heading
          FROM (SELECT pts.speed, pts.heading FROM pts ORDER BY pts.idx) p) a,
         (SELECT array_agg(g.first - 1 ORDER BY g.first) AS starts
          FROM (SELECT min(pts.idx) AS first FROM pts GROUP BY pts.track_id, pts.segment) g) b,
         features.cusum(b.starts, a.speed, a.heading, v_params) c
  )
  SELECT v_project, p_source, p.track_id, p.ts, p.frame, f.signal, f.direction, f.magnitude,
         f.score
  FROM found f JOIN pts p USING (idx);
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
