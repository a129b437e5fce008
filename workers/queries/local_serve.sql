-- Queries of the file service run for a block (workers/files/local_serve.py, `secinf demo`),
-- as the database owner or an admin: files.service.base_url pointed at it, then back.

-- name: base_url :one
-- The file service's public base URL.
SELECT base_url FROM files.service;

-- name: point_base_url :one
-- Point the file service's base URL at a locally started service.
UPDATE files.service SET base_url = %(base_url)s, updated_at = now()
RETURNING base_url;

-- name: restore_base_url :one
-- Only while it still points at the service this block ran: a `secinf serve --public-url`
-- meanwhile wins.
UPDATE files.service SET base_url = %(previous)s, updated_at = now()
WHERE base_url = %(ours)s
RETURNING base_url;
