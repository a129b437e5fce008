-- Ingest queries used by workers/ingest (admin or pipeline connection).

-- name: find_source :one
-- The project's source called `name`, if it exists.
SELECT source_id, name, units, transform, fps, time_origin, high_water
FROM ingest.sources WHERE project_id = %(project_id)s AND name = %(name)s;

-- name: ensure_source :one
-- The project's source called `name`, created with these settings if new.
SELECT source_id, name, units, transform, fps, time_origin, high_water
FROM ingest.ensure_source(%(project_id)s, %(name)s, %(units)s, %(transform)s, %(fps)s,
                          %(time_origin)s);

-- name: lock_key :one
-- Serialises submissions of one idempotency key (released at commit or rollback).
SELECT pg_advisory_xact_lock(hashtextextended(%(project_id)s::text || ':' || %(key)s, 0));

-- name: find_batch :one
-- A batch of the project by its idempotency key, with its counts.
SELECT b.batch_id, b.source_id, s.name AS source, b.rows_total, b.rows_inserted, b.rows_duplicate,
       b.rows_invalid, b.rows_ignored, b.errors, b.status, b.min_ts, b.max_ts
FROM ingest.batches b JOIN ingest.sources s USING (source_id)
WHERE b.project_id = %(project_id)s AND b.idempotency_key = %(key)s;

-- name: stage_tables :exec
-- Temporary, dropped at commit: no WAL, never seen by other sessions.
CREATE TEMP TABLE ingest_stage (
  row_no bigint, track_id text, frame bigint, ts timestamptz, x double precision,
  y double precision, raw_x double precision, raw_y double precision, class text,
  confidence real
) ON COMMIT DROP;
CREATE TEMP TABLE ingest_pose_stage (
  row_no bigint, track_id text, frame bigint, keypoints real[]
) ON COMMIT DROP;

-- name: copy_stage :copy
-- Stream the file's track points into the stage table.
COPY ingest_stage (row_no, track_id, frame, ts, x, y, raw_x, raw_y, class, confidence)
FROM STDIN (FORMAT csv);

-- name: copy_pose_stage :copy
-- Stream the file's pose keypoints into the pose stage table.
COPY ingest_pose_stage (row_no, track_id, frame, keypoints) FROM STDIN (FORMAT csv);

-- name: orphan_poses :many
-- Poses that name no valid point of the batch.
SELECT p.row_no, p.track_id, p.frame FROM ingest_pose_stage p
WHERE NOT EXISTS (SELECT FROM ingest_stage s WHERE s.track_id = p.track_id
                                               AND s.frame = p.frame)
ORDER BY p.row_no;

-- name: drop_orphan_poses :exec
-- Drop staged poses whose track point is not staged.
DELETE FROM ingest_pose_stage p
WHERE NOT EXISTS (SELECT FROM ingest_stage s WHERE s.track_id = p.track_id
                                               AND s.frame = p.frame);

-- name: copy_append :copy
-- Append chunks straight into the hypertable (see workers/ingest/stream.py).
-- Binary rows from workers/ingest/pgbinary.py, whose column order this list must match.
COPY ingest.track_points (project_id, source_id, frame, ts, x, y, raw_x, raw_y, batch_id,
                          confidence, track_id, class)
FROM STDIN (FORMAT binary);

-- name: open_batch :one
-- Open (or find the duplicate of) a batch for the file; the source's high water.
SELECT batch_id, duplicate_batch, high_water, high_frame
FROM ingest.open_batch(%(project_id)s, %(source_id)s, %(key)s, %(format)s, %(file_name)s);

-- name: close_batch :many
-- Merge the staged rows into the hypertables and close the batch; counts.
SELECT rows_inserted, rows_duplicate, poses_inserted, late_from, late_to
FROM ingest.close_batch(%(batch_id)s, 'ingest_stage'::regclass,
                        CASE WHEN %(poses)s THEN 'ingest_pose_stage'::regclass END,
                        %(rows_total)s, %(rows_invalid)s, %(rows_ignored)s, %(errors)s,
                        %(direct)s, %(direct_min)s, %(direct_max)s, %(dropped)s);

-- name: upsert_scene :one
-- Store the source's scene (zones, routes, triggers); what it holds now.
SELECT zones, routes, triggers FROM ingest.upsert_scene(%(project_id)s, %(source_id)s,
                                                        %(scene)s);

-- name: tune_session :one
-- Bigger sort/hash memory for the merge's anti-join; local to the transaction.
SELECT set_config('work_mem', '256MB', true), set_config('maintenance_work_mem', '256MB', true);

-- name: bypasses_rls :one
-- Whether row-level security skips the session's role (COPY into an RLS table needs it),
-- and whether the role may switch to ingest_loader for the COPY (migration 0025).
SELECT r.rolsuper OR r.rolbypassrls AS bypass, current_user::text AS role,
       NOT (r.rolsuper OR r.rolbypassrls)
         AND EXISTS (SELECT FROM pg_roles l WHERE l.rolname = 'ingest_loader')
         AND pg_has_role(session_user, 'ingest_loader', 'MEMBER') AS loader
FROM pg_roles r WHERE r.rolname = current_user;

-- name: as_loader :exec
-- Load as the ingest_loader role for the rest of the transaction.
SET LOCAL ROLE ingest_loader;

-- name: check_bytes_quota :one
-- The month's quota of bytes ingested must hold the files (PT402 otherwise; docs/billing.md).
SELECT billing.check_quota(%(project_id)s, 'bytes_ingested', %(bytes)s) AS status;

-- name: count_bytes :one
-- The files' bytes, counted once per batch in the batch's transaction.
SELECT billing.count(%(project_id)s, 'bytes_ingested', %(bytes)s, 'batch:' || %(batch_id)s)
  AS counted;

-- name: end_recording :one
-- Mark the source's recording ended at its newest point (secinf ingest --ended); when the
-- end moved, queue the tail as a dirty range, so a tick re-runs the rules over it and
-- emits the intervals that last to the last frame.
WITH newest AS (
  SELECT max(p.ts) AS ts FROM ingest.track_points p WHERE p.source_id = %(source_id)s
), old AS (
  SELECT s.ended_at FROM ingest.sources s WHERE s.source_id = %(source_id)s
), marked AS (
  UPDATE ingest.sources s SET ended_at = n.ts
  FROM newest n
  WHERE s.source_id = %(source_id)s AND n.ts IS NOT NULL
  RETURNING s.project_id, s.ended_at
), dirty AS (
  INSERT INTO ingest.dirty_ranges (project_id, source_id, from_ts, to_ts, reason)
  SELECT m.project_id, %(source_id)s, m.ended_at, m.ended_at, 'recording ended'
  FROM marked m, old o
  WHERE o.ended_at IS DISTINCT FROM m.ended_at
)
SELECT (SELECT m.ended_at FROM marked m) AS ended_at;
