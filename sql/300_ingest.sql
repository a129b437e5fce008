-- Ingest: the canonical merge of a staged batch, and scene geometry.
-- Shared by the CLI (`secinf ingest`, which COPYs into a temporary staging table) and the
-- API (which stages a JSON body). SECURITY INVOKER: the caller's rights and RLS apply, and
-- the caller's temporary staging table is visible to it.

-- ---------------------------------------------------------------- batches
-- A batch is opened, filled and closed in the caller's transaction:
--   open_batch  records it (or finds its idempotency key) and locks the source row, so
--               the source's high_water cannot move until commit;
--   (the CLI COPYs append chunks — every ts above high_water, every frame above the
--    newest stored frame — straight into ingest.track_points with the batch id)
--   close_batch merges whatever was staged (overlapping or late rows) and writes the
--               counts, the batch's time range, high_water and the dirty range.
-- merge_staged (the API and the pipeline's loader) is open + close of one stage.
DROP FUNCTION IF EXISTS ingest.open_batch(uuid, bigint, text, text, text);
DROP FUNCTION IF EXISTS ingest.close_batch(bigint, regclass, regclass, bigint, bigint, bigint,
                                           jsonb, bigint, timestamptz, timestamptz, bigint);

-- Record a batch and lock its source; a known key returns the stored batch (duplicate).
CREATE OR REPLACE FUNCTION ingest.open_batch(
  p_project uuid, p_source bigint, p_idempotency_key text, p_format text, p_file_name text
) RETURNS TABLE (batch_id bigint, duplicate_batch boolean, high_water timestamptz,
                 high_frame bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_batch bigint;
  v_high timestamptz;
  v_high_frame bigint;
BEGIN
  INSERT INTO ingest.batches AS b (project_id, source_id, idempotency_key, format, file_name,
                                   status)
  VALUES (p_project, p_source, p_idempotency_key, p_format, p_file_name, 'applied')
  ON CONFLICT (project_id, idempotency_key) DO NOTHING
  RETURNING b.batch_id INTO v_batch;
  IF v_batch IS NULL THEN
    RETURN QUERY
      SELECT b.batch_id, true, NULL::timestamptz, NULL::bigint FROM ingest.batches b
      WHERE b.project_id = p_project AND b.idempotency_key = p_idempotency_key;
    RETURN;
  END IF;
  -- One batch per source at a time: high_water moves under this row lock.
  SELECT s.high_water INTO v_high FROM ingest.sources s
  WHERE s.source_id = p_source AND s.project_id = p_project FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'source % is not in project %', p_source, p_project USING ERRCODE = 'P0002';
  END IF;
  IF v_high IS NOT NULL THEN
    SELECT max(tp.frame) INTO v_high_frame FROM ingest.track_points tp
    WHERE tp.source_id = p_source AND tp.ts = v_high;
  END IF;
  RETURN QUERY SELECT v_batch, false, v_high, v_high_frame;
END
$$;

-- Merge a batch's stage (may be NULL) into ingest.track_points (and ingest.poses) and
-- finish the batch row. p_direct* describe rows the caller already COPYed straight into
-- ingest.track_points (append chunks); p_dropped counts rows the caller dropped as repeats
-- of keys earlier in the same batch (duplicates). A staged point whose (source, track,
-- frame) is stored already is skipped (duplicate); staged rows at or below the high_water
-- that open_batch saw leave one dirty range.
-- The stage has columns (row_no, track_id, frame, ts, x, y, raw_x, raw_y, class, confidence);
-- the pose stage (track_id, frame, keypoints real[]).
CREATE OR REPLACE FUNCTION ingest.close_batch(
  p_batch bigint, p_stage regclass, p_poses regclass, p_rows_total bigint,
  p_rows_invalid bigint, p_rows_ignored bigint, p_errors jsonb, p_direct bigint,
  p_direct_min timestamptz, p_direct_max timestamptz, p_dropped bigint
) RETURNS TABLE (rows_inserted bigint, rows_duplicate bigint, poses_inserted bigint,
                 late_from timestamptz, late_to timestamptz)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project uuid;
  v_source bigint;
  v_high timestamptz;
  v_high_frame bigint;
  v_staged bigint := 0;
  v_min timestamptz;
  v_max timestamptz;
  v_min_frame bigint;
  v_inserted bigint := 0;
  v_poses bigint := 0;
  v_late_from timestamptz;
  v_late_to timestamptz;
  v_cols text := 'project_id, source_id, track_id, frame, ts, x, y, raw_x, raw_y, class, '
                 'confidence, batch_id';
  v_select text := 'SELECT $1, $2, s.track_id, s.frame, s.ts, s.x, s.y, s.raw_x, s.raw_y, '
                   's.class, s.confidence, $3 FROM %s s';
BEGIN
  SELECT b.project_id, b.source_id INTO v_project, v_source
  FROM ingest.batches b WHERE b.batch_id = p_batch;
  -- Locked by open_batch in this transaction; still the value from before this batch.
  SELECT s.high_water INTO v_high FROM ingest.sources s WHERE s.source_id = v_source FOR UPDATE;
  IF p_stage IS NOT NULL THEN
    EXECUTE format('SELECT count(*), min(ts), max(ts), min(frame) FROM %s', p_stage)
      INTO v_staged, v_min, v_max, v_min_frame;
  END IF;
  IF v_high IS NOT NULL AND v_staged > 0 THEN
    SELECT max(tp.frame) INTO v_high_frame FROM ingest.track_points tp
    WHERE tp.source_id = v_source AND tp.ts = v_high;
  END IF;

  IF v_staged = 0 THEN
    NULL;
  ELSIF v_high IS NULL OR (v_min > v_high AND v_min_frame > coalesce(v_high_frame, -1)) THEN
    -- Append: every frame is newer than anything stored before this batch, and the
    -- caller's direct rows never repeat a staged key, so only the stage's own repeats can
    -- collide, and the unique key drops them.
    EXECUTE format('INSERT INTO ingest.track_points (%s) ' || v_select
                   || ' ON CONFLICT DO NOTHING', v_cols, p_stage)
      USING v_project, v_source, p_batch;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
  ELSE
    -- Overlap or late data: skip points whose (source, track, frame) exists, and note the
    -- time range of the late rows that did land.
    EXECUTE format('WITH ins AS (INSERT INTO ingest.track_points (%s) ' || v_select
                   || ' WHERE NOT EXISTS (SELECT FROM ingest.track_points tp'
                   || ' WHERE tp.source_id = $2 AND tp.track_id = s.track_id'
                   || ' AND tp.frame = s.frame) ON CONFLICT DO NOTHING RETURNING ts)'
                   || ' SELECT count(*), min(ts) FILTER (WHERE ts <= $4),'
                   || ' max(ts) FILTER (WHERE ts <= $4) FROM ins', v_cols, p_stage)
      USING v_project, v_source, p_batch, v_high
      INTO v_inserted, v_late_from, v_late_to;
    IF v_late_from IS NOT NULL THEN
      INSERT INTO ingest.dirty_ranges (project_id, source_id, from_ts, to_ts, batch_id)
      VALUES (v_project, v_source, v_late_from, v_late_to, p_batch);
    END IF;
  END IF;

  IF p_poses IS NOT NULL AND p_stage IS NOT NULL THEN
    EXECUTE format('INSERT INTO ingest.poses (project_id, source_id, track_id, frame, ts, '
                   'keypoints, batch_id) SELECT DISTINCT ON (p.track_id, p.frame) $1, $2, '
                   'p.track_id, p.frame, s.ts, p.keypoints, $3 FROM %s p JOIN %s s '
                   'ON s.track_id = p.track_id AND s.frame = p.frame '
                   'ON CONFLICT DO NOTHING', p_poses, p_stage)
      USING v_project, v_source, p_batch;
    GET DIAGNOSTICS v_poses = ROW_COUNT;
  END IF;

  v_min := least(v_min, p_direct_min);
  v_max := greatest(v_max, p_direct_max);
  UPDATE ingest.batches b
  SET rows_total = p_rows_total, rows_invalid = p_rows_invalid, rows_ignored = p_rows_ignored,
      errors = coalesce(p_errors, '[]'), rows_inserted = v_inserted + p_direct,
      rows_duplicate = v_staged - v_inserted + p_dropped, min_ts = v_min, max_ts = v_max
  WHERE b.batch_id = p_batch;
  IF v_max IS NOT NULL THEN
    UPDATE ingest.sources s SET high_water = greatest(s.high_water, v_max)
    WHERE s.source_id = v_source;
  END IF;
  -- Metering (sql/240_billing_usage.sql): the new points count against the month's quota;
  -- past it the whole transaction (this batch, its source, its stage) rolls back (PT402).
  PERFORM billing.check_quota(v_project, 'points_ingested', v_inserted + p_direct);
  PERFORM billing.count(v_project, 'points_ingested', v_inserted + p_direct,
                        'batch:' || p_batch);
  RETURN QUERY SELECT v_inserted + p_direct, v_staged - v_inserted + p_dropped, v_poses,
                      v_late_from, v_late_to;
END
$$;

-- ---------------------------------------------------------------- merge
-- Merge a staged batch into ingest.track_points (and ingest.poses) with its batch record,
-- in the caller's transaction (open_batch + close_batch). A known idempotency key returns
-- the original batch with duplicate_batch = true and changes nothing.
CREATE OR REPLACE FUNCTION ingest.merge_staged(
  p_project uuid, p_source bigint, p_idempotency_key text, p_format text, p_file_name text,
  p_stage regclass, p_rows_total bigint, p_rows_invalid bigint, p_rows_ignored bigint,
  p_errors jsonb, p_poses regclass DEFAULT NULL
) RETURNS TABLE (batch_id bigint, duplicate_batch boolean, rows_inserted bigint,
                 rows_duplicate bigint, poses_inserted bigint, late_from timestamptz,
                 late_to timestamptz)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_open record;
  v_done record;
BEGIN
  SELECT * INTO v_open
  FROM ingest.open_batch(p_project, p_source, p_idempotency_key, p_format, p_file_name);
  IF v_open.duplicate_batch THEN
    RETURN QUERY
      SELECT b.batch_id, true, b.rows_inserted, b.rows_duplicate, 0::bigint,
             NULL::timestamptz, NULL::timestamptz
      FROM ingest.batches b WHERE b.batch_id = v_open.batch_id;
    RETURN;
  END IF;
  SELECT * INTO v_done
  FROM ingest.close_batch(v_open.batch_id, p_stage, p_poses, p_rows_total, p_rows_invalid,
                          p_rows_ignored, p_errors, 0, NULL, NULL, 0);
  RETURN QUERY SELECT v_open.batch_id, false, v_done.rows_inserted, v_done.rows_duplicate,
                      v_done.poses_inserted, v_done.late_from, v_done.late_to;
END
$$;

-- ---------------------------------------------------------------- sources
-- Get or create a source; returns the stored row (the caller checks that it agrees).
CREATE OR REPLACE FUNCTION ingest.ensure_source(
  p_project uuid, p_name text, p_units text, p_transform jsonb, p_fps double precision,
  p_time_origin timestamptz
) RETURNS ingest.sources
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_row ingest.sources;
BEGIN
  INSERT INTO ingest.sources AS s (project_id, name, units, transform, fps, time_origin)
  VALUES (p_project, p_name, p_units, p_transform, p_fps, p_time_origin)
  ON CONFLICT (project_id, name) DO NOTHING
  RETURNING * INTO v_row;
  IF v_row.source_id IS NULL THEN
    SELECT * INTO v_row FROM ingest.sources s WHERE s.project_id = p_project AND s.name = p_name;
    IF v_row.fps IS NULL AND p_fps IS NOT NULL THEN
      UPDATE ingest.sources s SET fps = p_fps WHERE s.source_id = v_row.source_id
      RETURNING * INTO v_row;
    END IF;
  END IF;
  RETURN v_row;
END
$$;

-- ---------------------------------------------------------------- scene geometry
-- A JSON point list [[x, y], ...] as Postgres geometry text: '(x1,y1),(x2,y2),...'.
CREATE OR REPLACE FUNCTION ingest.points_text(p_points jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT string_agg(format('(%s,%s)', (p ->> 0)::double precision, (p ->> 1)::double precision),
                    ',' ORDER BY n)
  FROM jsonb_array_elements(p_points) WITH ORDINALITY AS e(p, n)
$$;

-- Upsert a source's zones, routes and triggers from a normalised scene document
-- ({"zones": [{name, kind, polygon, attributes}], "routes": [{name, from_zone, polyline}],
--   "triggers": [{name, kind, ts, position, radius}], optional "simulated": {preset, seed,
--   noise, duration}}, coordinates already in the source's units). Idempotent: the same
-- scene twice leaves the same rows.
CREATE OR REPLACE FUNCTION ingest.upsert_scene(p_project uuid, p_source bigint, p_scene jsonb)
RETURNS TABLE (zones bigint, routes bigint, triggers bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_zones bigint;
  v_routes bigint;
  v_triggers bigint;
BEGIN
  INSERT INTO ingest.zones AS z (project_id, source_id, name, kind, polygon, attributes)
  SELECT p_project, p_source, e ->> 'name', coalesce(e ->> 'kind', 'zone'),
         ('(' || ingest.points_text(e -> 'polygon') || ')')::polygon,
         coalesce(e -> 'attributes', '{}')
  FROM jsonb_array_elements(coalesce(p_scene -> 'zones', '[]')) e
  ON CONFLICT (source_id, name) DO UPDATE
    SET kind = excluded.kind, polygon = excluded.polygon, attributes = excluded.attributes;
  GET DIAGNOSTICS v_zones = ROW_COUNT;

  INSERT INTO ingest.routes AS r (project_id, source_id, name, from_zone, path)
  SELECT p_project, p_source, e ->> 'name', e ->> 'from_zone',
         ('[' || ingest.points_text(e -> 'polyline') || ']')::path
  FROM jsonb_array_elements(coalesce(p_scene -> 'routes', '[]')) e
  ON CONFLICT (source_id, name) DO UPDATE
    SET from_zone = excluded.from_zone, path = excluded.path;
  GET DIAGNOSTICS v_routes = ROW_COUNT;

  INSERT INTO ingest.triggers AS t (project_id, source_id, name, kind, ts, position, radius)
  SELECT p_project, p_source, e ->> 'name', coalesce(e ->> 'kind', 'event'),
         (e ->> 'ts')::timestamptz,
         CASE WHEN jsonb_typeof(e -> 'position') = 'array'
              THEN point((e -> 'position' ->> 0)::double precision,
                         (e -> 'position' ->> 1)::double precision) END,
         (e ->> 'radius')::double precision
  FROM jsonb_array_elements(coalesce(p_scene -> 'triggers', '[]')) e
  ON CONFLICT (source_id, name) DO UPDATE
    SET kind = excluded.kind, ts = excluded.ts, position = excluded.position,
        radius = excluded.radius;
  GET DIAGNOSTICS v_triggers = ROW_COUNT;

  -- A simulated scene (secinf simulate) marks its source, e.g. for datasets' data cards.
  IF jsonb_typeof(p_scene -> 'simulated') = 'object' THEN
    UPDATE ingest.sources s
    SET attributes = s.attributes || jsonb_build_object('simulated', p_scene -> 'simulated')
    WHERE s.source_id = p_source
      AND s.attributes -> 'simulated' IS DISTINCT FROM p_scene -> 'simulated';
  END IF;
  RETURN QUERY SELECT v_zones, v_routes, v_triggers;
END
$$;
