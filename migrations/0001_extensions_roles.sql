-- 0001 · extensions and roles.
-- Runs as a superuser (only a superuser can create these extensions and roles).
-- Roles are cluster-wide: created once, reused by every database of the cluster.

SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- ======================================================================= extensions
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS plpython3u;
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- pg_cron can only live in the database named by cron.database_name. Any other database
-- (a test copy, say) runs without it; `secinf db check` reports which one holds it.
DO $$
BEGIN
  IF current_setting('cron.database_name', true) = current_database() THEN
    CREATE EXTENSION IF NOT EXISTS pg_cron;
  ELSE
    RAISE NOTICE 'pg_cron not created: cron.database_name is %, this is %',
      coalesce(current_setting('cron.database_name', true), '(unset)'), current_database();
  END IF;
END
$$;

-- ======================================================================= roles
DO $$
DECLARE
  r text;
BEGIN
  -- secinf_owner owns every table and function; nobody logs in as it.
  -- anon: unauthenticated API callers. customer/reviewer/analyst/project_admin: API roles,
  -- scoped to projects by claims. pipeline: workers and cron jobs (LOGIN so pg_cron's
  -- background workers can run as it; no password, so no TCP login).
  FOREACH r IN ARRAY ARRAY['secinf_owner', 'anon', 'customer', 'reviewer', 'analyst',
                           'project_admin']
  LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pipeline') THEN
    CREATE ROLE pipeline LOGIN;
  END IF;
  -- authenticator: PostgREST logs in as it and switches to the role named in the JWT.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT;
  END IF;
  EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO secinf_owner', current_database());
END
$$;

GRANT anon, customer, reviewer, analyst, project_admin TO authenticator;

-- Secure by default: functions created by the owner are not executable by PUBLIC.
ALTER DEFAULT PRIVILEGES FOR ROLE secinf_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
