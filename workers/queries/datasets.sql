-- Queries of the dataset exporter and catalog (workers/datasets).

-- name: project_label :one
-- The project's org/project label and its organization (for the version's storage key).
SELECT o.slug || '/' || p.slug AS label, p.org_id
FROM core.projects p JOIN core.organizations o USING (org_id)
WHERE p.project_id = %(project_id)s;

-- name: active_ontology :one
-- The project's active ontology: name, version, sha256 and the parsed types.
SELECT o.name, o.version, o.sha256, o.parsed -> 'types' AS types
FROM rules.ontologies o
WHERE o.project_id = %(project_id)s AND o.active;

-- name: sources :many
-- The project's sources that have verified events.
SELECT s.source_id, s.name, s.units, s.fps, s.time_origin, s.attributes
FROM ingest.sources s
WHERE s.project_id = %(project_id)s
  AND EXISTS (SELECT FROM events.events e WHERE e.source_id = s.source_id)
ORDER BY s.name;

-- name: events :one
-- The project's verified events, with the scores of the candidates they came from. Times
-- as exact epoch microseconds; start_s/end_s are seconds since the source's time origin.
SELECT e.event_id, e.source_id, e.type, e.actors, e.zone, e.route, e.trigger, e.latency_s,
       (extract(epoch FROM e.start_ts) * 1000000)::bigint AS start_us,
       (extract(epoch FROM e.end_ts) * 1000000)::bigint AS end_us,
       extract(epoch FROM e.start_ts - s.time_origin)::float8 AS start_s,
       extract(epoch FROM e.end_ts - s.time_origin)::float8 AS end_s,
       e.confidence, e.source AS verification, c.rule_score, c.model_score,
       coalesce(e.model_version, c.model_version) AS model_version,
       coalesce(e.ontology_version, c.ontology_version) AS ontology_version,
       s.units
FROM events.events e
JOIN ingest.sources s ON s.source_id = e.source_id
LEFT JOIN candidates.candidates c ON c.candidate_id = e.candidate_id
WHERE e.project_id = %(project_id)s
ORDER BY s.name, e.start_ts, e.event_id;

-- name: reviewers :one
-- How many people verified the project's events (never who).
SELECT count(DISTINCT e.verified_by) AS reviewers
FROM events.events e
WHERE e.project_id = %(project_id)s AND e.source = 'human';

-- name: features :many
-- Kinematics of each event's actors over the span ± context_s.
SELECT e.event_id, a.key AS role, a.value AS track_id,
       (extract(epoch FROM k.ts) * 1000000)::bigint AS ts_us,
       extract(epoch FROM k.ts - e.start_ts)::float8 AS t_rel_s,
       (k.ts BETWEEN e.start_ts AND e.end_ts) AS in_span,
       k.frame, k.segment, k.dt, k.x, k.y, k.vx, k.vy, k.speed, k.accel, k.jerk, k.heading,
       k.turn_rate, k.curvature
FROM events.events e
CROSS JOIN LATERAL jsonb_each_text(e.actors) AS a (key, value)
JOIN features.kinematics k
  ON k.source_id = e.source_id AND k.track_id = a.value
 AND k.ts BETWEEN e.start_ts - make_interval(secs => %(context_s)s)
              AND e.end_ts + make_interval(secs => %(context_s)s)
WHERE e.project_id = %(project_id)s
ORDER BY e.event_id, a.key, k.ts;

-- name: track_lifetimes :many
-- First and last point of every actor's track (NULL when the track has no kinematics).
SELECT e.event_id, a.key AS role, a.value AS track_id,
       (extract(epoch FROM l.first_ts) * 1000000)::bigint AS first_us,
       (extract(epoch FROM l.last_ts) * 1000000)::bigint AS last_us
FROM events.events e
CROSS JOIN LATERAL jsonb_each_text(e.actors) AS a (key, value)
LEFT JOIN LATERAL (
  SELECT min(k.ts) AS first_ts, max(k.ts) AS last_ts
  FROM features.kinematics k
  WHERE k.source_id = e.source_id AND k.track_id = a.value
) l ON true
WHERE e.project_id = %(project_id)s
ORDER BY e.event_id, a.key;

-- name: model_metrics :one
-- The evaluation figures of a registered model.
SELECT m.version, m.metrics, m.training -> 'scenes' AS scenes, m.created_at
FROM scoring.models m
WHERE m.version = %(version)s;

-- name: latest_published :one
-- The newest published version of a dataset (semver order).
SELECT v.version_id, v.version, v.schema_version, v.ontology_name, v.ontology_version,
       v.manifest
FROM datasets.versions v
WHERE v.project_id = %(project_id)s AND v.name = %(name)s AND v.status = 'published'
ORDER BY v.major DESC, v.minor DESC, v.patch DESC
LIMIT 1;

-- name: version_status :one
-- A dataset version's id, status and storage path, if it exists.
SELECT v.version_id, v.status, v.storage_path
FROM datasets.versions v
WHERE v.project_id = %(project_id)s AND v.name = %(name)s AND v.version = %(version)s;

