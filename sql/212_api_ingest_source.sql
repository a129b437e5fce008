-- The api schema, ingest: the source a batch names and the settings it is ingested with.

-- The source a batch names, created on its first batch with the batch's settings (fps,
-- units px|m|cm|mm, scale or homography, time_origin); later batches inherit them and fail
-- when they ask for different ones — workers/ingest/transform.resolve_source's rules.
CREATE OR REPLACE FUNCTION ingest.api_resolve_source(p_project uuid, p_batch jsonb)
RETURNS ingest.sources
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_batch ->> 'source';
  v_fps double precision;
  v_units text := p_batch ->> 'units';
  v_scale double precision;
  v_h jsonb := p_batch -> 'homography';
  v_origin timestamptz;
  v_bad text;             -- the first homography entry that is not a finite double
  v_asked jsonb;          -- the transform this batch asks for (NULL: none)
  v_transform jsonb;      -- the transform the batch is ingested with
  v_stored ingest.sources;
  v_in_units text;
  v_final text;
  v_row ingest.sources;
BEGIN
  IF jsonb_typeof(p_batch -> 'source') IS DISTINCT FROM 'string'
     OR v_name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' THEN
    RAISE EXCEPTION 'source must be a source name (letters, digits, ".", "_", "-"; up to 128)'
      USING ERRCODE = '22023', HINT = 'e.g. {"source": "cam-1", "points": [...]}';
  END IF;
  IF p_batch ? 'fps' THEN
    v_fps := ingest.api_number(p_batch -> 'fps');
    IF v_fps IS NULL OR NOT (v_fps > 0 AND v_fps < 1e6) THEN
      RAISE EXCEPTION 'fps %: frames per second must be a positive number', p_batch -> 'fps'
        USING ERRCODE = '22023';
    END IF;
  END IF;
  IF v_units IS NOT NULL AND v_units NOT IN ('px', 'm', 'cm', 'mm') THEN
    RAISE EXCEPTION 'units "%": use px, m, cm or mm', v_units USING ERRCODE = '22023';
  END IF;
  IF p_batch ? 'time_origin' THEN
    BEGIN
      v_origin := (p_batch ->> 'time_origin')::timestamptz;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
      RAISE EXCEPTION 'time_origin "%" is not a timestamp', p_batch ->> 'time_origin'
        USING ERRCODE = '22023', HINT = 'e.g. "2026-01-01T00:00:00Z"';
    END;
  END IF;
  IF p_batch ? 'scale' AND p_batch ? 'homography' THEN
    RAISE EXCEPTION 'give scale or homography, not both' USING ERRCODE = '22023';
  END IF;
  IF p_batch ? 'scale' THEN
    v_scale := ingest.api_number(p_batch -> 'scale');
    IF v_scale IS NULL OR NOT (v_scale > 0 AND v_scale < 1e6) THEN
      RAISE EXCEPTION 'scale %: metres per pixel must be a positive number', p_batch -> 'scale'
        USING ERRCODE = '22023';
    END IF;
    IF coalesce(v_units, 'px') <> 'px' THEN
      RAISE EXCEPTION 'scale converts pixels; drop it or use units px (got units %)', v_units
        USING ERRCODE = '22023';
    END IF;
    v_asked := jsonb_build_object('scale', v_scale);
  ELSIF p_batch ? 'homography' THEN
    IF jsonb_typeof(v_h) IS DISTINCT FROM 'array' OR jsonb_array_length(v_h) <> 3
       OR EXISTS (SELECT FROM jsonb_array_elements(v_h) r
                  WHERE jsonb_typeof(r) <> 'array' OR jsonb_array_length(r) <> 3
                     OR EXISTS (SELECT FROM jsonb_array_elements(r) c
                                WHERE jsonb_typeof(c) <> 'number')) THEN
      RAISE EXCEPTION 'homography: a 3x3 list of finite numbers, e.g. [[1,0,0],[0,1,0],[0,0,1]]'
        USING ERRCODE = '22023';
    END IF;
    -- A JSON number may be beyond double precision (1e400): name the first such entry.
    SELECT format('homography[%s][%s] is not a finite double-precision number '
                  '(|value| above 1.8e308)', r.i - 1, c.j - 1) INTO v_bad
    FROM jsonb_array_elements(v_h) WITH ORDINALITY AS r(v, i)
    CROSS JOIN LATERAL jsonb_array_elements(r.v) WITH ORDINALITY AS c(v, j)
    WHERE NOT abs(ingest.api_number(c.v)) < 'Infinity'::float8
    ORDER BY r.i, c.j LIMIT 1;
    IF v_bad IS NOT NULL THEN
      RAISE EXCEPTION '%', v_bad USING ERRCODE = '22023',
        HINT = 'A homography is defined up to scale: divide every entry by the largest one.';
    END IF;
    -- The determinant in numeric, which cannot overflow (entries of 1e200 would in double).
    IF abs((v_h #>> '{0,0}')::numeric * ((v_h #>> '{1,1}')::numeric * (v_h #>> '{2,2}')::numeric
                                         - (v_h #>> '{1,2}')::numeric * (v_h #>> '{2,1}')::numeric)
           - (v_h #>> '{0,1}')::numeric * ((v_h #>> '{1,0}')::numeric * (v_h #>> '{2,2}')::numeric
                                           - (v_h #>> '{1,2}')::numeric * (v_h #>> '{2,0}')::numeric)
           + (v_h #>> '{0,2}')::numeric * ((v_h #>> '{1,0}')::numeric * (v_h #>> '{2,1}')::numeric
                                           - (v_h #>> '{1,1}')::numeric * (v_h #>> '{2,0}')::numeric))
       < 1e-12 THEN
      RAISE EXCEPTION 'homography: the matrix is singular (determinant 0); check the calibration'
        USING ERRCODE = '22023';
    END IF;
    IF coalesce(v_units, 'px') <> 'px' THEN
      RAISE EXCEPTION 'homography maps image pixels; use units px (got units %)', v_units
        USING ERRCODE = '22023';
    END IF;
    v_asked := jsonb_build_object('homography', v_h);
  ELSIF v_units IN ('cm', 'mm') THEN
    v_asked := jsonb_build_object('scale', CASE v_units WHEN 'cm' THEN 0.01 ELSE 0.001 END,
                                  'input_units', v_units);
  END IF;

  SELECT * INTO v_stored FROM ingest.sources s
  WHERE s.project_id = p_project AND s.name = v_name;
  IF FOUND THEN
    IF v_fps IS NOT NULL AND v_stored.fps IS NOT NULL AND abs(v_stored.fps - v_fps) > 1e-9 THEN
      RAISE EXCEPTION 'source "%" has fps %; this batch says %', v_name, v_stored.fps, v_fps
        USING ERRCODE = '22023', HINT = 'Use the source''s fps or a new source name.';
    END IF;
    IF v_asked IS NOT NULL AND v_asked IS DISTINCT FROM v_stored.transform THEN
      RAISE EXCEPTION 'source "%" has transform %; this batch asks for %', v_name,
        coalesce(v_stored.transform::text, 'none'), v_asked
        USING ERRCODE = '22023', HINT = 'Send the same units/scale/homography or a new source.';
    END IF;
    IF v_origin IS NOT NULL AND v_origin <> v_stored.time_origin THEN
      RAISE EXCEPTION 'source "%" has time origin %; this batch says %', v_name,
        v_stored.time_origin, v_origin USING ERRCODE = '22023', HINT = 'Use a new source name.';
    END IF;
    v_transform := coalesce(v_asked, v_stored.transform);
    v_in_units := coalesce(v_units, v_transform ->> 'input_units',
                           CASE WHEN v_stored.units = 'px' OR v_transform IS NOT NULL
                                THEN 'px' ELSE 'm' END);
  ELSE
    v_transform := v_asked;
    v_in_units := coalesce(v_units, v_transform ->> 'input_units',
                           CASE WHEN v_transform IS NOT NULL THEN 'px' ELSE 'm' END);
  END IF;
  v_final := CASE WHEN v_transform IS NOT NULL OR v_in_units IN ('m', 'cm', 'mm')
                  THEN 'm' ELSE 'px' END;
  IF v_stored.source_id IS NOT NULL AND v_final <> v_stored.units THEN
    RAISE EXCEPTION 'source "%" stores %; this batch would be %', v_name, v_stored.units, v_final
      USING ERRCODE = '22023', HINT = 'Send the same units/scale/homography as before.';
  END IF;

  v_row := ingest.ensure_source(p_project, v_name, v_final, v_transform, v_fps,
                                coalesce(v_origin, v_stored.time_origin,
                                         '2026-01-01 00:00:00+00'::timestamptz));
  -- Created concurrently by another batch with other settings?
  IF v_row.units <> v_final OR v_row.transform IS DISTINCT FROM v_transform
     OR (v_origin IS NOT NULL AND v_row.time_origin <> v_origin) THEN
    RAISE EXCEPTION 'source "%" was just created with other settings (units %, transform %)',
      v_name, v_row.units, coalesce(v_row.transform::text, 'none') USING ERRCODE = '22023',
      HINT = 'Submit again to use them, or pick a new source name.';
  END IF;
  RETURN v_row;
END
$$;
