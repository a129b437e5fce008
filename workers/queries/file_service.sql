-- Queries of the file service (workers/files, `secinf serve`), run as `pipeline`.

-- name: ping
SELECT 1 AS ok;

-- name: url_secret
SELECT files.url_secret(%(kid)s) AS secret;

-- name: record_access
SELECT files.record_access(%(key)s, %(method)s, %(result)s, %(address)s, %(details)s);

-- name: upload
SELECT u.status, u.bytes, u.sha256, u.filename
FROM files.uploads u
WHERE u.object_key = %(key)s;

-- name: mark_received
SELECT files.mark_received(%(key)s, %(bytes)s, %(sha256)s) AS status;

-- name: object_sha256
SELECT files.object_sha256(%(key)s) AS sha256;

-- name: mark_sent
SELECT files.mark_sent(%(key)s, %(bytes)s, %(sha256)s) AS status;

-- name: base_url
SELECT base_url FROM files.service;

-- name: set_base_url
-- As the owner or an admin (`secinf serve --public-url`); the pipeline only reads it.
UPDATE files.service SET base_url = %(base_url)s, updated_at = now()
RETURNING base_url;
