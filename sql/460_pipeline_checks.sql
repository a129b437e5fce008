-- Plausibility checks per source: what `secinf tick`, `secinf pipeline status` and
-- `secinf ingest` (KPF) warn about instead of producing nothing silently. Each warning is
-- {"code", "message"}; the message names the source and the fix. See docs/pipeline.md
-- ("Warnings").

-- ======================================================================= checks
-- The source's warnings as a JSON array (empty when all is well; NULL for an unknown
-- source). Codes:
--   no_ontology        the project has no active ontology: the candidates stage does nothing
--   implausible_speed  metric source whose people walk far too fast or hardly move
--   implausible_height ingest measured people far from 1.7 m tall (a camera model's scale)
--   no_candidates      features were computed after the ontology was active, no candidate
-- Cheap on large sources: speeds come from at most 100 people tracks seen in the newest ten
-- minutes the pipeline processed, 200 kinematics rows each (index probes only; a LIMIT on a
-- time range would take whichever tracks a tick happened to write first), and the count
-- of points stops at 100,000.
CREATE OR REPLACE FUNCTION pipeline.source_checks(p_source bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
  v_src      record;
  v_out      jsonb := '[]';
  v_active   record;
  v_last_to  timestamptz;      -- end of the newest successful run
  v_cand_run timestamptz;      -- when the newest run that ran the candidates stage finished
  v_speed    record;
  v_height   double precision;
  v_points   bigint;
BEGIN
  SELECT s.source_id, s.name, s.project_id, s.units, s.attributes,
         o.slug || '/' || p.slug AS ref
    INTO v_src
  FROM ingest.sources s
  JOIN core.projects p ON p.project_id = s.project_id
  JOIN core.organizations o ON o.org_id = p.org_id
  WHERE s.source_id = p_source;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;

  -- ------------------------------------------------------------------ no_ontology
  SELECT ont.ontology_id, ont.loaded_at INTO v_active
  FROM rules.ontologies ont WHERE ont.project_id = v_src.project_id AND ont.active;
  IF NOT FOUND THEN
    v_out := v_out || jsonb_build_array(jsonb_build_object(
      'code', 'no_ontology',
      'message', format('source %s: project %s has no active ontology, so no candidates are '
                        'computed; run `secinf rules load -p %s`',
                        v_src.name, v_src.ref, v_src.ref)));
  END IF;

  SELECT r.to_ts INTO v_last_to FROM pipeline.runs r
  WHERE r.source_id = p_source AND r.status = 'ok' AND r.to_ts IS NOT NULL
  ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1;

  -- ------------------------------------------------------------------ implausible_speed
  -- People-class tracks (person, pedestrian or no class) of a metric source: a median
  -- moving speed (speed > 0.2 m/s) over 3 m/s means the units, scale or frame rate are off;
  -- so does a 90th percentile under 0.25 m/s over at least 200 points (nobody walks).
  IF v_src.units = 'm' AND v_last_to IS NOT NULL THEN
    WITH seen AS MATERIALIZED (
      -- Tracks present in ten 1-second slices, one a minute back from the newest processed
      -- point, with their class: few index entries per slice (ts leads the unique index).
      -- OFFSET 0 keeps each slice its own index range scan (flattened, the planner chose a
      -- scan of the source's every point).
      SELECT DISTINCT tp.track_id, tp.class
      FROM generate_series(0, 9) AS sl(i)
      CROSS JOIN LATERAL (
        SELECT p.track_id, p.class FROM ingest.track_points p
        WHERE p.source_id = p_source
          AND p.ts > v_last_to - make_interval(secs => 60 * sl.i + 1)
          AND p.ts <= v_last_to - make_interval(secs => 60 * sl.i)
        OFFSET 0) tp
    ), people_tracks AS (
      SELECT se.track_id FROM seen se
      WHERE se.class IS NULL OR lower(se.class) IN ('person', 'pedestrian')
      GROUP BY se.track_id
      ORDER BY md5(se.track_id)       -- an arbitrary, repeatable choice of 100
      LIMIT 100
    ), people AS (
      -- Each track's newest 200 speeds of those ten minutes (the (source, track, ts) B-tree).
      SELECT k.speed FROM people_tracks pt
      CROSS JOIN LATERAL (
        SELECT kk.speed FROM features.kinematics kk
        WHERE kk.source_id = p_source AND kk.track_id = pt.track_id
          AND kk.ts > v_last_to - interval '10 minutes' AND kk.ts <= v_last_to
          AND kk.speed IS NOT NULL
        ORDER BY kk.ts DESC LIMIT 200) k
    )
    SELECT count(*) AS n,
           count(*) FILTER (WHERE pe.speed > 0.2) AS n_moving,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY pe.speed) AS median_all,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY pe.speed)
             FILTER (WHERE pe.speed > 0.2) AS median_moving,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY pe.speed) AS p90
      INTO v_speed
    FROM people pe;
    IF (v_speed.n_moving >= 20 AND v_speed.median_moving > 3.0)
       OR (v_speed.n >= 200 AND v_speed.p90 < 0.25) THEN
      v_out := v_out || jsonb_build_array(jsonb_build_object(
        'code', 'implausible_speed',
        'message', format('source %s: people walk at a median %s m/s (expected 0.8–2.0): '
                          'check --units/--scale/--homography or --fps',
                          v_src.name,
                          round(CASE WHEN v_speed.median_moving > 3.0 THEN v_speed.median_moving
                                     ELSE v_speed.median_all END::numeric, 2))));
    END IF;
  END IF;

  -- ------------------------------------------------------------------ implausible_height
  -- Recorded by ingest (KPF boxes through the camera model): attributes -> 'observed' ->
  -- 'person_height_m' -> 'p50' is the median over person tracks of each track's median.
  IF jsonb_typeof(v_src.attributes -> 'observed' -> 'person_height_m' -> 'p50') = 'number' THEN
    v_height := (v_src.attributes -> 'observed' -> 'person_height_m' ->> 'p50')::double precision;
    IF v_height > 0 AND (v_height < 1.4 OR v_height > 2.1) THEN
      v_out := v_out || jsonb_build_array(jsonb_build_object(
        'code', 'implausible_height',
        'message', format('source %s: people come out %s m tall: the camera model''s scale is '
                          'off by about ×%s; distances and speeds are scaled the same way — '
                          'fix the calibration (or expect thresholds to be met at the wrong '
                          'distances)',
                          v_src.name, round(v_height::numeric, 2),
                          round((1.7 / v_height)::numeric, 2))));
    END IF;
  END IF;

  -- ------------------------------------------------------------------ no_candidates
  -- Only with an active ontology (else no_ontology says it) and after a successful run
  -- that ran the candidates stage (pipeline.runs.stats has its row count).
  IF v_active.ontology_id IS NOT NULL THEN
    SELECT r.finished_at INTO v_cand_run FROM pipeline.runs r
    WHERE r.source_id = p_source AND r.status = 'ok' AND r.stats ? 'candidates'
    ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1;
    IF v_cand_run IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM candidates.candidates c
                       WHERE c.source_id = p_source AND c.ontology_id = v_active.ontology_id) THEN
      SELECT count(*) INTO v_points
      FROM (SELECT 1 FROM features.kinematics k WHERE k.source_id = p_source LIMIT 100001) k;
      IF v_points > 0 THEN
        v_out := v_out || jsonb_build_array(jsonb_build_object(
          'code', 'no_candidates',
          'message', CASE
            WHEN v_cand_run < v_active.loaded_at THEN
              format('source %s: features for %s points but no candidates: the active '
                     'ontology was loaded after the features were computed; run `secinf rules '
                     'backfill -p %s --source %s`',
                     v_src.name, CASE WHEN v_points > 100000 THEN 'over 100000'
                                      ELSE v_points::text END, v_src.ref, v_src.name)
            ELSE
              format('source %s: features for %s points but no candidates: the active '
                     'ontology''s rules found nothing — check the units and `secinf rules '
                     'show -p %s`',
                     v_src.name, CASE WHEN v_points > 100000 THEN 'over 100000'
                                      ELSE v_points::text END, v_src.ref)
          END));
      END IF;
    END IF;
  END IF;

  RETURN v_out;
END
$$;
