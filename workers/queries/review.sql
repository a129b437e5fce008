-- Review queries: local accounts (admin connection) and synthetic review data.

-- name: create_account :one
-- A reviewer account with this password.
SELECT core.create_account(%(username)s, %(password)s, %(display_name)s);

-- name: set_password :one
-- Set an account's password; whether it exists.
SELECT core.set_account_password(%(username)s, %(password)s) AS found;

-- name: disable_account :one
-- Disable (or enable again) an account; whether it exists.
SELECT core.disable_account(%(username)s, %(disabled)s) AS found;

-- name: list_accounts :many
-- Every account with its project memberships.
SELECT a.username, a.display_name, a.created_at, a.last_login_at, a.disabled_at,
       coalesce(string_agg(o.slug || '/' || p.slug || ':' || m.role, ', '
                           ORDER BY o.slug, p.slug), '') AS projects
FROM core.accounts a
LEFT JOIN core.memberships m ON m.kind = 'user' AND m.member = a.username
LEFT JOIN core.projects p ON p.project_id = m.project_id
LEFT JOIN core.organizations o ON o.org_id = p.org_id
GROUP BY a.username
ORDER BY a.username;

-- name: account_exists :many
-- Whether an account of this name exists.
SELECT EXISTS (SELECT FROM core.accounts WHERE username = %(username)s) AS found;

-- name: synthetic_scene :one
-- Sources and an ontology row for synthetic candidates (benchmarks, plan tests).
WITH src AS (
  INSERT INTO ingest.sources (project_id, name, fps, video_uri)
  SELECT %(project_id)s, 'synthetic-' || s, 10, 'file:///videos/synthetic-' || s || '.mp4'
  FROM generate_series(1, %(sources)s) s
  RETURNING source_id
), ont AS (
  INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed, active)
  VALUES (%(project_id)s, 'synthetic', 1, repeat('0', 64), 'name: synthetic', '{}', true)
  RETURNING ontology_id
)
SELECT (SELECT array_agg(source_id ORDER BY source_id) FROM src) AS source_ids,
       (SELECT ontology_id FROM ont) AS ontology_id;

-- name: synthetic_candidates :exec
-- n candidates over the sources: eight types, actors from 50 tracks, starts 10 ms apart,
-- scores on a 1/1000 grid (so ties occur), 80 %% with a model score, 20 %% decided.
INSERT INTO candidates.candidates
  (project_id, source_id, type, actors, start_ts, end_ts, rule_name, ontology_id,
   ontology_version, rule_score, model_score, model_version, status)
SELECT %(project_id)s, g.source_id, g.type, g.actors, g.start_ts,
       g.start_ts + (2 + g.i %% 5) * interval '1 s', 'synthetic.' || g.type,
       %(ontology_id)s, 1, g.rule_score, g.model_score,
       CASE WHEN g.model_score IS NOT NULL THEN 'synthetic-v1' END,
       CASE WHEN g.i %% 10 = 0 THEN 'accepted' WHEN g.i %% 10 = 1 THEN 'rejected'
            WHEN g.model_score IS NULL THEN 'new' ELSE 'scored' END
FROM (
  SELECT i,
         (%(source_ids)s::bigint[])[1 + i %% cardinality(%(source_ids)s::bigint[])] AS source_id,
         (ARRAY['follow', 'meet', 'overtake', 'accompany', 'dwell', 'enter', 'exit',
                'stop'])[1 + (i / 7) %% 8] AS type,
         jsonb_build_object('leader', (i %% 50)::text, 'follower', ((i + 1) %% 50)::text)
           AS actors,
         %(origin)s::timestamptz + i * interval '10 ms' AS start_ts,
         round(((hashint4(i) & 1048575) / 1048575.0)::numeric, 3)::float8 AS rule_score,
         CASE WHEN i %% 5 <> 0
              THEN round(((hashint4(i + 7919) & 1048575) / 1048575.0)::numeric, 3)::float8
         END AS model_score
  FROM generate_series(%(first)s::integer, %(first)s::integer + %(n)s::integer - 1) i
) g;

-- name: synthetic_tracks :exec
-- Kinematics for the actors of the given candidates over their span ± 5 s at 10 fps, so the
-- candidate page has trajectories to draw.
INSERT INTO features.kinematics (project_id, source_id, track_id, frame, ts, segment, dt, x,
                                 y, vx, vy, speed, heading)
SELECT DISTINCT ON (c.source_id, a.track_id, f.ts)
       c.project_id, c.source_id, a.track_id,
       (extract(epoch FROM f.ts - s.time_origin) * 10)::bigint, f.ts, 0, 0.1,
       a.track_id::float8 + extract(epoch FROM f.ts - s.time_origin) * 1.2,
       a.track_id::float8 * 0.5, 1.2, 0, 1.2, 0
FROM candidates.candidates c
JOIN ingest.sources s ON s.source_id = c.source_id
CROSS JOIN LATERAL jsonb_each_text(c.actors) a (role, track_id)
CROSS JOIN LATERAL generate_series(
  s.time_origin + floor(extract(epoch FROM c.start_ts - s.time_origin - interval '5 s') * 10)
                  * interval '100 ms',
  c.end_ts + interval '5 s', interval '100 ms') f (ts)
WHERE c.candidate_id = ANY (%(candidate_ids)s::bigint[])
ORDER BY c.source_id, a.track_id, f.ts;

-- name: candidate_secondary_indexes :many
-- Indexes of candidates.candidates other than its primary key and unique constraints.
SELECT i.indexrelid::regclass::text AS qualified,
       (SELECT relname FROM pg_class WHERE oid = i.indexrelid) AS name,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = 'candidates.candidates'::regclass AND NOT i.indisprimary
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY 1;

-- name: candidate_unique_constraints :many
-- The unique constraints of candidates.candidates.
SELECT conname AS name, pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE conrelid = 'candidates.candidates'::regclass AND contype = 'u'
ORDER BY 1;

-- name: ensure_settings :one
-- The project's review settings row, created with defaults if missing.
SELECT review.project_settings(%(project_id)s::uuid)

-- name: update_settings :one
-- Change only what was given (ensure_settings created the row with the defaults).
UPDATE review.settings s
SET second_opinion_share = coalesce(%(share)s::float8, s.second_opinion_share),
    auto_accept_model = CASE WHEN %(model_given)s THEN %(model)s::float8
                             ELSE s.auto_accept_model END,
    auto_accept_rule = CASE WHEN %(rule_given)s THEN %(rule)s::float8
                            ELSE s.auto_accept_rule END,
    updated_at = now()
WHERE s.project_id = %(project_id)s::uuid
RETURNING s.project_id::text AS project_id, s.second_opinion_share, s.auto_accept_model,
          s.auto_accept_rule, s.updated_at

-- name: bench_reviewer :one
-- The benchmarks' reviewer of a project (workers/review/synthetic.reviewed_project).
SELECT core.add_member(%(project_id)s, 'user', 'bench-reviewer', 'reviewer');

-- name: middle_candidates :many
-- n candidate ids of the project from the middle of its id order (the candidate page's).
SELECT candidate_id FROM candidates.candidates WHERE project_id = %(project_id)s
ORDER BY candidate_id LIMIT %(n)s OFFSET %(offset)s;
