-- Grants for the core, auth, audit and api-core objects. Applied last (file-name order);
-- each later concern keeps its grants in its own 99_grants_<concern>.sql.
-- Capability lives here; which project's rows a role sees is RLS (900_policies.sql).

-- ---------------------------------------------------------------- functions: none by default
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA auth, core, audit, api FROM PUBLIC;

-- ---------------------------------------------------------------- schemas
GRANT USAGE ON SCHEMA api TO anon, customer, reviewer, analyst, project_admin;
GRANT USAGE ON SCHEMA auth, core TO anon, customer, reviewer, analyst, project_admin, pipeline;
GRANT USAGE ON SCHEMA audit TO project_admin, pipeline;

-- ---------------------------------------------------------------- identity helpers
-- Policies call these as the caller, so every role that meets RLS needs them.
GRANT EXECUTE ON FUNCTION
  auth.claims(), auth.role(), auth.subject(), auth.is_admin(), auth.project_ids(),
  auth.can_access(uuid), auth.require(uuid, text[])
  TO anon, customer, reviewer, analyst, project_admin, pipeline;

-- ---------------------------------------------------------------- tenancy tables
GRANT SELECT ON core.organizations, core.projects, core.plans
  TO customer, reviewer, analyst, project_admin, pipeline;
GRANT SELECT ON core.memberships TO project_admin, pipeline;
-- Never the key hash: column privileges leave it out.
GRANT SELECT (key_id, project_id, role, lookup_prefix, label, created_by, created_at,
              expires_at, revoked_at, last_used_at, owner) ON core.api_keys TO project_admin;
GRANT SELECT ON audit.log TO project_admin;

-- ---------------------------------------------------------------- api
GRANT EXECUTE ON FUNCTION api.pre_request(), core.key_is_live(uuid)
  TO anon, customer, reviewer, analyst, project_admin;
GRANT EXECUTE ON FUNCTION api.exchange_key(text), core.exchange_api_key(text)
  TO anon, customer, reviewer, analyst, project_admin;
GRANT EXECUTE ON FUNCTION api.me() TO customer, reviewer, analyst, project_admin;
GRANT SELECT ON api.projects TO customer, reviewer, analyst, project_admin;
GRANT SELECT ON api.api_keys TO project_admin;
GRANT EXECUTE ON FUNCTION
  api.create_api_key(text, timestamptz, text, text),
  core.create_api_key(uuid, text, timestamptz, text, text),
  api.revoke_api_key(text), core.revoke_api_key(text)
  TO project_admin;
GRANT EXECUTE ON FUNCTION core.resolve_project(text)
  TO customer, reviewer, analyst, project_admin, pipeline;
-- The audit log is written by the owner's functions (which have checked the caller) and by
-- the pipeline; never by an API role naming a project of its choice.
REVOKE EXECUTE ON FUNCTION audit.record(uuid, text, text, jsonb)
  FROM customer, reviewer, analyst, project_admin;
GRANT EXECUTE ON FUNCTION audit.record(uuid, text, text, jsonb) TO pipeline;
-- The audit chain (sql/050_audit.sql): pg_cron seals and adds partitions as pipeline; verify
-- reports counts and a chain position only, never a row.
GRANT EXECUTE ON FUNCTION audit.seal(integer), audit.ensure_partitions(integer),
  audit.verify_chain() TO pipeline;
-- Every insert path runs the trigger's address lookup as the writer.
GRANT EXECUTE ON FUNCTION audit.caller_address()
  TO anon, customer, reviewer, analyst, project_admin, pipeline;
-- The worker reads the secret channel names it listens on (auth.notify_channels, 0018).
GRANT EXECUTE ON FUNCTION auth.channel(text) TO pipeline;
