-- Queries of project-model training (workers/scoring/examples.py, project_training.py).

-- name: sync_review_examples :one
-- Turn the project's review decisions into training examples.
SELECT scoring.sync_review_examples(%(project_id)s::uuid) AS counts;

-- name: invalidate_stale_examples :one
-- Mark examples whose window was computed by another version.
SELECT scoring.invalidate_stale_examples(%(project_id)s::uuid, %(window_version)s) AS marked;

-- name: refresh_examples :one
-- Rebuild invalidated examples' windows from the features as they are now; how many.
SELECT scoring.refresh_examples(%(project_id)s::uuid) AS readmitted;

-- name: examples_status :one
-- The project's examples per origin (valid, invalid, windowed, new) and the threshold.
SELECT scoring.examples_status(%(project_id)s::uuid) AS status;

-- name: track_classes :many
-- Each track's class in the source.
SELECT track_id, max(class) AS class FROM ingest.track_points
WHERE source_id = %(source_id)s GROUP BY track_id;

-- name: upsert_truth_examples :exec
-- One labelled candidate per row of the arrays; a re-import replaces the label and span
-- (the stored window stays: it depends on the candidate only).
INSERT INTO scoring.examples (project_id, source_id, candidate_id, origin, label,
                              truth_sha256, type, start_ts, end_ts, span_iou, ontology_id,
                              ontology_version, features)
SELECT c.project_id, c.source_id, c.candidate_id, 'truth', u.label, %(sha256)s, c.type,
       s.time_origin + make_interval(secs => u.start_s),
       s.time_origin + make_interval(secs => u.end_s),
       u.iou, c.ontology_id, c.ontology_version, scoring.feature_settings(c.source_id)
FROM unnest(%(ids)s::bigint[], %(labels)s::boolean[], %(starts)s::float8[],
            %(ends)s::float8[], %(ious)s::float8[]) AS u (candidate_id, label, start_s, end_s, iou)
JOIN candidates.candidates c ON c.candidate_id = u.candidate_id
JOIN ingest.sources s ON s.source_id = c.source_id
ON CONFLICT (candidate_id, origin) DO UPDATE
  SET label = excluded.label, truth_sha256 = excluded.truth_sha256,
      start_ts = excluded.start_ts, end_ts = excluded.end_ts, span_iou = excluded.span_iou,
      updated_at = now()
  WHERE (scoring.examples.label, scoring.examples.truth_sha256, scoring.examples.start_ts,
         scoring.examples.end_ts) IS DISTINCT FROM
        (excluded.label, excluded.truth_sha256, excluded.start_ts, excluded.end_ts);

-- name: delete_truth_examples_except :exec
-- The source's truth examples of the judged types that the new import no longer labels.
DELETE FROM scoring.examples e
WHERE e.source_id = %(source_id)s AND e.origin = 'truth' AND e.type = ANY (%(types)s::text[])
  AND NOT (e.candidate_id = ANY (%(ids)s::bigint[]));

-- name: examples_without_window :many
-- Valid examples whose window is still to be built (oldest first).
SELECT e.example_id, e.candidate_id FROM scoring.examples e
WHERE e.project_id = %(project_id)s::uuid AND e.invalid_reason IS NULL
  AND e.window_data IS NULL
ORDER BY e.example_id;

-- name: store_windows :exec
-- Store computed feature windows on their examples.
UPDATE scoring.examples e
SET window_data = u.w, window_version = %(window_version)s
FROM unnest(%(ids)s::bigint[], %(windows)s::bytea[]) AS u (example_id, w)
WHERE e.example_id = u.example_id;

-- name: training_examples :many
-- The project's valid examples with a window of this definition.
SELECT e.example_id, e.candidate_id, e.source_id, e.origin, e.label, e.type,
       e.window_data, c.rule_score, c.tier, s.name AS source_name
FROM scoring.examples e
JOIN candidates.candidates c ON c.candidate_id = e.candidate_id
JOIN ingest.sources s ON s.source_id = e.source_id
WHERE e.project_id = %(project_id)s::uuid AND e.invalid_reason IS NULL
  AND e.window_version = %(window_version)s
ORDER BY e.example_id;

-- name: activate_model :one
-- Put the model of this version in charge of its project.
SELECT scoring.activate_model(%(version)s, %(reason)s) AS result;

-- name: rollback_model :one
-- Put the project's previous model back in charge.
SELECT scoring.rollback_model(%(project_id)s::uuid, %(reason)s) AS result;

-- name: model_in_charge :one
-- The version of the model that scores the project.
SELECT scoring.model_in_charge(%(project_id)s::uuid) AS version;

-- name: activations :many
-- The project's model activations and rollbacks, newest first.
SELECT a.version, a.previous_version, a.action, a.reason, a.actor, a.activated_at
FROM scoring.activations a
WHERE a.project_id = %(project_id)s::uuid
ORDER BY a.activated_at DESC, a.activation_id DESC;
