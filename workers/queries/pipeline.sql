-- Queries of the incremental pipeline (workers/pipeline).

-- name: tick :one
-- Run the pipeline's due work once (or until idle); what it did.
SELECT pipeline.tick(%(until_idle)s) AS result;

-- name: status :many
-- warnings: pipeline.source_checks (sql/460_pipeline_checks.sql), [{code, message}].
-- failures .. retry_at: pipeline.source_failures (failures 0: not failing).
SELECT project_id::text AS project_id, source_id, source, watermark, newest,
       extract(epoch FROM lag)::float8 AS lag_s, dirty_pending, last_run_at, last_status,
       last_points, last_error_at, last_error, failures, failing_since, failed_stage,
       failed_sqlstate, retry_at,
       coalesce(pipeline.source_checks(source_id), '[]') AS warnings
FROM pipeline.status
ORDER BY source_id;

-- name: retry_source :many
-- Failing sources made due now (NULL: all of them): the next tick tries them.
SELECT r.source_id FROM pipeline.retry_source(%(source_id)s) AS r(source_id)
ORDER BY r.source_id;

-- name: failing_source :one
-- The source's failure count and next retry, if it is failing.
SELECT source_id, failures, retry_at FROM pipeline.source_failures
WHERE source_id = %(source_id)s;

-- name: ensure_source :one
-- The project's source called `name`, created if new; its id.
SELECT source_id FROM ingest.ensure_source(%(project)s, %(name)s, %(units)s, NULL, %(fps)s,
                                           %(time_origin)s);

-- name: upsert_scene :many
-- Store the source's scene (zones, routes, triggers).
SELECT * FROM ingest.upsert_scene(%(project)s, %(source)s, %(scene)s);

-- name: create_stage :exec
-- The session's stage table for copied scene points.
CREATE TEMPORARY TABLE IF NOT EXISTS pipeline_copy_stage (
  row_no bigint, track_id text, frame bigint, ts timestamptz, x double precision,
  y double precision, raw_x double precision, raw_y double precision, class text,
  confidence real
) ON COMMIT DELETE ROWS;

-- name: copy_stage :copy
-- Stream track points into the stage table.
COPY pipeline_copy_stage (row_no, track_id, frame, ts, x, y, raw_x, raw_y, class, confidence)
FROM STDIN WITH (FORMAT csv);

-- name: merge_stage :one
-- Merge the staged points into the source as one batch; counts.
SELECT batch_id, rows_inserted, late_from, late_to
FROM ingest.merge_staged(%(project)s, %(source)s, %(key)s, 'api', NULL,
                         'pg_temp.pipeline_copy_stage'::regclass, %(total)s, 0, 0, '[]'::jsonb);

-- name: source_checks :many
-- The warnings of some sources (sql/460_pipeline_checks.sql), one row each, in order.
SELECT s.source_id, s.name AS source, c.value ->> 'code' AS code,
       c.value ->> 'message' AS message
FROM ingest.sources s
CROSS JOIN LATERAL jsonb_array_elements(pipeline.source_checks(s.source_id))
  WITH ORDINALITY AS c(value, n)
WHERE s.source_id = ANY (%(source_ids)s::bigint[])
ORDER BY s.source_id, c.n;

-- name: record_observed :exec
-- What an ingest measured (workers/ingest/load.py): merged into attributes -> 'observed'
-- key by key, so each measurement replaces only its own key.
UPDATE ingest.sources
SET attributes = attributes || jsonb_build_object(
      'observed', coalesce(attributes -> 'observed', '{}') || %(observed)s::jsonb)
WHERE source_id = %(source_id)s;

-- name: settings_levels :many
-- Every key with its default and the project's value (workers/pipeline/settings.py).
SELECT k.key, d.value AS default_value, p.value AS project_value,
       d.key IS NOT NULL AS has_default, p.key IS NOT NULL AS has_project
FROM (SELECT DISTINCT s.key FROM pipeline.settings s
      WHERE s.project_id IS NULL OR s.project_id = %(project_id)s) k
LEFT JOIN pipeline.settings d ON d.key = k.key AND d.project_id IS NULL
LEFT JOIN pipeline.settings p ON p.key = k.key AND p.project_id = %(project_id)s
ORDER BY k.key;

-- name: settings_source :one
-- The project's source named (or numbered) so, with its settings.
SELECT s.source_id, s.name, s.attributes -> 'settings' AS settings
FROM ingest.sources s
WHERE s.project_id = %(project_id)s
  AND (s.name = %(source)s OR s.source_id::text = %(source)s)
ORDER BY s.name = %(source)s DESC
LIMIT 1;

-- name: put_project_setting :exec
-- Set one pipeline setting of the project.
INSERT INTO pipeline.settings (project_id, key, value, updated_at)
VALUES (%(project_id)s, %(key)s, %(value)s, now())
ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value, updated_at = now();

-- name: delete_project_setting :exec
-- Remove one pipeline setting of the project.
DELETE FROM pipeline.settings WHERE project_id = %(project_id)s AND key = %(key)s;

-- name: put_source_setting :exec
-- pipeline.source_setting_float reads attributes -> 'settings' -> key.
UPDATE ingest.sources
SET attributes = attributes || jsonb_build_object(
      'settings', coalesce(attributes -> 'settings', '{}')
                  || jsonb_build_object(%(key)s::text, %(value)s::jsonb))
WHERE source_id = %(source_id)s;

-- name: delete_source_setting :exec
-- Remove one setting from the source's own settings.
UPDATE ingest.sources
SET attributes = attributes || jsonb_build_object(
      'settings', coalesce(attributes -> 'settings', '{}') - %(key)s::text)
WHERE source_id = %(source_id)s;

-- name: delete_watermarks :many
-- The next tick runs every stage of these sources from the start (docs/pipeline.md).
DELETE FROM features.watermarks w
USING ingest.sources s
WHERE s.source_id = w.source_id AND s.project_id = %(project_id)s
  AND (%(source_id)s::bigint IS NULL OR s.source_id = %(source_id)s)
RETURNING w.source_id;

-- name: run_source :one
-- One source's work on an autocommit connection as pipeline (a commit after every step):
-- p_results is NULL when another backend holds the source, else one element per range.
CALL pipeline.run_source(%(source_id)s, %(until_idle)s, NULL,
                         clock_timestamp() + make_interval(secs => %(budget_s)s), NULL);

-- name: schedule_sources :many
-- A pipeline_tick_source job per source with work (queue mode; pg_cron calls it through
-- pipeline.run_scheduled): the job found or queued per source.
SELECT s.source_id, s.project_id, s.job_id FROM pipeline.schedule_sources() s;

-- name: scheduled_mode :one
-- How pg_cron's call works the sources: transaction or queue.
SELECT pipeline.scheduled_mode() AS mode;

-- name: set_scheduled_mode :exec
-- The cluster default row of scheduled_ticks (`secinf pipeline mode`).
INSERT INTO pipeline.settings (project_id, key, value, updated_at)
VALUES (NULL, 'scheduled_ticks', to_jsonb(%(mode)s::text), now())
ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value, updated_at = now();
