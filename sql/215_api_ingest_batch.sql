-- The api schema, ingest: the endpoint (POST /rpc/ingest_batch).

DROP FUNCTION IF EXISTS api.ingest_batch(jsonb);
-- Validate and merge one small batch of points into the caller's project.
CREATE FUNCTION api.ingest_batch(p_batch jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c_max_points constant integer := 10000;
  c_fields constant text[] := ARRAY['project_id', 'source', 'points', 'idempotency_key',
                                    'strict', 'fps', 'units', 'scale', 'homography',
                                    'time_origin'];
  v_started timestamptz := clock_timestamp();
  v_unknown text[];
  v_project uuid;
  v_points jsonb := p_batch -> 'points';
  v_count integer;
  v_key text;
  v_dup record;
  v_source ingest.sources;
  v_checked jsonb;
  v_merged record;
  v_lock_timeout text;
  v_bytes bigint;
  v_out jsonb;
BEGIN
  IF jsonb_typeof(p_batch) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'the batch must be a JSON object' USING ERRCODE = '22023',
      HINT = 'e.g. {"p_batch": {"source": "cam-1", "points": [{"track_id": "7", "frame": 0, '
             '"t": 0.0, "x": 1.5, "y": 2.0}]}}';
  END IF;
  v_unknown := ARRAY(SELECT k FROM jsonb_object_keys(p_batch) k WHERE k <> ALL (c_fields)
                     ORDER BY k);
  IF cardinality(v_unknown) > 0 THEN
    RAISE EXCEPTION 'unknown field(s) in the batch: %', array_to_string(v_unknown, ', ')
      USING ERRCODE = '22023', HINT = 'Fields: ' || array_to_string(c_fields, ', ') || '.';
  END IF;
  v_project := auth.target_project(p_batch, ARRAY['customer', 'project_admin']);

  IF jsonb_typeof(v_points) IS DISTINCT FROM 'array' OR jsonb_array_length(v_points) = 0 THEN
    RAISE EXCEPTION 'points must be a non-empty array of points' USING ERRCODE = '22023',
      HINT = 'Each point: {"track_id", "frame", "t" (s since the source''s time origin; '
             'optional with an fps), "x", "y", optional "class", "confidence"}.';
  END IF;
  v_count := jsonb_array_length(v_points);
  IF v_count > c_max_points THEN
    RAISE EXCEPTION 'a batch of % points is over the limit of % points', v_count, c_max_points
      USING ERRCODE = 'PT413',
      HINT = format('Split it into batches of at most %s points, or load files with '
                    '`secinf ingest`.', c_max_points);
  END IF;
  IF p_batch ? 'strict' AND jsonb_typeof(p_batch -> 'strict') <> 'boolean' THEN
    RAISE EXCEPTION 'strict must be true or false' USING ERRCODE = '22023';
  END IF;
  IF p_batch ? 'idempotency_key' AND (jsonb_typeof(p_batch -> 'idempotency_key') <> 'string'
       OR length(p_batch ->> 'idempotency_key') NOT BETWEEN 1 AND 200) THEN
    RAISE EXCEPTION 'idempotency_key must be a string of 1 to 200 characters'
      USING ERRCODE = '22023';
  END IF;
  -- Default key: the source name and the points (jsonb text is canonical), so sending the
  -- same body twice is a duplicate.
  v_key := coalesce(p_batch ->> 'idempotency_key',
                    'sha256:' || encode(sha256(convert_to(
                      jsonb_build_array(p_batch -> 'source', v_points)::text, 'UTF8')), 'hex'));

  -- Submissions of one key serialise on the CLI's advisory lock (workers/queries/ingest.sql
  -- lock_key); a known key returns the stored batch's summary and stores nothing.
  PERFORM pg_advisory_xact_lock(hashtextextended(v_project::text || ':' || v_key, 0));
  SELECT b.batch_id, s.name AS source, b.source_id, b.rows_total, b.rows_inserted,
         b.rows_duplicate, b.rows_invalid, b.rows_ignored, b.errors, s.units
    INTO v_dup
  FROM ingest.batches b JOIN ingest.sources s ON s.source_id = b.source_id
  WHERE b.project_id = v_project AND b.idempotency_key = v_key;
  IF FOUND THEN
    RETURN jsonb_build_object(
      'batch_id', v_dup.batch_id, 'source', v_dup.source, 'source_id', v_dup.source_id,
      'rows_total', v_dup.rows_total, 'inserted', v_dup.rows_inserted,
      'duplicate', v_dup.rows_duplicate, 'invalid', v_dup.rows_invalid,
      'ignored', v_dup.rows_ignored, 'errors', v_dup.errors, 'error_counts', '{}'::jsonb,
      'duplicate_batch', true, 'units', v_dup.units, 'idempotency_key', v_key,
      'seconds', round(extract(epoch FROM clock_timestamp() - v_started), 3));
  END IF;

  -- At most points_in_flight_max points not yet processed per project (sql/230_api_caps.sql):
  -- 429, before the source is created or anything staged.
  PERFORM ingest.check_points_in_flight(v_project, v_count);
  -- The month's quota of bytes ingested (the request body): 402 before anything is staged.
  -- Points are checked, and counted, at the merge (ingest.close_batch).
  v_bytes := octet_length(p_batch::text);
  PERFORM billing.check_quota(v_project, 'bytes_ingested', v_bytes);
  v_source := ingest.api_resolve_source(v_project, p_batch);
  v_checked := ingest.api_stage_points(v_points, v_source);
  IF coalesce((p_batch ->> 'strict')::boolean, false) AND (v_checked ->> 'invalid')::bigint > 0 THEN
    RAISE EXCEPTION 'batch rejected (strict): % of % points are invalid; nothing was stored',
      v_checked ->> 'invalid', v_count USING ERRCODE = 'PT422',
      DETAIL = (v_checked || jsonb_build_object('rejected', true, 'source', v_source.name,
                                                'units', v_source.units))::text,
      HINT = 'Fix the points listed in details, or send without "strict" to load the valid ones.';
  END IF;

  -- The merge locks the source row; a running pipeline tick holds it until it commits.
  v_lock_timeout := current_setting('lock_timeout');
  PERFORM set_config('lock_timeout', '5s', true);
  BEGIN
    SELECT * INTO v_merged
    FROM ingest.merge_staged(v_project, v_source.source_id, v_key, 'api', NULL,
                             to_regclass('pg_temp.api_ingest_stage'),
                             (v_checked ->> 'rows_total')::bigint,
                             (v_checked ->> 'invalid')::bigint, 0, v_checked -> 'errors');
  EXCEPTION WHEN lock_not_available THEN
    RAISE EXCEPTION 'source "%" is being processed by the pipeline right now', v_source.name
      USING ERRCODE = 'PT503',
      HINT = 'Retry in a few seconds with the same idempotency_key; nothing was stored.';
  END;
  PERFORM set_config('lock_timeout', v_lock_timeout, true);
  UPDATE ingest.batches b SET created_by = auth.subject() WHERE b.batch_id = v_merged.batch_id;
  PERFORM billing.count(v_project, 'bytes_ingested', v_bytes, 'batch:' || v_merged.batch_id);

  v_out := jsonb_build_object(
    'batch_id', v_merged.batch_id, 'source', v_source.name, 'source_id', v_source.source_id,
    'rows_total', (v_checked ->> 'rows_total')::bigint, 'inserted', v_merged.rows_inserted,
    'duplicate', v_merged.rows_duplicate, 'invalid', (v_checked ->> 'invalid')::bigint,
    'ignored', 0, 'errors', v_checked -> 'errors', 'error_counts', v_checked -> 'error_counts',
    'duplicate_batch', v_merged.duplicate_batch, 'units', v_source.units,
    'idempotency_key', v_key,
    'seconds', round(extract(epoch FROM clock_timestamp() - v_started), 3));
  IF v_merged.late_from IS NOT NULL THEN
    v_out := v_out || jsonb_build_object('late', jsonb_build_object(
      'from_ts', v_merged.late_from, 'to_ts', v_merged.late_to));
  END IF;
  PERFORM audit.record(v_project, 'ingest.batch', v_source.name,
                       jsonb_build_object('batch_id', v_merged.batch_id, 'via', 'api',
                                          'rows_total', v_count,
                                          'inserted', v_merged.rows_inserted));
  RETURN v_out;
END
$$;
COMMENT ON FUNCTION api.ingest_batch(jsonb) IS
  'Ingest a small batch (at most 10000 points) of track points into the caller''s project '
  '(customers, project admins): {source, points: [{track_id, frame, t, x, y, class?, '
  'confidence?}], idempotency_key?, strict?, fps?, units?, scale?, homography?, '
  'time_origin?}. The CLI''s validation codes, per point; a known idempotency key returns '
  'the stored summary (duplicate_batch: true) and stores nothing; points already stored are '
  'counted as duplicate. At most points_in_flight_max (default 1000000) points not yet '
  'processed by the pipeline per project: 429 beyond.';
