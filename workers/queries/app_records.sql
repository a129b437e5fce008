-- The calls of the review app's Records page (streamlit_app/applib/records_view.py). Each
-- runs inside workers.appdb's PostgREST-style request; only `api` objects appear.

-- name: access :one
-- What the caller's role may read (sql/986_grants_records.sql): the database's grants.
SELECT has_function_privilege('api.retention(uuid)', 'EXECUTE') AS retention,
       has_function_privilege('api.tombstones(integer, uuid)', 'EXECUTE') AS admin;

-- name: retention :many
-- Each category's retention for the caller's project.
SELECT category, keep, keep_days, forever, source, set_by, set_at, reason, description
FROM api.retention();

-- name: retention_runs :many
-- What retention deleted from the project, per run and table, newest first.
SELECT run_id, started_at, status, category, relation, method, cutoff, rows, seconds
FROM api.retention_runs(200);

-- name: legal_holds :many
-- The project's legal holds, lifted ones too.
SELECT hold_id, source, from_ts, to_ts, reason, set_by, set_at, active, lifted_by, lifted_at,
       lift_reason
FROM api.legal_holds(true);

-- name: tombstones :many
-- The project's erasures, newest first.
SELECT tombstone_id, subject_kind, subject, tracks, reason, requested_by, requested_at,
       status, counts, versions_superseded, versions_deleted, finished_at, keep_until
FROM api.tombstones(100);
