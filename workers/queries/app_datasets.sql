-- The dataset calls of the review app's Datasets page and of `secinf demo`'s download. Each
-- runs inside workers.appdb's PostgREST-style request (as `authenticator`, SET LOCAL ROLE,
-- claims, api.pre_request()); only `api` objects appear.

-- name: may_download :one
-- Whether the caller's role may call api.dataset_download (sql/980_grants_files.sql).
SELECT has_function_privilege('api.dataset_download(text, text)', 'EXECUTE') AS allowed;

-- name: dataset_versions :many
-- The versions of the caller's projects, newest first per dataset (RLS decides which).
SELECT d.name, d.version, d.status, d.events, d.files, d.bytes, d.failed_gates,
       d.events_by_split, d.created_at, d.published_at
FROM api.datasets d
ORDER BY d.name, d.major DESC, d.minor DESC, d.patch DESC;

-- name: dataset_download :many
-- Signed URLs of one split's files and manifest.json (every file when split is NULL).
SELECT path, kind, split, rows, bytes, sha256, url, expires_at
FROM api.dataset_download(%(version)s, %(split)s);
