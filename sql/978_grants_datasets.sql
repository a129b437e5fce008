-- Grants for datasets (0009, sql/750_datasets.sql). Capability only; which project's rows a
-- role sees is RLS (900_policies.sql covers every table here). Versions are written by
-- `secinf export` on an admin connection; no API role writes them, and published ones are
-- immutable for everyone (triggers in 0009).

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA datasets FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api.dataset_manifest(text), api.dataset_card(text),
  api.similar_events(bigint, integer) FROM PUBLIC;

-- ---------------------------------------------------------------- people
-- Customers buy the datasets; analysts, reviewers and project admins read them too. The
-- api.datasets view runs as the caller (security_invoker), so they read the tables.
GRANT USAGE ON SCHEMA datasets TO customer, reviewer, analyst, project_admin;
GRANT SELECT ON datasets.versions, datasets.files, datasets.quality_reports
  TO customer, reviewer, analyst, project_admin;
GRANT SELECT ON api.datasets TO customer, reviewer, analyst, project_admin;
GRANT EXECUTE ON FUNCTION
  datasets.visible_version(text),
  api.dataset_manifest(text),
  api.dataset_card(text),
  api.similar_events(bigint, integer)
  TO customer, reviewer, analyst, project_admin;
