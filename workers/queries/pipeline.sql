-- Queries of the incremental pipeline (workers/pipeline).

-- name: tick
SELECT pipeline.tick(%(until_idle)s) AS result;

-- name: status
SELECT project_id::text AS project_id, source_id, source, watermark, newest,
       extract(epoch FROM lag)::float8 AS lag_s, dirty_pending, last_run_at, last_status,
       last_points, last_error_at, last_error
FROM pipeline.status
ORDER BY source_id;

-- name: ensure_source
SELECT source_id FROM ingest.ensure_source(%(project)s, %(name)s, %(units)s, NULL, %(fps)s,
                                           %(time_origin)s);

-- name: upsert_scene
SELECT * FROM ingest.upsert_scene(%(project)s, %(source)s, %(scene)s);

-- name: create_stage
CREATE TEMPORARY TABLE IF NOT EXISTS pipeline_copy_stage (
  row_no bigint, track_id text, frame bigint, ts timestamptz, x double precision,
  y double precision, raw_x double precision, raw_y double precision, class text,
  confidence real
) ON COMMIT DELETE ROWS;

-- name: copy_stage
COPY pipeline_copy_stage (row_no, track_id, frame, ts, x, y, raw_x, raw_y, class, confidence)
FROM STDIN WITH (FORMAT csv);

-- name: merge_stage
SELECT batch_id, rows_inserted, late_from, late_to
FROM ingest.merge_staged(%(project)s, %(source)s, %(key)s, 'api', NULL,
                         'pg_temp.pipeline_copy_stage'::regclass, %(total)s, 0, 0, '[]'::jsonb);
