-- Grants for rules and candidates (0005, sql/550_candidates_stage.sql). Capability only;
-- which project's rows a role sees is RLS (900_policies.sql covers every table here).

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA rules, candidates FROM PUBLIC;

-- ---------------------------------------------------------------- schemas
GRANT USAGE ON SCHEMA rules, candidates TO pipeline, analyst, reviewer, project_admin;

-- ---------------------------------------------------------------- pipeline (workers, cron)
GRANT SELECT ON rules.ontologies, rules.compiled TO pipeline;
GRANT SELECT, INSERT, UPDATE ON candidates.candidates TO pipeline;
GRANT EXECUTE ON FUNCTION
  candidates.run_rules(bigint, timestamptz, timestamptz),
  candidates.fill_pair_rows(text, uuid, bigint, timestamptz, timestamptz),
  candidates.compute_candidates(bigint, timestamptz, timestamptz)
  TO pipeline;

-- ---------------------------------------------------------------- people
-- Analysts, reviewers and project admins read. Nobody but the owner (the `secinf rules
-- load` CLI, an admin connection) writes rules.compiled: the candidates stage EXECUTEs it.
GRANT SELECT ON rules.ontologies, candidates.candidates TO analyst, reviewer, project_admin;
-- No role writes a candidate's status directly: api.decide and friends do, with a decision
-- and an audit entry (an UPDATE grant here would bypass both).
REVOKE UPDATE ON candidates.candidates FROM reviewer, project_admin, customer, analyst;
