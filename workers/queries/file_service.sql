-- Queries of the file service (workers/files, `secinf serve`), run as `pipeline`.

-- name: ping :one
-- Whether the database answers.
SELECT 1 AS ok;

-- name: url_secret :one
-- The signing secret of key id `kid` for signed URLs.
SELECT files.url_secret(%(kid)s) AS secret;

-- name: record_access :one
-- Log one file-service request in the access log.
SELECT files.record_access(%(key)s, %(method)s, %(result)s, %(address)s, %(details)s);

-- name: upload :many
-- The upload expected at this object key, if any.
SELECT u.status, u.bytes, u.sha256, u.filename
FROM files.uploads u
WHERE u.object_key = %(key)s;

-- name: mark_received :one
-- Record an upload's bytes and sha256 as received.
SELECT files.mark_received(%(key)s, %(bytes)s, %(sha256)s) AS status;

-- name: object_sha256 :one
-- The sha256 the catalog holds for the object key.
SELECT files.object_sha256(%(key)s) AS sha256;

-- name: mark_sent :one
-- Record a download's bytes and sha256 as sent.
SELECT files.mark_sent(%(key)s, %(bytes)s, %(sha256)s) AS status;

-- name: base_url :one
-- The file service's public base URL.
SELECT base_url FROM files.service;

-- name: set_base_url :one
-- As the owner or an admin (`secinf serve --public-url`); the pipeline only reads it.
UPDATE files.service SET base_url = %(base_url)s, updated_at = now()
RETURNING base_url;
