-- Queries of file delivery's workers (workers/ingest/upload_job.py), run as `pipeline`.

-- name: upload :one
-- One upload, by id.
SELECT u.upload_id, u.project_id, u.source, u.filename, u.object_key, u.bytes, u.sha256,
       u.status, u.options, u.received_at
FROM files.uploads u
WHERE u.upload_id = %(upload_id)s::uuid;

-- name: finish_upload :exec
-- A 'sent' upload (S3 backend) was received when its job found the object as signed.
UPDATE files.uploads
SET status = %(status)s, completed_at = now(),
    received_at = CASE WHEN %(received)s THEN coalesce(received_at, now()) END
WHERE upload_id = %(upload_id)s::uuid;

-- name: upload_not_received :exec
-- The job found no object for a 'sent' upload: the client may PUT again (while the URL is
-- valid) and complete it again.
UPDATE files.uploads SET status = 'issued'
WHERE upload_id = %(upload_id)s::uuid AND received_at IS NULL;
