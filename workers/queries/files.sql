-- Queries of file delivery's workers (workers/ingest/upload_job.py), run as `pipeline`.

-- name: upload
SELECT u.upload_id, u.project_id, u.source, u.filename, u.object_key, u.bytes, u.sha256,
       u.status, u.options
FROM files.uploads u
WHERE u.upload_id = %(upload_id)s::uuid;

-- name: finish_upload
UPDATE files.uploads SET status = %(status)s, completed_at = now()
WHERE upload_id = %(upload_id)s::uuid;
