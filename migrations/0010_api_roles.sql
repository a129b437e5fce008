-- 0010 · the API's indexes on events and the API roles' settings (statement and idle
-- timeouts). See docs/api.md ("Limits").
-- depends: 0009_datasets
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- ======================================================================= events
-- api.query_events filters "events involving any of these track ids": the actor ids of an
-- event (the values of its {role: track_id} object) as a jsonb array, searched with ?|.
-- (project_id, start_ts, event_id) — the keyset order — is 0008's events_project_ts_idx.
-- events.events was created by 0008 of this same release, so the plain build is short.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX events_actor_ids_idx ON events.events
  USING gin ((jsonb_path_query_array(actors, '$.*')));

RESET ROLE;

-- ======================================================================= role settings
-- Roles are cluster-wide (0001): these settings hold in every database of the cluster.
-- Postgres applies a role's settings when a session logs in as it; PostgREST logs in as
-- `authenticator` and, for each request, applies the impersonated role's settings as
-- transaction-local ones (SET LOCAL, PostgREST ≥ 11.1 "impersonated role settings"), so
-- these caps hold for every API request. Direct SQL logins of analysts (analyst_<name>,
-- members of `analyst`) do not inherit them: Postgres reads only the login role's own.
-- ALTER ROLE needs a superuser here (the owner role has no CREATEROLE).
ALTER ROLE anon SET statement_timeout = '5s';
ALTER ROLE anon SET idle_in_transaction_session_timeout = '30s';
ALTER ROLE customer SET statement_timeout = '15s';
ALTER ROLE customer SET idle_in_transaction_session_timeout = '30s';
ALTER ROLE reviewer SET statement_timeout = '15s';
ALTER ROLE reviewer SET idle_in_transaction_session_timeout = '30s';
ALTER ROLE project_admin SET statement_timeout = '30s';
ALTER ROLE project_admin SET idle_in_transaction_session_timeout = '30s';
ALTER ROLE analyst SET statement_timeout = '60s';
ALTER ROLE analyst SET idle_in_transaction_session_timeout = '5min';

-- Direct SQL logins of analysts that exist now get the analyst caps on their own role
-- (workers/tenancy.add_analyst must do the same for later ones; see docs/api.md).
DO $$
DECLARE
  r text;
BEGIN
  FOR r IN
    SELECT m.rolname FROM pg_roles m
    JOIN pg_auth_members am ON am.member = m.oid
    WHERE am.roleid = 'analyst'::regrole AND m.rolcanlogin
  LOOP
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', r, '60s');
    EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', r, '5min');
  END LOOP;
END
$$;
