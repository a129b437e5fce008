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
-- ALTER ROLE needs a superuser here (the owner role has no CREATEROLE). A setting already in
-- place is not written again: every test database of the cluster runs this migration, and
-- two concurrent ALTER ROLEs of one role can fail ("tuple concurrently updated").
DO $$
DECLARE
  s record;
BEGIN
  FOR s IN
    SELECT v.role, v.name, v.value FROM (VALUES
      ('anon', 'statement_timeout', '5s'),
      ('anon', 'idle_in_transaction_session_timeout', '30s'),
      ('customer', 'statement_timeout', '15s'),
      ('customer', 'idle_in_transaction_session_timeout', '30s'),
      ('reviewer', 'statement_timeout', '15s'),
      ('reviewer', 'idle_in_transaction_session_timeout', '30s'),
      ('project_admin', 'statement_timeout', '30s'),
      ('project_admin', 'idle_in_transaction_session_timeout', '30s'),
      ('analyst', 'statement_timeout', '60s'),
      ('analyst', 'idle_in_transaction_session_timeout', '5min')) AS v(role, name, value)
    UNION ALL
    -- Direct SQL logins of analysts that exist now get the analyst caps on their own role
    -- (workers/tenancy.add_analyst must do the same for later ones; see docs/api.md).
    SELECT m.rolname, v.name, v.value
    FROM pg_roles m
    JOIN pg_auth_members am ON am.member = m.oid AND am.roleid = 'analyst'::regrole
    CROSS JOIN (VALUES ('statement_timeout', '60s'),
                       ('idle_in_transaction_session_timeout', '5min')) AS v(name, value)
    WHERE m.rolcanlogin
  LOOP
    CONTINUE WHEN EXISTS (
      SELECT FROM pg_db_role_setting d JOIN pg_roles r ON r.oid = d.setrole
      WHERE r.rolname = s.role AND d.setdatabase = 0
        AND s.name || '=' || s.value = ANY (d.setconfig));
    BEGIN
      EXECUTE format('ALTER ROLE %I SET %I = %L', s.role, s.name, s.value);
    EXCEPTION WHEN undefined_object THEN
      NULL;  -- a login dropped meanwhile (tests create and drop analyst logins)
    END;
  END LOOP;
END
$$;
