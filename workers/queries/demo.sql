-- Queries of `secinf demo` (workers/cli/demo_delivery.py), as the database owner or an admin.

-- name: version_downloadable
-- Whether api.dataset_download can sign the version's files: it was exported under a
-- storage key (versions exported before keys existed recorded a directory).
SELECT files.valid_key(v.storage_path || '/manifest.json') AS downloadable
FROM datasets.versions v
WHERE v.project_id = %(project_id)s AND v.name = %(name)s AND v.version = %(version)s;
