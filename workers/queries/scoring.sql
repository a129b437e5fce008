-- Queries of the scoring model and worker (workers/scoring).

-- name: candidates :many
-- The candidates to score, times in epoch seconds, with the trigger time if any.
SELECT c.candidate_id, c.project_id::text AS project_id, c.source_id, c.type, c.actors,
       c.zone, c.rule_score,
       extract(epoch FROM c.start_ts)::float8 AS start_s,
       extract(epoch FROM c.end_ts)::float8 AS end_s,
       extract(epoch FROM t.ts)::float8 AS trigger_s
FROM candidates.candidates c
LEFT JOIN ingest.triggers t ON t.source_id = c.source_id AND t.name = c.trigger
WHERE c.candidate_id = ANY (%(ids)s::bigint[])
  AND (%(project_id)s::uuid IS NULL OR c.project_id = %(project_id)s::uuid)
ORDER BY c.candidate_id;

-- name: kinematics :many
-- Kinematics of (source, track) pairs over [lo, hi] epoch seconds, one request per row of
-- the input arrays (req is the caller's index).
SELECT r.req, extract(epoch FROM k.ts)::float8 AS t, k.x, k.y, k.speed, k.accel,
       k.turn_rate, k.heading
FROM unnest(%(source)s::bigint[], %(track)s::text[], %(lo)s::float8[], %(hi)s::float8[])
       WITH ORDINALITY AS r (source_id, track_id, lo, hi, req)
JOIN features.kinematics k
  ON k.source_id = r.source_id AND k.track_id = r.track_id
 AND k.ts BETWEEN to_timestamp(r.lo) AND to_timestamp(r.hi)
ORDER BY r.req, k.ts;

-- name: relations :many
-- Relations of (source, track, other) over [lo, hi] epoch seconds, per request.
SELECT r.req, extract(epoch FROM p.ts)::float8 AS t, p.distance, p.approach_speed,
       p.rel_speed, p.heading_diff, p.lon_offset, p.lat_offset
FROM unnest(%(source)s::bigint[], %(track)s::text[], %(other)s::text[], %(lo)s::float8[],
            %(hi)s::float8[]) WITH ORDINALITY AS r (source_id, track_id, other_id, lo, hi, req)
CROSS JOIN LATERAL features.pair_track_rows(r.source_id, r.track_id, r.other_id,
                                            to_timestamp(r.lo), to_timestamp(r.hi)) p
ORDER BY r.req, p.ts;

-- name: zones :many
-- Zone presence intervals of (source, track) overlapping [lo, hi], per request.
SELECT r.req, z.zone_name, extract(epoch FROM z.entered_at)::float8 AS entered_s,
       coalesce(extract(epoch FROM z.left_at)::float8, 'infinity'::float8) AS left_s
FROM unnest(%(source)s::bigint[], %(track)s::text[], %(lo)s::float8[], %(hi)s::float8[])
       WITH ORDINALITY AS r (source_id, track_id, lo, hi, req)
JOIN features.zone_presence z
  ON z.source_id = r.source_id AND z.track_id = r.track_id
 AND z.entered_at <= to_timestamp(r.hi)
 AND (z.left_at IS NULL OR z.left_at >= to_timestamp(r.lo))
ORDER BY r.req, z.entered_at;

-- name: write_scores :one
-- Write a scoring job's scores and embeddings, if the attempt holds it.
SELECT scoring.write_scores(%(job_id)s, %(attempt)s, %(ids)s::bigint[], %(scores)s::float8[],
                            %(embeddings)s::text[], %(version)s) AS updated;

-- name: insert_model :one
-- Register a trained model; its id.
INSERT INTO scoring.models (project_id, version, sha256, weights, config, normalisation,
                            training, metrics, parent_version, active)
VALUES (%(project_id)s, %(version)s, %(sha256)s, %(weights)s, %(config)s, %(normalisation)s,
        %(training)s, %(metrics)s, %(parent_version)s, %(active)s)
ON CONFLICT (version) DO NOTHING
RETURNING model_id;

-- name: model_by_version :one
-- The model of this version, with its weights.
SELECT model_id, project_id::text AS project_id, version, sha256, weights, config,
       normalisation, training, metrics, active, created_at
FROM scoring.models WHERE version = %(version)s;

-- name: default_model :one
-- The version of the project's newest active model, else of the newest active global one.
SELECT version
FROM scoring.models
WHERE active AND (project_id IS NULL OR project_id = %(project_id)s::uuid)
ORDER BY project_id NULLS LAST, created_at DESC, model_id DESC
LIMIT 1;

-- name: list_models :many
-- The models of a project (or every model), newest first, without weights.
SELECT model_id, coalesce(project_id::text, 'global') AS scope, version, sha256, active,
       parent_version, metrics, training, created_at
FROM scoring.models
WHERE %(project_id)s::uuid IS NULL OR project_id = %(project_id)s::uuid
ORDER BY created_at DESC, model_id DESC;

-- name: queue_unscored :one
-- Queue scoring jobs for the candidates not yet queued; how many.
SELECT scoring.queue_unscored(%(source_id)s, %(project_id)s::uuid) AS queued;

-- name: source_candidates :many
-- A source's candidates of the active ontology, times in seconds since the time origin.
SELECT c.candidate_id, c.type, c.actors, c.zone, c.route, c.trigger, c.rule_score, c.tier,
       extract(epoch FROM c.start_ts - s.time_origin)::float8 AS start_s,
       extract(epoch FROM c.end_ts - s.time_origin)::float8 AS end_s
FROM candidates.candidates c
JOIN ingest.sources s ON s.source_id = c.source_id
JOIN rules.ontologies o ON o.ontology_id = c.ontology_id AND o.active
WHERE c.source_id = %(source_id)s
ORDER BY c.candidate_id;

-- name: disable_auto_scoring :exec
-- Turn off automatic scoring for the project.
INSERT INTO pipeline.settings (project_id, key, value)
VALUES (%(project_id)s, 'scoring_auto', 'false')
ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value;