-- name: delete_unpublished :exec
-- A blocked (or stale draft) row of the same version is replaced by a new export.
DELETE FROM datasets.versions
WHERE project_id = %(project_id)s AND name = %(name)s AND version = %(version)s
  AND status <> 'published';

-- name: insert_version :one
-- A new dataset version row (status building); its id.
INSERT INTO datasets.versions (project_id, name, version, schema_version, split_seed,
                               train_ratio, val_ratio, test_ratio, context_s, ontology_name,
                               ontology_version, ontology_sha256, model_version, events,
                               manifest, manifest_sha256, data_card, storage_path)
VALUES (%(project_id)s, %(name)s, %(version)s, %(schema_version)s, %(split_seed)s,
        %(train_ratio)s, %(val_ratio)s, %(test_ratio)s, %(context_s)s, %(ontology_name)s,
        %(ontology_version)s, %(ontology_sha256)s, %(model_version)s, %(events)s,
        %(manifest)s, %(manifest_sha256)s, %(data_card)s, %(storage_path)s)
RETURNING version_id;

-- name: insert_file :exec
-- One file of a dataset version.
INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows, bytes, sha256)
VALUES (%(project_id)s, %(version_id)s, %(path)s, %(kind)s, %(split)s, %(rows)s, %(bytes)s,
        %(sha256)s);

-- name: insert_version_tracks :exec
-- The tracks of a draft version: every actor of its events (an erasure finds it by them).
INSERT INTO datasets.version_tracks (project_id, version_id, source_id, track_id)
SELECT DISTINCT %(project_id)s::uuid, %(version_id)s::bigint, e.source_id, a.value
FROM events.events e
CROSS JOIN LATERAL jsonb_each_text(e.actors) a
WHERE e.project_id = %(project_id)s::uuid AND e.event_id = ANY (%(event_ids)s::bigint[]);

-- name: insert_report :exec
-- One quality gate's result for a dataset version.
INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed, summary, details)
VALUES (%(project_id)s, %(version_id)s, %(gate)s, %(passed)s, %(summary)s, %(details)s);

-- name: set_status :one
-- draft → published (the trigger checks the gates and stamps published_at) or → blocked.
UPDATE datasets.versions
SET status = %(status)s,
    published_by = CASE WHEN %(status)s = 'published' THEN %(by)s END
WHERE version_id = %(version_id)s
RETURNING status, published_at;

-- name: list_versions :many
-- The project's dataset versions, newest first, with their gates.
SELECT p.project_id::text AS project_id, o.slug || '/' || p.slug AS project, v.name,
       v.version, v.status, v.events, v.model_version,
       v.ontology_name || ' v' || v.ontology_version AS ontology, v.created_at, v.published_at,
       coalesce((SELECT array_agg(r.gate ORDER BY r.gate) FROM datasets.quality_reports r
                 WHERE r.version_id = v.version_id AND NOT r.passed), '{}') AS failed_gates
FROM datasets.versions v
JOIN core.projects p ON p.project_id = v.project_id
JOIN core.organizations o ON o.org_id = p.org_id
WHERE (%(project_id)s::uuid IS NULL OR v.project_id = %(project_id)s::uuid)
  AND (%(name)s::text IS NULL OR v.name = %(name)s::text)
ORDER BY project, v.name, v.major DESC, v.minor DESC, v.patch DESC;

-- name: find_versions :many
-- Versions named X.Y.Z (or dataset@X.Y.Z), optionally of one project.
SELECT v.version_id, v.project_id::text AS project_id, o.slug || '/' || p.slug AS project,
       v.name, v.version, v.status, v.storage_path, v.manifest, v.manifest_sha256, v.events,
       v.schema_version, v.ontology_name, v.ontology_version, v.model_version, v.split_seed,
       v.train_ratio, v.val_ratio, v.test_ratio, v.context_s, v.created_by, v.created_at,
       v.published_by, v.published_at
FROM datasets.versions v
JOIN core.projects p ON p.project_id = v.project_id
JOIN core.organizations o ON o.org_id = p.org_id
WHERE (v.version = %(version)s OR v.name || '@' || v.version = %(version)s)
  AND (%(project_id)s::uuid IS NULL OR v.project_id = %(project_id)s::uuid)
  AND (%(name)s::text IS NULL OR v.name = %(name)s::text)
ORDER BY v.version_id;

-- name: version_files :many
-- A version's files in path order.
SELECT f.path, f.kind, f.split, f.rows, f.bytes, f.sha256
FROM datasets.files f
WHERE f.version_id = %(version_id)s
ORDER BY f.path;

-- name: version_reports :many
-- A version's quality gate reports in the order they ran.
SELECT r.gate, r.passed, r.summary, r.details, r.checked_at
FROM datasets.quality_reports r
WHERE r.version_id = %(version_id)s
ORDER BY r.report_id;
