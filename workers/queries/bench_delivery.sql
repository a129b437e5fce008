-- Queries of `secinf bench delivery` (workers/bench/delivery_bench.py). The admin ones run in
-- the bench's scratch database only; the customer ones inside workers.appdb's PostgREST-style
-- request, as the customer role, exactly as a client's calls through PostgREST.

-- ---------------------------------------------------------------- setup (admin)
-- name: set_base_url :exec
-- Signed URLs name the service the bench started on its loopback port.
UPDATE files.service SET base_url = %(base_url)s;

-- name: project_org :one
-- The organization of the project.
SELECT org_id FROM core.projects WHERE project_id = %(project_id)s;

-- name: add_version :one
-- A dataset version stored under `prefix` (its files are added next, then it is published).
INSERT INTO datasets.versions (project_id, version, schema_version, split_seed, train_ratio,
                               val_ratio, test_ratio, context_s, storage_path, data_card,
                               manifest_sha256)
VALUES (%(project_id)s, %(version)s, 1, 0, 0.7, 0.15, 0.15, 2, %(prefix)s,
        '# benchmark file', %(manifest_sha256)s)
RETURNING version_id;

-- name: add_file :exec
-- A benchmark dataset file row for the version (no real file behind it).
INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows, bytes, sha256)
VALUES (%(project_id)s, %(version_id)s, %(path)s, 'events', %(split)s, %(rows)s, %(bytes)s,
        %(sha256)s);

-- name: pass_gate :exec
-- A passing schema gate for the benchmark version.
INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed, summary)
VALUES (%(project_id)s, %(version_id)s, 'schema', true, 'benchmark file');

-- name: publish :exec
-- Mark the benchmark version published.
UPDATE datasets.versions SET status = 'published' WHERE version_id = %(version_id)s;

-- name: job_state :one
-- A job's state and, once it succeeded, its result (the ingest's summary).
SELECT j.state, j.last_error, r.result
FROM jobs.jobs j LEFT JOIN jobs.results r USING (job_id)
WHERE j.job_id = %(job_id)s;

-- name: source_points :one
-- Rows the source holds in the tracks table.
SELECT count(*) AS points
FROM ingest.track_points t JOIN ingest.sources s USING (source_id)
WHERE s.project_id = %(project_id)s AND s.name = %(source)s;

-- ---------------------------------------------------------------- the customer's calls
-- name: dataset_download :many
-- Signed URLs of a version's files, as the caller.
SELECT path, bytes, sha256, url FROM api.dataset_download(%(version)s);

-- name: ingest_upload_url :one
-- A signed upload URL for a file to ingest, as the caller.
SELECT api.ingest_upload_url(source => %(source)s, filename => %(filename)s,
                             bytes => %(bytes)s, sha256 => %(sha256)s,
                             options => %(options)s::jsonb) AS answer;

-- name: ingest_upload_complete :one
-- Finish an upload and enqueue its ingest, as the caller.
SELECT api.ingest_upload_complete(%(upload_id)s::uuid) AS answer;
