-- Grants for scoring (0007, sql/700_scoring.sql). The worker runs as `pipeline`: it reads
-- models and candidates' features and writes scores only through scoring.write_scores
-- (fenced). `secinf train` registers models on an admin connection. People reach
-- embeddings only through api.similar_candidates, as themselves (RLS applies).

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA scoring FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api.similar_candidates(bigint, integer) FROM PUBLIC;

GRANT USAGE ON SCHEMA scoring TO pipeline;
GRANT SELECT ON scoring.models TO pipeline;
GRANT SELECT, INSERT, UPDATE ON scoring.queued TO pipeline;

-- Project models (0017, sql/710_scoring_examples.sql, sql/720_scoring_models.sql): the
-- worker's train_model job keeps examples, registers the project's model and activates it
-- (through scoring.activate_model, which records the activation).
GRANT SELECT, INSERT, UPDATE, DELETE ON scoring.examples TO pipeline;
GRANT INSERT ON scoring.models TO pipeline;
GRANT UPDATE (active, activated_at) ON scoring.models TO pipeline;
GRANT SELECT, INSERT ON scoring.activations TO pipeline;
GRANT EXECUTE ON FUNCTION
  scoring.feature_settings(bigint),
  scoring.settings_diff(jsonb, jsonb),
  scoring.span_iou(timestamptz, timestamptz, timestamptz, timestamptz),
  scoring.sync_review_examples(uuid),
  scoring.invalidate_stale_examples(uuid, text),
  scoring.refresh_examples(uuid),
  scoring.examples_status(uuid),
  scoring.enqueue_due_training(),
  scoring.queue_rescore(uuid, text),
  scoring.model_in_charge(uuid),
  scoring.activate_model(text, text),
  scoring.rollback_model(uuid, text)
  TO pipeline;

-- People see their project's models (never the weights), its activation history and its
-- examples (never the stored windows): the app's Model page. RLS keeps other projects'
-- rows (and the global models, project_id NULL) out of sight.
GRANT USAGE ON SCHEMA scoring TO reviewer, project_admin;
GRANT SELECT (model_id, project_id, version, active, metrics, training, parent_version,
              activated_at, created_by, created_at)
  ON scoring.models TO reviewer, project_admin;
GRANT SELECT ON scoring.activations TO reviewer, project_admin;
GRANT SELECT (example_id, project_id, source_id, candidate_id, origin, label, decision_id,
              type, start_ts, end_ts, span_iou, ontology_version, features, invalid_reason,
              invalidated_at, created_at, updated_at)
  ON scoring.examples TO reviewer, project_admin;

GRANT EXECUTE ON FUNCTION
  scoring.write_scores(bigint, bigint, bigint[], double precision[], text[], text),
  scoring.queue_unscored(bigint, uuid),
  scoring.queue_stage(bigint, timestamptz, timestamptz)
  TO pipeline;

-- Readers of candidates (988_grants_rules.sql) may search them by similarity.
GRANT EXECUTE ON FUNCTION api.similar_candidates(bigint, integer)
  TO reviewer, analyst, project_admin;
