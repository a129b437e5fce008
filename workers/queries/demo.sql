-- Queries of `secinf demo` (workers/cli/demo_cmd.py, demo_delivery.py, demo_learning.py),
-- as the database owner or an admin.

-- ---------------------------------------------------------------- the main job (demo_cmd)

-- name: source_id :one
-- The id of the project's source called `name`.
SELECT source_id FROM ingest.sources WHERE project_id = %(project_id)s AND name = %(name)s;

-- name: feature_counts :one
-- How many track points and feature rows the source has, per feature table.
SELECT (SELECT count(*) FROM ingest.track_points WHERE source_id = %(source_id)s) AS track_points,
       (SELECT count(*) FROM features.kinematics WHERE source_id = %(source_id)s) AS kinematics,
       (SELECT count(*) FROM features.zone_presence WHERE source_id = %(source_id)s)
           AS zone_presence,
       (SELECT count(*) FROM features.relations WHERE source_id = %(source_id)s) AS relations,
       (SELECT count(*) FROM features.change_points WHERE source_id = %(source_id)s)
           AS change_points;

-- name: candidates_per_type :many
-- The source's candidates per type: how many, and their mean rule and model scores.
SELECT type, count(*) AS candidates, round(avg(rule_score)::numeric, 3) AS mean_rule_score,
       count(model_score) AS scored, round(avg(model_score)::numeric, 3) AS mean_model_score
FROM candidates.candidates WHERE source_id = %(source_id)s GROUP BY type ORDER BY type;

-- name: model_scores :many
-- Every model score of the source's candidates (NULL where not yet scored).
SELECT model_score FROM candidates.candidates WHERE source_id = %(source_id)s;

-- ---------------------------------------------------------------- delivery (demo_delivery)

-- name: promote :one
-- Auto-accept the project's candidates above its thresholds into events (idempotent).
SELECT events.promote(%(project_id)s);

-- name: events_by_source :many
-- The project's verified events per type, split by what verified them.
SELECT type, count(*) FILTER (WHERE source = 'model') AS model,
       count(*) FILTER (WHERE source = 'rule') AS rule,
       count(*) FILTER (WHERE source = 'human') AS human, count(*) AS events
FROM events.events WHERE project_id = %(project_id)s GROUP BY type ORDER BY type;

-- name: events_state :one
-- How many verified events the project has and when the newest change to them was: the demo
-- publishes a new version only when they changed since the last published one.
SELECT count(*) AS events, max(greatest(created_at, updated_at)) AS changed_at
FROM events.events WHERE project_id = %(project_id)s;

-- name: version_downloadable :one
-- Whether api.dataset_download can sign the version's files: it was exported under a
-- storage key (versions exported before keys existed recorded a directory).
SELECT files.valid_key(v.storage_path || '/manifest.json') AS downloadable
FROM datasets.versions v
WHERE v.project_id = %(project_id)s AND v.name = %(name)s AND v.version = %(version)s;

-- name: api_events :many
-- Five events through api.query_events, as the signed-in customer sees them.
SELECT type, actors::text AS actors, to_char(start_ts, 'HH24:MI:SS.MS') AS start,
       round(duration_s::numeric, 1) AS seconds,
       round(confidence::numeric, 3) AS confidence, verification, source_name
FROM api.query_events(p_limit => 5);

-- ---------------------------------------------------------------- learning loop (demo_learning)

-- name: queue_head :many
-- The first undecided candidates in the review queue's `uncertain` order.
SELECT c.candidate_id, c.type, round(c.queue_score::numeric, 3) AS score, c.model_version
FROM candidates.candidates c
WHERE c.project_id = %(project_id)s
  AND NOT EXISTS (SELECT FROM review.current r WHERE r.candidate_id = c.candidate_id)
ORDER BY c.queue_uncertainty, c.candidate_id
LIMIT %(n)s;

-- name: candidate_spans :many
-- The candidates' types, actors and qualifiers, their times as seconds since `origin`.
SELECT candidate_id, type, actors, zone, route, trigger,
       extract(epoch FROM start_ts - %(origin)s::timestamptz)::float8 AS s0,
       extract(epoch FROM end_ts - %(origin)s::timestamptz)::float8 AS s1
FROM candidates.candidates
WHERE candidate_id = ANY (%(ids)s)
ORDER BY candidate_id;

-- name: open_candidates :many
-- The source's first `n` undecided candidates in the review queue's `uncertain` order.
SELECT c.candidate_id FROM candidates.candidates c
WHERE c.source_id = %(source_id)s
  AND NOT EXISTS (SELECT FROM review.current r WHERE r.candidate_id = c.candidate_id)
ORDER BY c.queue_uncertainty, c.candidate_id
LIMIT %(n)s;

-- name: add_reviewer :one
-- Make `subject` a reviewer of the project.
SELECT core.add_member(%(project_id)s, 'user', %(subject)s, 'reviewer');

-- name: set_claims :one
-- This transaction's request claims, as PostgREST sets them ('' to clear).
SELECT set_config('request.jwt.claims', %(claims)s, true);

-- name: decide :one
-- A review decision through the API, as the claims' reviewer.
SELECT api.decide(%(candidate_id)s, %(kind)s, %(reason)s);

