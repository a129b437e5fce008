-- Grants for scoring (0007, sql/70_scoring.sql). The worker runs as `pipeline`: it reads
-- models and candidates' features and writes scores only through scoring.write_scores
-- (fenced). `secinf train` registers models on an admin connection. People reach
-- embeddings only through api.similar_candidates, as themselves (RLS applies).

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA scoring FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api.similar_candidates(bigint, integer) FROM PUBLIC;

GRANT USAGE ON SCHEMA scoring TO pipeline;
GRANT SELECT ON scoring.models TO pipeline;
GRANT SELECT, INSERT ON scoring.queued TO pipeline;

GRANT EXECUTE ON FUNCTION
  scoring.write_scores(bigint, bigint, bigint[], double precision[], text[], text),
  scoring.queue_unscored(bigint, uuid),
  scoring.queue_stage(bigint, timestamptz, timestamptz)
  TO pipeline;

-- Readers of candidates (99_grants_rules.sql) may search them by similarity.
GRANT EXECUTE ON FUNCTION api.similar_candidates(bigint, integer)
  TO reviewer, analyst, project_admin;
