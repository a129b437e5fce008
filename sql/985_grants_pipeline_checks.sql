-- Grants for the plausibility checks (sql/460_pipeline_checks.sql). `secinf tick` reads them
-- as role pipeline (workers/pipeline/runner.py), `secinf pipeline status` on its admin
-- connection (the owner needs no grant). The function is SECURITY INVOKER: pipeline reads
-- every project's sources, features, runs, ontologies and candidates (99_grants_features,
-- 99_grants_ingest, 99_grants_rules; RLS lets it see every project).

REVOKE EXECUTE ON FUNCTION pipeline.source_checks(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pipeline.source_checks(bigint) TO pipeline;
