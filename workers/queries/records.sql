-- Retention, legal holds and erasure (workers/records/, sql/770-790_records_*.sql).

-- name: retention_of :many
-- Each category's retention for a project: keep, where it comes from, who set it.
SELECT r.category, r.keep::text AS keep,
       floor(extract(epoch FROM r.keep) / 86400)::integer AS keep_days,
       r.source, r.set_by, r.set_at, r.reason, r.description
FROM records.retention_of(%(project_id)s) r;

-- name: set_retention :one
-- Set a project's retention of one category (NULL keep: forever), or clear it.
SELECT records.set_retention(%(project_id)s, %(category)s, %(keep)s::interval, %(reason)s,
                             %(clear)s) AS result;

-- name: run_retention :one
-- One whole retention run (each unit commits inside the procedure).
CALL records.run_retention(%(batch)s::integer, NULL::jsonb, %(at)s::timestamptz);

-- name: retention_runs :many
-- The newest runs with their figures.
SELECT run_id, started_at, finished_at, started_by, status, error, rows, chunks, held,
       round(seconds::numeric, 3)::float8 AS seconds, steps
FROM records.retention_history ORDER BY run_id DESC LIMIT %(limit)s;

-- name: retention_steps :many
-- What one run did, unit by unit, with the projects' names.
SELECT s.step, s.category, s.relation, s.method, s.cutoff, s.rows, s.chunks,
       round(s.seconds::numeric, 3)::float8 AS seconds, s.details,
       (SELECT o.slug || '/' || p.slug FROM core.projects p JOIN core.organizations o USING (org_id)
        WHERE p.project_id = s.project_id) AS project
FROM records.retention_steps s WHERE s.run_id = %(run_id)s ORDER BY s.step;

-- name: set_hold :one
-- Put a project, a source of it and/or a time range under legal hold.
SELECT records.set_hold(%(project_id)s, %(source)s, %(from_ts)s, %(to_ts)s, %(reason)s) AS hold;

-- name: lift_hold :one
-- Lift one legal hold of the project.
SELECT records.lift_hold(%(hold_id)s, %(reason)s, %(project_id)s) AS hold;

-- name: list_holds :many
-- A project's legal holds (lifted ones too with all).
SELECT * FROM records.list_holds(%(project_id)s, %(all)s);

-- name: link_subjects :one
-- Link subject hashes to tracks, all or nothing; the links added.
SELECT records.link_subjects(%(project_id)s, %(links)s) AS added;

-- name: request_erasure :many
-- Check an erasure and write its pending tombstone.
SELECT tombstone_id, tracks, status FROM records.request_erasure(
  %(project_id)s, %(source)s, %(track)s, %(subject)s, %(reason)s);

-- name: erase_step :one
-- One bounded step of an erasure; {done, relation, deleted, counts, versions_deleted}.
SELECT records.erase_step(%(tombstone_id)s, %(limit)s) AS step;

-- name: tombstone :one
-- One tombstone, for progress and the final report.
SELECT tombstone_id, project_id, subject_kind, subject, tracks, status, counts,
       versions_superseded, versions_deleted, job_id, requested_by, requested_at, finished_at,
       keep_until
FROM records.tombstones WHERE tombstone_id = %(tombstone_id)s;

-- name: list_tombstones :many
-- A project's erasures, newest first.
SELECT tombstone_id, subject_kind, subject, jsonb_array_length(tracks) AS tracks, reason,
       requested_by, requested_at, status, counts, versions_superseded,
       jsonb_array_length(versions_deleted) AS versions_deleted, finished_at, keep_until
FROM records.list_tombstones(%(project_id)s, %(limit)s);

-- name: enqueue_erasure :one
-- Hand an erasure to the queue (a worker runs its steps).
SELECT jobs.enqueue(%(project_id)s, 'erase_subject',
                    jsonb_build_object('tombstone_id', %(tombstone_id)s::bigint)) AS job_id;

-- name: expired_versions :many
-- Versions of an expire_dataset_files job whose objects are still stored.
SELECT e.version_id, e.storage_path FROM records.expired_versions e
WHERE e.version_id = ANY (%(version_ids)s::bigint[]) AND e.project_id = %(project_id)s
  AND e.objects_deleted_at IS NULL
ORDER BY e.version_id;

-- name: mark_objects_deleted :exec
-- One expired version's objects are gone.
UPDATE records.expired_versions SET objects_deleted_at = now()
WHERE version_id = %(version_id)s AND objects_deleted_at IS NULL;
